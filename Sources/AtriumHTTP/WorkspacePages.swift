import AtriumAuth
import AtriumModel
import AtriumSpawn
import AtriumStore
import Foundation
import HTTPTypes
import Hummingbird

extension Templates {
    static let home = """
    {{<layout}}{{$body}}
    <div class="card">
      <h1>Welcome, {{user.name}}</h1>
      {{#notice}}<p class="notice" role="status" data-flash>{{notice}}</p>{{/notice}}
      {{#error}}<p class="error" role="alert">{{error}}</p>{{/error}}
      <h2>Your workspaces</h2>
      <table id="servers"><thead><tr><th>Server</th><th>Status</th><th class="optional">Last activity</th><th></th></tr></thead><tbody>
      {{#servers}}
      <tr id="server-{{label}}" data-name="{{name}}" data-progress="{{progressURL}}" data-pending="{{pendingSpawn}}">
        <td>{{label}}</td><td><span class="badge {{phase}}">{{phase}}</span>{{#failure}}<br><small class="error">{{failure}}</small>{{/failure}}</td>
        <td class="optional"><time{{#lastActivityISO}} datetime="{{lastActivityISO}}" title="{{lastActivityISO}}"{{/lastActivityISO}}>{{lastActivity}}</time></td>
        <td>
          {{#ready}}<a class="button" href="{{url}}">Open</a>{{/ready}}
          {{#canStart}}<form class="inline" method="post" action="/hub/spawn"><input type="hidden" name="_xsrf" value="{{xsrf}}"><input type="hidden" name="server" value="{{name}}">
            {{#hasProfiles}}<select name="profile" aria-label="Profile">{{#profiles}}<option value="{{name}}">{{displayName}}</option>{{/profiles}}</select>{{/hasProfiles}}
            <button type="submit">{{startLabel}}</button></form>{{/canStart}}
          {{#canStop}}<form class="inline" method="post" action="/hub/stop"><input type="hidden" name="_xsrf" value="{{xsrf}}"><input type="hidden" name="server" value="{{name}}"><button type="submit" class="secondary">Stop</button></form>{{/canStop}}
          <div class="progress" aria-live="polite"></div>
        </td>
      </tr>
      {{/servers}}
      </tbody></table>
      {{#namedServers}}
      <form method="post" action="/hub/spawn" class="inline">
        <input type="hidden" name="_xsrf" value="{{xsrf}}">
        <label for="new-server">New named server</label>
        <input type="text" id="new-server" name="server" pattern="[a-z][a-z0-9-]{0,29}" placeholder="e.g. lab2" required>
        {{#hasProfiles}}<select name="profile" aria-label="Profile">{{#profiles}}<option value="{{name}}">{{displayName}}</option>{{/profiles}}</select>{{/hasProfiles}}
        <button type="submit">Create and start</button>
      </form>
      {{/namedServers}}
    </div>
    <script>
    // Pressing Start or Stop shows at once that something is happening.
    for (const form of document.querySelectorAll('form[action="/hub/spawn"], form[action="/hub/stop"]')) {
      form.addEventListener('submit', () => {
        const button = form.querySelector('button[type=submit]');
        const starting = form.getAttribute('action') === '/hub/spawn';
        setTimeout(() => { button.disabled = true; }, 0);  // after the browser has taken the submit
        button.textContent = starting ? 'Starting…' : 'Stopping…';
        const box = form.closest('tr')?.querySelector('.progress');
        if (box && starting) box.textContent = 'Asking for your workspace…';
      });
    }
    // A start still under way: follow its progress; the server the user started opens by itself
    // once it is ready.
    const opening = new URLSearchParams(location.search).get('open');
    for (const row of document.querySelectorAll('tr[data-pending="true"]')) {
      const box = row.querySelector('.progress');
      const source = new EventSource(row.dataset.progress);
      source.onmessage = (m) => {
        const e = JSON.parse(m.data);
        box.textContent = e.progress + '% ' + e.message;
        if (e.ready && opening !== null && opening === row.dataset.name && e.url) { source.close(); location.href = e.url; return; }
        if (e.ready || e.failed) { source.close(); setTimeout(() => location.reload(), 300); }
      };
      source.onerror = () => { source.close(); setTimeout(() => location.reload(), 2000); };
    }
    </script>
    {{/body}}{{/layout}}
    """

    static let notRunning = """
    {{<layout}}{{$body}}
    <div class="card">
      <h1>{{heading}}</h1>
      <p>{{message}}</p>
      {{#canStart}}<form method="post" action="/hub/spawn"><input type="hidden" name="_xsrf" value="{{xsrf}}"><input type="hidden" name="server" value="{{server}}"><input type="hidden" name="owner" value="{{owner}}"><input type="hidden" name="next" value="{{next}}"><button type="submit">Start it</button></form>{{/canStart}}
      <p><a href="/hub/home">Back to the home page</a></p>
    </div>
    {{/body}}{{/layout}}
    """
}

extension Pages {
    func home(_ request: Request, context: HubRequestContext) async throws -> Response {
        guard let identity = sessionUser(context) else { return loginRedirect(request) }
        var (values, cookies) = base(request, context, title: "Home")
        let user = identity.user
        var servers = try await hub.store.servers(ofUserIDs: [user.id])[user.id] ?? []
        if !servers.contains(where: { $0.name.isEmpty }) {
            servers.insert(ServerRecord(userID: user.id, userName: user.name, name: ""), at: 0)
        }
        let profiles = hub.spawnSettings.profiles.map { ["name": $0.name, "displayName": $0.displayName] }
        let xsrf = values["xsrf"] as? String ?? ""
        var rows: [[String: Any]] = []
        for s in servers.sorted(by: { $0.name < $1.name }) {
            let failure = s.phase == .failed ? await hub.manager?.failure(user: user.name, serverName: s.name) : nil
            var row: [String: Any] = [
                "label": s.name.isEmpty ? "default" : s.name, "name": s.name, "phase": s.phase.rawValue,
                "lastActivity": s.lastActivity.map { Timestamp.relative($0) } ?? "never",
                "lastActivityISO": s.lastActivity.map(Timestamp.format) ?? "",
                "ready": s.phase == .running, "url": Models.serverURL(user: user.name, server: s.name),
                "canStart": [.stopped, .failed, .suspended].contains(s.phase), "canStop": [.running, .pending, .suspended].contains(s.phase),
                "startLabel": s.phase == .suspended ? "Resume" : "Start",
                "pendingSpawn": s.phase == .pending ? "true" : "false",
                // An EventSource cannot send headers: the XSRF token rides in the URL.
                "progressURL": Models.progressURL(user: user.name, server: s.name) + "?_xsrf=" + xsrf,
                "xsrf": xsrf, "hasProfiles": !profiles.isEmpty, "profiles": profiles,
            ]
            if let failure { row["failure"] = user.admin ? failure : ServersAPI.failureForUsers }
            rows.append(row)
        }
        values["servers"] = rows
        values["namedServers"] = hub.spawnSettings.allowNamedServers
        values["hasProfiles"] = !profiles.isEmpty
        values["profiles"] = profiles
        if let notice = request.uri.queryParameters["notice"] { values["notice"] = String(notice) }
        if let error = request.uri.queryParameters["error"] { values["error"] = String(error) }
        return hub.pages.render("home", values, cookies: cookies)
    }

    static func homeURL(_ key: String, _ message: String) -> String {
        "/hub/home?\(key)=" + (message.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? "")
    }

    /// `POST /hub/spawn`: starts one of the user's own servers (or, for admins, `owner`'s).
    func spawn(_ request: Request, context: HubRequestContext) async throws -> Response {
        guard let identity = sessionUser(context) else { return loginRedirect(request) }
        let form = try await FormBody.read(request, context: context)
        try checkXSRF(request, form)
        guard let manager = hub.manager else { return Response.redirect(to: Self.homeURL("error", "This hub runs no workspace backend.")) }
        var owner = identity.user
        if let name = form["owner"], !name.isEmpty, name != owner.name {
            guard let other = try await hub.store.user(named: name) else { return Response.redirect(to: Self.homeURL("error", "No such user: \(name)")) }
            guard identity.scopes.allows("start:servers", user: other.name, groups: other.groups) else {
                throw APIError.forbidden("You may not start \(other.name)'s servers")
            }
            owner = other
        }
        let server: String
        do { server = try ServerName(form["server"] ?? "").rawValue } catch {
            return Response.redirect(to: Self.homeURL("error", error.description))
        }
        let profile = form["profile"].flatMap { $0.isEmpty ? nil : $0 }
        do {
            let outcome = try await manager.start(user: owner, serverName: server, profile: profile)
            if case .ready(let url) = outcome {
                let next = form["next"].flatMap { $0.hasPrefix("/user/") ? $0 : nil }
                return Response.redirect(to: next ?? url)
            }
            // Still starting: the home page follows it and opens it once it is ready.
            return Response.redirect(to: "/hub/home?open=" + (server.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""))
        } catch let error as SpawnError {
            // A backend's reason names commands, paths and PATH: for admins (and the log) only.
            let message = error.code == .backendFailed && !identity.user.admin ? ServersAPI.failureForUsers : error.message
            return Response.redirect(to: Self.homeURL("error", message))
        }
    }

    /// `POST /hub/stop`: stops one of the user's own servers.
    func stopServer(_ request: Request, context: HubRequestContext) async throws -> Response {
        guard let identity = sessionUser(context) else { return loginRedirect(request) }
        let form = try await FormBody.read(request, context: context)
        try checkXSRF(request, form)
        guard let manager = hub.manager else { return Response.redirect(to: "/hub/home") }
        let server = form["server"] ?? ""
        do {
            let outcome = try await manager.stop(user: identity.user.name, serverName: server)
            return Response.redirect(to: Self.homeURL("notice", outcome == .stopped ? "Stopped." : "Stopping…"))
        } catch let error as SpawnError {
            return Response.redirect(to: Self.homeURL("error", error.message))
        }
    }
}

/// `/user/{name}/…` requests the proxy did not forward: no or bad credentials, no permission,
/// or no running server. Browsers get the login page or a page that offers to start the
/// server; API clients get JSON.
struct UserRoutes {
    let hub: Hub

    func register(on router: Router<HubRequestContext>) {
        for method: HTTPRequest.Method in [.get, .head, .post, .put, .patch, .delete, .options] {
            router.on("/user/**", method: method, use: handle)
        }
    }

    static func wantsHTML(_ request: Request) -> Bool {
        request.method == .get && (request.headers[.accept]?.contains("text/html") ?? false)
    }

    func handle(_ request: Request, context: HubRequestContext) async throws -> Response {
        let pages = Pages(hub: hub)
        let segments = request.uri.path.split(separator: "/", omittingEmptySubsequences: false)
        // ["", "user", name, maybe server, …]
        guard segments.count >= 3, let owner = String(segments[2]).removingPercentEncoding, !owner.isEmpty else {
            throw APIError.notFound("Not Found: \(request.uri.path)")
        }
        guard let identity = context.identity else {
            if Self.wantsHTML(request) { return pages.loginRedirect(request) }
            throw APIError.forbidden("Missing or invalid credentials: log in, or send a token with the access:servers scope")
        }
        guard let ownerRecord = try await hub.store.user(named: owner) else { throw APIError.notFound("No such user: \(owner)") }
        var server = ""
        var record: ServerRecord?
        if segments.count >= 4, let candidate = String(segments[3]).removingPercentEncoding, !candidate.isEmpty,
            let named = try await hub.store.server(userID: ownerRecord.id, name: candidate)
        {
            server = candidate
            record = named
        }
        guard identity.scopes.allows("access:servers", user: owner, groups: ownerRecord.groups, server: server) else {
            if Self.wantsHTML(request) {
                var (values, cookies) = pages.base(request, context, title: "Not yours")
                values["text"] = "This workspace belongs to someone else, and \(identity.user.name) may not open it."
                values["link"] = "/hub/home"
                values["linkText"] = "Back to your workspaces"
                return hub.pages.render("message", values, status: .forbidden, cookies: cookies)
            }
            throw APIError.forbidden("\(identity.user.name) may not access \(owner)'s server")
        }
        if record == nil { record = try await hub.store.server(userID: ownerRecord.id, name: "") }
        let phase = record?.phase ?? .stopped
        let url = Models.serverURL(user: owner, server: server)
        let message: String
        switch phase {
        case .pending: message = "The server at \(url) is starting; try again in a moment."
        case .running: message = "The server at \(url) is not answering right now; try again in a moment."
        case .stopping: message = "The server at \(url) is stopping."
        default: message = "The server at \(url) is not running."
        }
        if Self.wantsHTML(request) {
            var (values, cookies) = pages.base(request, context, title: "Server not running")
            values["heading"] = phase == .pending ? "Your server is starting" : "Server not running"
            values["message"] = message
            values["canStart"] = [.stopped, .failed, .suspended].contains(phase)
                && identity.scopes.allows("start:servers", user: owner, groups: ownerRecord.groups, server: server)
            values["server"] = server
            values["owner"] = owner
            values["next"] = request.uri.path
            var response = hub.pages.render("not_running", values, status: .serviceUnavailable, cookies: cookies)
            if phase == .pending || phase == .running { response.headers[.init("Refresh")!] = "3" }
            return response
        }
        var error = APIError(.serviceUnavailable, message)
        if phase == .pending || phase == .running { error.headers[.retryAfter] = "3" }
        throw error
    }
}
