// swiftlint:disable line_length
/// The scripts of the admin panel and the token page, served by the hub from `/hub/static/`.
/// Plain JavaScript with no library: everything the pages need comes from the hub itself.
/// User data is only ever placed with `textContent`, never parsed as HTML.
enum AdminScript {
    static let admin = #"""
    'use strict';
    (() => {
    const root = document.getElementById('admin');
    const xsrf = root.dataset.xsrf, me = root.dataset.me;
    const $ = (id) => document.getElementById(id);
    const enc = encodeURIComponent;
    const state = { offset: 0, limit: 50, total: 0, users: [], selected: new Set(), busy: false, first: true };

    async function api(method, path, body, extra) {
      const headers = { 'X-XSRFToken': xsrf, 'Accept': 'application/json' };
      if (extra) Object.assign(headers, extra);
      const init = { method, headers, credentials: 'same-origin' };
      if (body !== undefined) { headers['Content-Type'] = 'application/json'; init.body = JSON.stringify(body); }
      const r = await fetch('/hub/api' + path, init);
      if (r.status === 204) return null;
      const text = await r.text();
      let data = null;
      try { data = text ? JSON.parse(text) : null; } catch (e) { data = null; }
      if (!r.ok) throw new Error((data && data.message) || (r.status + ' ' + r.statusText));
      return data;
    }

    function flash(message, bad) {
      const box = $('flash');
      box.className = bad ? 'error' : 'notice';
      box.textContent = message;
      box.setAttribute('role', bad ? 'alert' : 'status');
      clearTimeout(flash.timer);
      flash.timer = setTimeout(() => { box.textContent = ''; box.className = ''; }, bad ? 12000 : 5000);
    }

    function el(tag, attrs, ...children) {
      const n = document.createElement(tag);
      for (const [k, v] of Object.entries(attrs || {})) {
        if (k === 'class') n.className = v; else if (k === 'text') n.textContent = v; else if (v !== undefined && v !== null && v !== false) n.setAttribute(k, v === true ? '' : v);
      }
      for (const c of children) if (c !== null && c !== undefined) n.append(c);
      return n;
    }

    function ago(iso) {
      if (!iso) return 'never';
      const s = (Date.now() - Date.parse(iso)) / 1000;
      if (s < 60) return 'just now';
      if (s < 3600) return Math.floor(s / 60) + ' min ago';
      if (s < 86400) return Math.floor(s / 3600) + ' h ago';
      return Math.floor(s / 86400) + ' d ago';
    }

    function serverPhase(s) {
      return s ? (s.atrium_phase || (s.ready ? 'running' : s.pending ? 'pending' : 'stopped')) : 'stopped';
    }
    function phaseOf(u) { return serverPhase(u.servers && u.servers['']); }
    // Why a server failed ("out of memory: …"), when the hub knows.
    function failureOf(s) { return (s && s.atrium_phase === 'failed' && s.atrium_failure) || ''; }

    function query() {
      const p = new URLSearchParams();
      p.set('offset', state.offset); p.set('limit', state.limit);
      p.set('sort', $('sort').value); p.set('include_stopped_servers', '1');
      const q = $('search').value.trim();
      if (q) p.set('name_filter', q);
      const f = $('filter').value;
      if (f === 'running') p.set('state', 'ready');
      else if (f === 'idle') p.set('state', 'idle');
      else if (f === 'stopped') p.set('state', 'inactive');
      else if (f === 'pending' || f === 'revoked') p.set('approval', f);
      else if (f === 'admin') p.set('admin', '1');
      const g = $('group-filter').value;
      if (g) p.set('group', g);
      return p;
    }

    function saveLocation() {
      const p = new URLSearchParams();
      for (const [k, id] of [['q', 'search'], ['filter', 'filter'], ['group', 'group-filter'], ['sort', 'sort']]) { const v = $(id).value; if (v) p.set(k, v); }
      if (state.offset) p.set('offset', state.offset);
      if (state.limit !== 50) p.set('limit', state.limit);
      history.replaceState(null, '', '/hub/admin' + (p.toString() ? '?' + p : ''));
    }

    function restoreLocation() {
      const p = new URLSearchParams(location.search);
      if (p.get('q')) $('search').value = p.get('q');
      for (const [k, id] of [['filter', 'filter'], ['sort', 'sort']]) if (p.get(k)) $(id).value = p.get(k);
      if (p.get('group')) { $('group-filter').append(el('option', { value: p.get('group'), text: p.get('group') })); $('group-filter').value = p.get('group'); }
      state.offset = Math.max(0, parseInt(p.get('offset') || '0', 10) || 0);
      const limit = parseInt(p.get('limit') || '50', 10);
      if ([25, 50, 100, 200].includes(limit)) { state.limit = limit; $('page-size').value = String(limit); }
    }

    let loadSeq = 0;
    async function load() {
      const seq = ++loadSeq;
      let data;
      try {
        data = await api('GET', '/users?' + query(), undefined, { 'Accept': 'application/jupyterhub-pagination+json' });
      } catch (e) { if (seq === loadSeq) flash('Could not load users: ' + e.message, true); return; }
      if (seq !== loadSeq) return;
      state.users = data.items;
      state.total = data._pagination.total;
      if (state.offset > 0 && state.users.length === 0 && state.total > 0) { state.offset = Math.max(0, state.total - state.limit); return load(); }
      render();
      if (state.first) {
        state.first = false;
        performance.mark('atrium-users-rendered');
        document.body.dataset.usersRendered = String(performance.now());
      }
    }

    function button(label, action, name, cls, server) {
      const attrs = { type: 'button', class: cls || 'secondary', 'data-action': action, 'data-user': name, text: label };
      if (server) attrs['data-server'] = server;
      return el('button', attrs);
    }

    // A server's own controls: the same for the default server and a named one.
    function serverButtons(cell, u, server, phase) {
      const base = '/user/' + enc(u.name) + '/' + (server ? enc(server) + '/' : '');
      if (phase === 'stopped' || phase === 'failed') cell.append(button('Start', 'start', u.name, '', server));
      if (phase === 'suspended') cell.append(button('Resume', 'resume', u.name, '', server));
      if (phase === 'running') {
        const access = el('a', { class: 'button', href: base, 'data-action': 'access', 'data-user': u.name, target: '_blank', rel: 'noopener', text: 'Access' });
        if (server) access.dataset.server = server;
        cell.append(access, button('Suspend', 'suspend', u.name, undefined, server));
      }
      if (phase === 'running' || phase === 'pending' || phase === 'suspended') cell.append(button('Stop', 'stop', u.name, undefined, server));
      cell.append(button('Logs', 'logs', u.name, undefined, server));
    }

    function render() {
      const body = $('users-body');
      const rows = [];
      for (const u of state.users) {
        const phase = phaseOf(u);
        const actions = el('td', { class: 'actions' });
        if (u.approval !== 'approved') actions.append(button('Approve', 'approve', u.name, ''));
        else if (u.name !== me) actions.append(button('Revoke', 'revoke', u.name));
        serverButtons(actions, u, '', phase);
        actions.append(button('Reset password', 'password', u.name), button('Edit', 'edit', u.name));
        if (u.name !== me) actions.append(button('Delete', 'delete', u.name, 'danger'));
        const box = el('input', { type: 'checkbox', class: 'pick', 'data-user': u.name, 'aria-label': 'Select ' + u.name });
        box.checked = state.selected.has(u.name);
        const who = el('td', {}, el('strong', { text: u.name }));
        if (u.admin) who.append(' ', el('span', { class: 'badge', text: 'admin' }));
        rows.push(el('tr', { id: 'user-' + u.name, 'data-user': u.name },
          el('td', {}, box), who,
          el('td', {}, el('span', { class: 'badge ' + phase, text: phase, title: failureOf(u.servers && u.servers['']) }),
            failureOf(u.servers && u.servers['']) ? el('small', { class: 'failure', text: ' ' + failureOf(u.servers['']).slice(0, 80) }) : ''),
          el('td', {}, el('span', { class: 'badge ' + u.approval, text: u.approval })),
          el('td', { class: 'optional', text: (u.groups || []).join(', ') }),
          el('td', { class: 'optional', title: u.last_activity || '', text: ago(u.last_activity) }),
          el('td', { class: 'optional', text: (u.created || '').slice(0, 10) }),
          actions));
        // Named servers, one row each under their user.
        for (const server of Object.keys(u.servers || {}).filter((n) => n !== '').sort()) {
          const s = u.servers[server], sphase = serverPhase(s);
          const controls = el('td', { class: 'actions' });
          serverButtons(controls, u, server, sphase);
          rows.push(el('tr', { class: 'named-server', 'data-user': u.name, 'data-server': server },
            el('td', {}), el('td', { text: '↳ ' + server }),
            el('td', {}, el('span', { class: 'badge ' + sphase, text: sphase })),
            el('td', {}), el('td', { class: 'optional' }),
            el('td', { class: 'optional', title: (s && s.last_activity) || '', text: ago(s && s.last_activity) }),
            el('td', { class: 'optional' }), controls));
        }
      }
      if (!rows.length) rows.push(el('tr', {}, el('td', { colspan: '8', class: 'muted', text: 'No users match.' })));
      body.replaceChildren(...rows);
      const first = state.total ? state.offset + 1 : 0;
      $('range').textContent = first + '–' + (state.offset + state.users.length) + ' of ' + state.total.toLocaleString('en');
      $('prev').disabled = state.offset === 0;
      $('next').disabled = state.offset + state.users.length >= state.total;
      $('select-all').checked = state.users.length > 0 && state.users.every((u) => state.selected.has(u.name));
      $('selected-count').textContent = state.selected.size + ' selected';
      root.dataset.loaded = 'true';
    }

    const path = (name) => '/users/' + enc(name);
    // The default server is /users/{name}/server, a named one /users/{name}/servers/{server}.
    const serverPath = (name, server) => path(name) + (server ? '/servers/' + enc(server) : '/server');
    const what = (n, server) => n + '’s ' + (server ? 'server ' + server : 'workspace');
    const actions = {
      approve: (n) => api('PATCH', path(n), { approval: 'approved' }).then(() => n + ' approved'),
      revoke: (n) => api('PATCH', path(n), { approval: 'revoked' }).then(() => n + ' revoked: they cannot log in; their data stays'),
      start: (n, files, server) => api('POST', serverPath(n, server), {}).then(() => 'Starting ' + what(n, server)),
      resume: (n, files, server) => api('POST', serverPath(n, server) + '/resume', {}).then(() => 'Resuming ' + what(n, server)),
      stop: (n, files, server) => api('DELETE', serverPath(n, server)).then(() => 'Stopping ' + what(n, server)),
      suspend: (n, files, server) => api('POST', serverPath(n, server) + '/suspend').then(() => 'Suspending ' + what(n, server)),
      remove: (n, files) => api(files ? 'POST' : 'DELETE', path(n) + (files ? '/delete-forever' : '')).then(() => n + ' deleted' + (files ? ' with their files' : '')),
    };

    async function act(action, name, server) {
      try { flash(await actions[action](name, false, server)); } catch (e) { flash(name + ': ' + e.message, true); }
      load();
    }

    function openDialog(id, who) {
      const d = $(id);
      for (const w of d.querySelectorAll('.who')) w.textContent = who;
      for (const e of d.querySelectorAll('.error')) { e.hidden = true; e.textContent = ''; }
      d.showModal();
      return d;
    }
    function dialogError(d, message) { const e = d.querySelector('.error'); e.textContent = message; e.hidden = false; }
    for (const d of document.querySelectorAll('dialog')) {
      for (const c of d.querySelectorAll('.close')) c.addEventListener('click', () => d.close());
    }

    let current = null, currentServer = '';
    async function showLogs() {
      $('logs-text').textContent = 'Loading…';
      $('logs-usage').textContent = '';
      try {
        const data = await api('GET', serverPath(current, currentServer) + '/logs?lines=300');
        $('logs-text').textContent = data.lines.length ? data.lines.join('\n') : '(no output)';
        const u = data.atrium_usage;
        if (u) {
          const parts = [];
          if (u.memory_bytes != null) parts.push('Memory ' + (u.memory_bytes / 1048576).toFixed(1) + ' MiB');
          if (u.cpu_seconds != null) parts.push('CPU time ' + u.cpu_seconds.toFixed(1) + ' s');
          if (u.tasks != null) parts.push(u.tasks + ' tasks (processes and threads)');
          $('logs-usage').textContent = 'Now: ' + parts.join(' · ');
        }
      } catch (e) { $('logs-text').textContent = e.message; }
    }
    $('logs-refresh').addEventListener('click', showLogs);

    $('users-body').addEventListener('change', (ev) => {
      const box = ev.target.closest('input.pick');
      if (!box) return;
      if (box.checked) state.selected.add(box.dataset.user); else state.selected.delete(box.dataset.user);
      render();
    });
    $('select-all').addEventListener('change', (ev) => {
      for (const u of state.users) { if (ev.target.checked) state.selected.add(u.name); else state.selected.delete(u.name); }
      render();
    });

    $('users-body').addEventListener('click', async (ev) => {
      const b = ev.target.closest('button[data-action]');
      if (!b) return;
      const name = b.dataset.user, action = b.dataset.action, server = b.dataset.server || '';
      current = name;
      currentServer = server;
      const user = state.users.find((u) => u.name === name) || { name, groups: [], admin: false };
      if (action === 'stop' || action === 'suspend' || action === 'revoke') {
        if (!confirm((action === 'revoke' ? 'Revoke ' + name + '? They will not be able to log in (their data stays).' : action[0].toUpperCase() + action.slice(1) + ' ' + what(name, server) + '?'))) return;
        return act(action, name, server);
      }
      if (actions[action]) return act(action, name, server);
      if (action === 'logs') { openDialog('dlg-logs', server ? name + '/' + server : name); return showLogs(); }
      if (action === 'password') {
        if (!confirm('Reset the password of ' + name + '? Their current password stops working.')) return;
        try {
          const data = await api('POST', path(name) + '/reset-password');
          $('new-password').textContent = data.password;
          openDialog('dlg-password', name);
        } catch (e) { flash(name + ': ' + e.message, true); }
        return;
      }
      if (action === 'edit') {
        openDialog('dlg-edit', name);
        $('edit-name').value = user.name;
        $('edit-admin').checked = !!user.admin;
        $('edit-groups').value = (user.groups || []).join(', ');
        return;
      }
      if (action === 'delete') { $('delete-files').checked = false; openDialog('dlg-delete', name); }
    });

    $('edit-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const d = $('dlg-edit');
      const user = state.users.find((u) => u.name === current) || { name: current, groups: [], admin: false };
      const newName = $('edit-name').value.trim();
      const admin = $('edit-admin').checked;
      const groups = [...new Set($('edit-groups').value.split(',').map((g) => g.trim()).filter(Boolean))];
      try {
        const patch = {};
        if (newName !== user.name) patch.name = newName;
        if (admin !== !!user.admin) patch.admin = admin;
        let name = user.name;
        if (Object.keys(patch).length) name = (await api('PATCH', path(user.name), patch)).name;
        const before = new Set(user.groups || []);
        for (const g of groups) if (!before.has(g)) {
          try { await api('POST', '/groups/' + enc(g) + '/users', { users: [name] }); }
          catch (e) { await api('POST', '/groups/' + enc(g), { users: [name] }); }
        }
        for (const g of before) if (!groups.includes(g)) await api('DELETE', '/groups/' + enc(g) + '/users', { users: [name] });
        d.close();
        flash(name + ' saved');
        loadGroups();
        load();
      } catch (e) { dialogError(d, e.message); }
    });

    $('delete-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const d = $('dlg-delete');
      const files = $('delete-files').checked;
      if (files && !confirm('Permanently delete the stored files of ' + current + ' too?')) return;
      try { flash(await actions.remove(current, files)); state.selected.delete(current); d.close(); load(); }
      catch (e) { dialogError(d, e.message); }
    });

    // Bulk actions, a few at a time.
    async function each(names, fn) {
      const queue = [...names]; const failures = [];
      async function worker() { while (queue.length) { const n = queue.shift(); try { await fn(n); } catch (e) { failures.push(n + ': ' + e.message); } } }
      await Promise.all([worker(), worker(), worker(), worker()]);
      return failures;
    }
    for (const b of document.querySelectorAll('[data-bulk]')) {
      b.addEventListener('click', async () => {
        const action = b.dataset.bulk;
        const names = [...state.selected].filter((n) => !(n === me && (action === 'delete' || action === 'stop')));
        if (!names.length) { flash('Select users first (the boxes on the left).', true); return; }
        const verbs = { approve: 'Approve', start: 'Start the workspaces of', stop: 'Stop the workspaces of', suspend: 'Suspend the workspaces of', delete: 'Delete (files stay)' };
        if (!confirm(verbs[action] + ' ' + names.length + ' user' + (names.length === 1 ? '' : 's') + '?')) return;
        const fn = action === 'delete' ? (n) => actions.remove(n, false) : actions[action];
        const failures = await each(names, fn);
        if (action === 'delete') for (const n of names) if (!failures.some((f) => f.startsWith(n + ':'))) state.selected.delete(n);
        if (failures.length) flash(failures.length + ' failed: ' + failures.slice(0, 5).join('; '), true);
        else flash(verbs[action] + ': done for ' + names.length + ' user' + (names.length === 1 ? '' : 's'));
        load();
      });
    }

    // Add users: names or a CSV roster, passwords shown once and downloadable.
    $('add-open').addEventListener('click', () => {
      $('add-input').hidden = false; $('add-result').hidden = true; $('add-error').hidden = true;
      $('dlg-add').showModal();
    });
    $('add-file').addEventListener('change', async () => {
      const f = $('add-file').files[0];
      if (f) $('add-text').value = await f.text();
    });
    function csvField(v) { v = String(v == null ? '' : v); return /[",\n]/.test(v) ? '"' + v.replace(/"/g, '""') + '"' : v; }
    $('add-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const button = $('add-submit');
      button.disabled = true;
      try {
        const data = await api('POST', '/roster', { csv: $('add-text').value });
        const lines = ['username,password,groups,profile,admin'];
        const rows = [];
        for (const u of data.users) {
          lines.push([u.name, u.password || '', (u.groups || []).join(';'), u.profile || '', u.admin].map(csvField).join(','));
          rows.push(el('tr', {}, el('td', { text: u.name }), el('td', {}, el('code', { text: u.password || '—' })), el('td', { text: (u.groups || []).join(', ') })));
        }
        $('add-rows').replaceChildren(...rows);
        // A data: URL (not blob:) so the page's Content-Security-Policy has nothing to refuse.
        $('add-download').href = 'data:text/csv;charset=utf-8,' + encodeURIComponent(lines.join('\n') + '\n');
        $('add-summary').textContent = data.users.length + ' users created' + (data.skipped.length ? ' (' + data.skipped.length + ' existed already: ' + data.skipped.join(', ') + ')' : '') + '. The passwords are shown only now: download them.';
        $('add-input').hidden = true; $('add-result').hidden = false;
        $('add-text').value = ''; $('add-file').value = '';
        load(); loadGroups();
      } catch (e) {
        $('add-error').textContent = e.message; $('add-error').hidden = false;
      } finally { button.disabled = false; }
    });

    // Groups.
    async function loadGroups() {
      let groups;
      try { groups = await api('GET', '/groups'); } catch (e) { flash('Could not load groups: ' + e.message, true); return; }
      const select = $('group-filter'), chosen = select.value;
      select.replaceChildren(el('option', { value: '', text: 'Any group' }), ...groups.map((g) => el('option', { value: g.name, text: g.name })));
      if (chosen && !groups.some((g) => g.name === chosen)) select.append(el('option', { value: chosen, text: chosen }));
      select.value = chosen;
      const rows = groups.map((g) => el('tr', { id: 'group-' + g.name },
        el('td', {}, el('strong', { text: g.name })), el('td', { text: g.users.length + (g.users.length ? ': ' + g.users.slice(0, 8).join(', ') + (g.users.length > 8 ? ', …' : '') : '') }),
        el('td', { class: 'actions' },
          el('button', { type: 'button', class: 'secondary', 'data-gaction': 'members', 'data-group': g.name, text: 'Members' }),
          el('button', { type: 'button', class: 'secondary', 'data-gaction': 'rename', 'data-group': g.name, text: 'Rename' }),
          el('button', { type: 'button', class: 'danger', 'data-gaction': 'delete', 'data-group': g.name, text: 'Delete' }))));
      if (!rows.length) rows.push(el('tr', {}, el('td', { colspan: '3', class: 'muted', text: 'No groups yet.' })));
      $('groups-body').replaceChildren(...rows);
      state.groups = groups;
    }
    $('group-create').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const name = $('group-name').value.trim();
      try { await api('POST', '/groups/' + enc(name)); $('group-name').value = ''; flash('Group ' + name + ' created'); loadGroups(); }
      catch (e) { flash(e.message, true); }
    });
    let currentGroup = null;
    $('groups-body').addEventListener('click', async (ev) => {
      const b = ev.target.closest('button[data-gaction]');
      if (!b) return;
      const name = b.dataset.group;
      currentGroup = (state.groups || []).find((g) => g.name === name) || { name, users: [] };
      try {
        if (b.dataset.gaction === 'delete') {
          if (!confirm('Delete the group ' + name + '? Its members stay.')) return;
          await api('DELETE', '/groups/' + enc(name)); flash('Group ' + name + ' deleted');
        } else if (b.dataset.gaction === 'rename') {
          const to = prompt('New name of the group ' + name, name);
          if (!to || to === name) return;
          await api('PATCH', '/groups/' + enc(name), { name: to.trim() }); flash('Group ' + name + ' renamed to ' + to.trim());
        } else {
          openDialog('dlg-members', name);
          $('members-text').value = currentGroup.users.join('\n');
          return;
        }
      } catch (e) { flash(e.message, true); }
      loadGroups(); load();
    });
    $('members-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      const d = $('dlg-members');
      const wanted = [...new Set($('members-text').value.split(/[\s,]+/).map((s) => s.trim().toLowerCase()).filter(Boolean))];
      const before = new Set(currentGroup.users);
      const add = wanted.filter((n) => !before.has(n)), remove = currentGroup.users.filter((n) => !wanted.includes(n));
      try {
        if (add.length) await api('POST', '/groups/' + enc(currentGroup.name) + '/users', { users: add });
        if (remove.length) await api('DELETE', '/groups/' + enc(currentGroup.name) + '/users', { users: remove });
        d.close(); flash('Members of ' + currentGroup.name + ' saved'); loadGroups(); load();
      } catch (e) { dialogError(d, e.message); }
    });

    // Searching, filtering, sorting, paging.
    let searchTimer;
    $('search').addEventListener('input', () => { clearTimeout(searchTimer); searchTimer = setTimeout(() => { state.offset = 0; saveLocation(); load(); }, 250); });
    for (const id of ['filter', 'group-filter', 'sort']) $(id).addEventListener('change', () => { state.offset = 0; saveLocation(); load(); });
    $('page-size').addEventListener('change', () => { state.limit = parseInt($('page-size').value, 10); state.offset = 0; saveLocation(); load(); });
    $('prev').addEventListener('click', () => { state.offset = Math.max(0, state.offset - state.limit); saveLocation(); load(); });
    $('next').addEventListener('click', () => { state.offset += state.limit; saveLocation(); load(); });

    // Live status: the current page is read again every 3 s while the tab is visible and no
    // dialog is open (so a row never changes under the admin's pointer mid-edit).
    setInterval(() => {
      if (document.visibilityState !== 'visible' || document.querySelector('dialog[open]')) return;
      load();
    }, 3000);

    restoreLocation();
    load();
    loadGroups();
    })();
    """#

    static let token = #"""
    'use strict';
    (() => {
    const root = document.getElementById('tokens');
    const xsrf = root.dataset.xsrf, me = root.dataset.me;
    const $ = (id) => document.getElementById(id);
    const base = '/hub/api/users/' + encodeURIComponent(me) + '/tokens';
    async function api(method, url, body) {
      const init = { method, credentials: 'same-origin', headers: { 'X-XSRFToken': xsrf, 'Accept': 'application/json' } };
      if (body !== undefined) { init.headers['Content-Type'] = 'application/json'; init.body = JSON.stringify(body); }
      const r = await fetch(url, init);
      if (r.status === 204) return null;
      const data = await r.json().catch(() => null);
      if (!r.ok) throw new Error((data && data.message) || String(r.status));
      return data;
    }
    function cell(text, cls) { const td = document.createElement('td'); td.textContent = text; if (cls) td.className = cls; return td; }
    async function load() {
      const data = await api('GET', base);
      const rows = data.api_tokens.map((t) => {
        const tr = document.createElement('tr');
        tr.id = 'token-' + t.id;
        tr.append(cell(t.note || ''), cell(t.scopes.join(' ')), cell((t.created || '').slice(0, 16).replace('T', ' '), 'optional'),
          cell(t.expires_at ? t.expires_at.slice(0, 16).replace('T', ' ') : 'never'), cell(t.last_activity ? t.last_activity.slice(0, 16).replace('T', ' ') : 'never', 'optional'));
        const td = document.createElement('td');
        const b = document.createElement('button');
        b.type = 'button'; b.className = 'danger act'; b.textContent = 'Revoke'; b.dataset.token = t.id;
        td.append(b); tr.append(td);
        return tr;
      });
      if (!rows.length) { const tr = document.createElement('tr'); const td = cell('No tokens.', 'muted'); td.colSpan = 6; tr.append(td); rows.push(tr); }
      $('token-list').replaceChildren(...rows);
    }
    $('token-form').addEventListener('submit', async (ev) => {
      ev.preventDefault();
      $('token-error').hidden = true;
      const body = { note: $('token-note').value.trim() || undefined, expires_in: parseInt($('token-expiry').value, 10) };
      const scopes = $('token-scopes').value.split(/\s+/).filter(Boolean);
      if (scopes.length) body.scopes = scopes;
      try {
        const t = await api('POST', base, body);
        $('token-value').textContent = t.token; $('token-new').hidden = false;
        $('token-note').value = ''; $('token-scopes').value = '';
        load();
      } catch (e) { $('token-error').textContent = e.message; $('token-error').hidden = false; }
    });
    $('token-list').addEventListener('click', async (ev) => {
      const b = ev.target.closest('button[data-token]');
      if (!b || !confirm('Revoke this token? Programs using it stop working.')) return;
      try { await api('DELETE', base + '/' + b.dataset.token); load(); } catch (e) { alert(e.message); }
    });
    load();
    })();
    """#
}
