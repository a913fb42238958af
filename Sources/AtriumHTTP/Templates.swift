/// The hub's HTML templates (Mustache), embedded so the binary needs no asset folder and the
/// pages load nothing from the network.
enum Templates {
    static let all: [String: String] = [
        "layout": layout, "login": login, "signup": signup, "home": home, "not_running": notRunning, "change_password": changePassword,
        "admin_password": adminPassword, "authorize": authorize, "logout": logout, "message": message,
        "admin": admin, "token": token,
    ]

    static let layout = """
    <!doctype html>
    <html lang="en">
    <head>
    <meta charset="utf-8">
    <meta name="viewport" content="width=device-width, initial-scale=1">
    <title>{{title}} · {{hubName}}</title>
    <link rel="icon" href="/favicon.ico" type="image/svg+xml">
    <style>
    :root { --fg:#1d232b; --muted:#5b6673; --line:#d9dee4; --accent:#1f6feb; --bg:#f6f8fa; --bad:#b42318; --ok:#067647; }
    * { box-sizing: border-box; }
    body { margin:0; font: 16px/1.5 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color:var(--fg); background:var(--bg); }
    header { background:#fff; border-bottom:1px solid var(--line); padding:.6rem 1rem; display:flex; flex-wrap:wrap; gap:.5rem 1rem; align-items:center; }
    header .brand { font-weight:700; margin-right:auto; color:var(--fg); text-decoration:none; }
    header a, header button.link { color:var(--accent); text-decoration:none; background:none; border:0; font:inherit; cursor:pointer; padding:0; }
    main { max-width: 960px; margin: 1.5rem auto; padding: 0 1rem; }
    main.wide { max-width: 1400px; }
    .card { background:#fff; border:1px solid var(--line); border-radius:8px; padding:1.25rem; margin-bottom:1rem; }
    .narrow { max-width: 420px; margin-left:auto; margin-right:auto; }
    label { display:block; font-weight:600; margin:.75rem 0 .25rem; }
    input[type=text], input[type=password], input[type=search] { width:100%; padding:.55rem .6rem; border:1px solid var(--line); border-radius:6px; font:inherit; }
    button, .button { display:inline-block; margin-top:1rem; padding:.5rem 1rem; border-radius:6px; border:1px solid var(--accent); background:var(--accent); color:#fff; font:inherit; cursor:pointer; text-decoration:none; }
    button.secondary { background:#fff; color:var(--accent); }
    button.danger { background:var(--bad); border-color:var(--bad); }
    .inline { display:inline; } .inline button { margin:0 .25rem 0 0; padding:.25rem .6rem; font-size:.9rem; }
    .error { color:var(--bad); background:#fef3f2; border:1px solid #fecdca; border-radius:6px; padding:.6rem .8rem; }
    .notice { color:var(--ok); background:#ecfdf3; border:1px solid #abefc6; border-radius:6px; padding:.6rem .8rem; }
    .muted { color:var(--muted); }
    table { width:100%; border-collapse:collapse; } th, td { text-align:left; padding:.45rem .4rem; border-bottom:1px solid var(--line); vertical-align:middle; }
    .badge { display:inline-block; padding:.05rem .5rem; border-radius:999px; font-size:.8rem; border:1px solid var(--line); }
    .badge.pending { background:#fffaeb; } .badge.revoked { background:#fef3f2; } .badge.approved { background:#ecfdf3; }
    .toolbar { display:flex; flex-wrap:wrap; gap:.5rem; align-items:center; margin:.5rem 0; }
    .toolbar input[type=search] { flex:1 1 14rem; width:auto; }
    .toolbar select, dialog select { padding:.45rem; border:1px solid var(--line); border-radius:6px; font:inherit; background:#fff; }
    .toolbar button, .act { margin:0; padding:.3rem .7rem; font-size:.9rem; }
    .scroll { overflow-x:auto; }
    td.actions { white-space:nowrap; } td.actions button, td.actions a.button { margin:.1rem .15rem .1rem 0; padding:.2rem .5rem; font-size:.85rem; }
    .badge.running { background:#ecfdf3; } .badge.pending, .badge.stopping { background:#fffaeb; } .badge.failed { background:#fef3f2; } .badge.suspended { background:#eef4ff; }
    dialog { border:1px solid var(--line); border-radius:8px; max-width:min(640px, 95vw); width:100%; }
    dialog::backdrop { background:rgba(0,0,0,.3); }
    textarea { width:100%; font:14px/1.4 ui-monospace, monospace; padding:.5rem; border:1px solid var(--line); border-radius:6px; }
    pre.logs { max-height:60vh; overflow:auto; background:#0d1117; color:#e6edf3; padding:.75rem; border-radius:6px; font-size:.8rem; white-space:pre-wrap; }
    code.secret { font-size:1.1rem; background:#fffaeb; padding:.2rem .4rem; border-radius:4px; user-select:all; }
    @media (max-width: 600px) { th.optional, td.optional { display:none; } main { margin-top:1rem; } .card { padding:.8rem; }
      td { word-break:break-word; } td.actions { white-space:normal; } }
    </style>
    </head>
    <body>
    <header>
      <a class="brand" href="/hub/home">{{hubName}}</a>
      {{#user}}
      <a href="/hub/home">Home</a>
      <a href="/hub/token">Token</a>
      <a href="/hub/change-password">Password</a>
      {{#isAdmin}}<a href="/hub/admin">Admin</a> <a href="/hub/authorize">Authorize users</a>{{/isAdmin}}
      <form class="inline" method="post" action="/hub/logout"><input type="hidden" name="_xsrf" value="{{xsrf}}"><button class="link" type="submit">Log out {{name}}</button></form>
      {{/user}}
      {{^user}}<a href="/hub/login">Log in</a>{{#signupEnabled}} <a href="/hub/signup">Sign up</a>{{/signupEnabled}}{{/user}}
    </header>
    <main{{#wide}} class="wide"{{/wide}}>
    {{$body}}{{/body}}
    </main>
    <script>
    // A message carried in the URL (?notice=, ?error=) is shown once: a reload or a bookmark
    // does not repeat it, and a notice fades once read.
    (() => {
      const url = new URL(location.href);
      let changed = false;
      for (const key of ['notice', 'error', 'logged_out', 'signed_up']) {
        if (url.searchParams.has(key)) { url.searchParams.delete(key); changed = true; }
      }
      if (changed) history.replaceState(null, '', url.pathname + (url.search || '') + url.hash);
      // Only a message that reported an action (data-flash), never the page's own notices.
      for (const box of document.querySelectorAll('p.notice[data-flash]')) setTimeout(() => box.remove(), 8000);
    })();
    </script>
    </body>
    </html>
    """

    static let login = """
    {{<layout}}{{$body}}
    <div class="card narrow">
      <h1>Log in</h1>
      {{#error}}<p class="error" role="alert">{{error}}</p>{{/error}}
      {{#notice}}<p class="notice">{{notice}}</p>{{/notice}}
      <form method="post" action="/hub/login{{#next}}?next={{next}}{{/next}}">
        <input type="hidden" name="_xsrf" value="{{xsrf}}">
        <label for="username">Username</label>
        <input type="text" id="username" name="username" value="{{username}}" autocomplete="username" autocapitalize="off" autofocus required>
        <label for="password">Password</label>
        <input type="password" id="password" name="password" autocomplete="current-password" required>
        <button type="submit" id="login_submit">Log in</button>
      </form>
      {{#signupEnabled}}<p class="muted">No account yet? <a href="/hub/signup">Sign up</a>.</p>{{/signupEnabled}}
      {{#sharedPassword}}<p class="muted">Workshop mode: use the password you were given, with a user name of your choice.</p>{{/sharedPassword}}
    </div>
    {{/body}}{{/layout}}
    """

    static let signup = """
    {{<layout}}{{$body}}
    <div class="card narrow">
      <h1>Sign up</h1>
      {{#error}}<p class="error" role="alert">{{error}}</p>{{/error}}
      {{#notice}}<p class="notice" role="status">{{notice}}</p>{{/notice}}
      <form method="post" action="/hub/signup">
        <input type="hidden" name="_xsrf" value="{{xsrf}}">
        <label for="username">Username</label>
        <input type="text" id="username" name="username" value="{{username}}" autocomplete="username" autocapitalize="off" required>
        <label for="password">Password</label>
        <input type="password" id="password" name="password" autocomplete="new-password" required minlength="{{minLength}}">
        <label for="password_confirm">Repeat the password</label>
        <input type="password" id="password_confirm" name="password_confirm" autocomplete="new-password" required>
        <p class="muted">At least {{minLength}} characters; common passwords are refused.</p>
        <button type="submit" id="signup_submit">Create account</button>
      </form>
      <p class="muted">Have an account? <a href="/hub/login">Log in</a>.</p>
    </div>
    {{/body}}{{/layout}}
    """

    static let changePassword = """
    {{<layout}}{{$body}}
    <div class="card narrow">
      <h1>Change your password</h1>
      {{#error}}<p class="error" role="alert">{{error}}</p>{{/error}}
      {{#notice}}<p class="notice" role="status">{{notice}}</p>{{/notice}}
      <form method="post" action="/hub/change-password">
        <input type="hidden" name="_xsrf" value="{{xsrf}}">
        <label for="current_password">Current password</label>
        <input type="password" id="current_password" name="current_password" autocomplete="current-password" required>
        <label for="new_password">New password</label>
        <input type="password" id="new_password" name="new_password" autocomplete="new-password" required minlength="{{minLength}}">
        <p class="muted">At least {{minLength}} characters; common passwords and your user name are refused.</p>
        <label for="new_password_confirm">Repeat the new password</label>
        <input type="password" id="new_password_confirm" name="new_password_confirm" autocomplete="new-password" required>
        <button type="submit" id="change_submit">Change password</button>
      </form>
    </div>
    {{/body}}{{/layout}}
    """

    static let adminPassword = """
    {{<layout}}{{$body}}
    <div class="card narrow">
      <h1>Set the password of {{target}}</h1>
      {{#error}}<p class="error" role="alert">{{error}}</p>{{/error}}
      {{#notice}}<p class="notice" role="status">{{notice}}</p>{{/notice}}
      <form method="post" action="/hub/change-password/{{targetPath}}">
        <input type="hidden" name="_xsrf" value="{{xsrf}}">
        <label for="new_password">New password</label>
        <input type="password" id="new_password" name="new_password" autocomplete="new-password" required minlength="{{minLength}}">
        <p class="muted">At least {{minLength}} characters; common passwords and your user name are refused.</p>
        <label for="new_password_confirm">Repeat the new password</label>
        <input type="password" id="new_password_confirm" name="new_password_confirm" autocomplete="new-password" required>
        <p class="muted">Their other sessions end, and any lockout is lifted.</p>
        <button type="submit" id="reset_submit">Set password</button>
      </form>
    </div>
    {{/body}}{{/layout}}
    """

    static let authorize = """
    {{<layout}}{{$body}}
    <div class="card">
      <h1>Authorize users</h1>
      {{#notice}}<p class="notice" role="status">{{notice}}</p>{{/notice}}
      {{#error}}<p class="error" role="alert">{{error}}</p>{{/error}}
      <form method="get" action="/hub/authorize">
        <label for="q">Find users</label>
        <input type="search" id="q" name="q" value="{{query}}" placeholder="part of a name">
      </form>
      <p class="muted">{{pendingCount}} waiting for approval. Discarding deletes the account.</p>
      <table id="authorize-table"><thead><tr><th>User</th><th>State</th><th class="optional">Signed up</th><th>Actions</th></tr></thead><tbody>
      {{#rows}}
      <tr id="user-{{name}}"><td>{{name}}</td><td><span class="badge {{approval}}">{{approval}}</span></td><td class="optional">{{created}}</td><td>
        {{^approved}}<form class="inline" method="post" action="/hub/authorize/{{path}}"><input type="hidden" name="_xsrf" value="{{xsrf}}"><input type="hidden" name="action" value="approve"><button type="submit" name="approve">Approve</button></form>{{/approved}}
        {{#approved}}<form class="inline" method="post" action="/hub/authorize/{{path}}"><input type="hidden" name="_xsrf" value="{{xsrf}}"><input type="hidden" name="action" value="revoke"><button class="secondary" type="submit" name="revoke">Revoke</button></form>{{/approved}}
        <form class="inline" method="post" action="/hub/authorize/{{path}}" onsubmit="return confirm('Delete the account {{name}}?');"><input type="hidden" name="_xsrf" value="{{xsrf}}"><input type="hidden" name="action" value="discard"><button class="danger" type="submit" name="discard">Discard</button></form>
      </td></tr>
      {{/rows}}
      </tbody></table>
      {{^rows}}<p class="muted">Nobody to show.</p>{{/rows}}
    </div>
    {{/body}}{{/layout}}
    """

    static let logout = """
    {{<layout}}{{$body}}
    <div class="card narrow">
      <h1>Log out</h1>
      <form method="post" action="/hub/logout"><input type="hidden" name="_xsrf" value="{{xsrf}}"><button type="submit" id="logout_submit">Log out</button></form>
    </div>
    {{/body}}{{/layout}}
    """

    static let message = """
    {{<layout}}{{$body}}
    <div class="card narrow">
      <h1>{{title}}</h1>
      <p>{{text}}</p>
      <p><a href="{{link}}">{{linkText}}</a></p>
    </div>
    {{/body}}{{/layout}}
    """
}
