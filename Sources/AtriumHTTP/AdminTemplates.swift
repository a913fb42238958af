extension Templates {
    /// The admin panel's shell; `/hub/static/admin.js` fills it from the REST API.
    static let admin = """
    {{<layout}}{{$body}}
    <div class="card" id="admin" data-xsrf="{{xsrf}}" data-me="{{me}}" data-native="{{native}}">
      <h1>Users</h1>
      <div id="flash" aria-live="polite"></div>
      <div class="toolbar">
        <input type="search" id="search" placeholder="Search by name" aria-label="Search by name" autocomplete="off">
        <select id="filter" aria-label="Show">
          <option value="">Everyone</option><option value="running">Running</option><option value="idle">Idle (10 min)</option>
          <option value="stopped">Stopped</option><option value="pending">Awaiting approval</option>
          <option value="revoked">Blocked (approval revoked)</option><option value="admin">Admins</option>
        </select>
        <select id="group-filter" aria-label="Group"><option value="">Any group</option></select>
        <select id="sort" aria-label="Sort">
          <option value="name">Name A–Z</option><option value="-name">Name Z–A</option>
          <option value="-last_activity">Recently active</option><option value="last_activity">Least recently active</option>
          <option value="-created">Newest</option><option value="created">Oldest</option>
        </select>
        <button type="button" id="add-open">Add users</button>
      </div>
      <div class="toolbar" id="bulk">
        <span id="selected-count" class="muted">0 selected</span>
        <button type="button" class="secondary" data-bulk="approve">Approve</button>
        <button type="button" class="secondary" data-bulk="start">Start</button>
        <button type="button" class="secondary" data-bulk="stop">Stop</button>
        <button type="button" class="secondary" data-bulk="suspend">Suspend</button>
        <button type="button" class="danger" data-bulk="delete">Delete</button>
      </div>
      <div class="scroll">
      <table id="users"><thead><tr>
        <th><input type="checkbox" id="select-all" aria-label="Select all on this page"></th>
        <th>User</th><th>Workspace</th><th>Account</th><th class="optional">Groups</th>
        <th class="optional">Last activity</th><th class="optional">Created</th><th>Actions</th>
      </tr></thead><tbody id="users-body"><tr><td colspan="8" class="muted">Loading…</td></tr></tbody></table>
      </div>
      <div class="toolbar"><button type="button" class="secondary" id="prev">‹ Previous</button><span id="range" class="muted"></span>
        <button type="button" class="secondary" id="next">Next ›</button>
        <select id="page-size" aria-label="Rows per page"><option>25</option><option selected>50</option><option>100</option><option>200</option></select></div>
    </div>

    <div class="card" id="groups-card">
      <h2>Groups</h2>
      <form id="group-create" class="toolbar"><input type="text" id="group-name" placeholder="new group name" aria-label="New group name" required style="flex:1 1 12rem;width:auto">
        <button type="submit">Create group</button></form>
      <div class="scroll"><table><thead><tr><th>Group</th><th>Members</th><th>Actions</th></tr></thead><tbody id="groups-body"></tbody></table></div>
    </div>

    <dialog id="dlg-edit"><form method="dialog" id="edit-form">
      <h2>Edit <span class="who"></span></h2>
      <label for="edit-name">Name</label><input type="text" id="edit-name" required>
      <label><input type="checkbox" id="edit-admin"> Administrator</label>
      <label for="edit-groups">Groups (comma-separated; new ones are created)</label><input type="text" id="edit-groups">
      <p class="error" hidden></p>
      <button type="submit" id="edit-save" value="save">Save</button> <button type="button" class="secondary close">Cancel</button>
    </form></dialog>

    <dialog id="dlg-delete"><form method="dialog" id="delete-form">
      <h2>Delete <span class="who"></span>?</h2>
      <p>The account, its tokens and its servers go. This cannot be undone.</p>
      <label><input type="checkbox" id="delete-files"> Also delete their stored files (workspace folders) — permanently</label>
      <p class="error" hidden></p>
      <button type="submit" class="danger" id="delete-confirm" value="delete">Delete</button> <button type="button" class="secondary close">Cancel</button>
    </form></dialog>

    <dialog id="dlg-password"><form method="dialog">
      <h2>New password for <span class="who"></span></h2>
      <p>Shown only now: give it to them. Their sessions were ended and any lockout lifted.</p>
      <p><code class="secret" id="new-password"></code></p>
      <button type="button" class="close">Done</button>
    </form></dialog>

    <dialog id="dlg-logs"><form method="dialog">
      <h2>Logs of <span class="who"></span></h2>
      <p class="usage" id="logs-usage"></p>
      <pre class="logs" id="logs-text"></pre>
      <button type="button" class="secondary" id="logs-refresh">Refresh</button> <button type="button" class="close">Close</button>
    </form></dialog>

    <dialog id="dlg-members"><form method="dialog" id="members-form">
      <h2>Members of <span class="who"></span></h2>
      <label for="members-text">One user name a line</label><textarea id="members-text" rows="10"></textarea>
      <p class="error" hidden></p>
      <button type="submit" value="save" id="members-save">Save</button> <button type="button" class="secondary close">Cancel</button>
    </form></dialog>

    <dialog id="dlg-add"><form method="dialog" id="add-form">
      <h2>Add users</h2>
      <div id="add-input">
        <p class="muted">One name a line, or a CSV roster with the columns <code>username,group,profile,admin</code>
        (a header line is optional; several groups separated by <code>;</code>).{{#hasProfiles}} Profiles: {{profiles}}.{{/hasProfiles}}
        {{#native}}Each new user gets a generated password, shown once.{{/native}}</p>
        <label for="add-file">CSV file</label><input type="file" id="add-file" accept=".csv,text/csv,text/plain">
        <label for="add-text">Names or CSV</label><textarea id="add-text" rows="10" placeholder="username,group,profile,admin&#10;ann,course-a,,&#10;ben,course-a;tutors,,true"></textarea>
        <p class="error" id="add-error" role="alert" hidden></p>
        <button type="submit" value="add" id="add-submit">Create users</button> <button type="button" class="secondary close">Cancel</button>
      </div>
      <div id="add-result" hidden>
        <p class="notice" id="add-summary"></p>
        <p><a class="button" id="add-download" download="atrium-new-users.csv" href="#">Download as CSV</a></p>
        <div class="scroll" style="max-height:40vh;overflow:auto"><table><thead><tr><th>User</th><th>Password</th><th>Groups</th></tr></thead><tbody id="add-rows"></tbody></table></div>
        <button type="button" class="close">Done</button>
      </div>
    </form></dialog>
    <script src="/hub/static/admin.js"></script>
    {{/body}}{{/layout}}
    """

    /// Personal API tokens: create (shown once) and revoke; `/hub/static/token.js` does the calls.
    static let token = """
    {{<layout}}{{$body}}
    <div class="card" id="tokens" data-xsrf="{{xsrf}}" data-me="{{me}}">
      <h1>API tokens</h1>
      <p class="muted">A token lets a program act as you through the hub's API (JupyterHub's API).</p>
      <form id="token-form">
        <label for="token-note">Note</label><input type="text" id="token-note" placeholder="what the token is for" maxlength="200">
        <label for="token-expiry">Expires</label>
        <select id="token-expiry"><option value="3600">in 1 hour</option><option value="86400">in 1 day</option>
          <option value="604800" selected>in 7 days</option><option value="2592000">in 30 days</option><option value="0">never</option></select>
        <label for="token-scopes">Scopes (space-separated; empty: all of your permissions)</label>
        <input type="text" id="token-scopes" placeholder="e.g. read:users!user servers!user access:servers!user" autocapitalize="off">
        <p class="error" id="token-error" role="alert" hidden></p>
        <button type="submit" id="token-create">Request new token</button>
      </form>
      <div id="token-new" hidden><p class="notice">Your new token, shown only now: copy it.</p><p><code class="secret" id="token-value"></code></p></div>
    </div>
    <div class="card">
      <h2>Your tokens</h2>
      <div class="scroll"><table><thead><tr><th>Note</th><th>Scopes</th><th class="optional">Created</th><th>Expires</th><th class="optional">Last used</th><th></th></tr></thead>
      <tbody id="token-list"></tbody></table></div>
    </div>
    <script src="/hub/static/token.js"></script>
    {{/body}}{{/layout}}
    """
}
