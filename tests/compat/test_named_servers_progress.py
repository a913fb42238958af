"""JupyterHub 6.1.1's test_api.py::test_progress for a named server, on a hub without patience
(JupyterHub's `no_patience` fixture: slow_spawn_timeout and slow_stop_timeout 0.1 s), so the
start answers at once and the progress stream is read while the server is still starting.
The other named-server progress tests are in test_named_servers.py."""
import json
from urllib.parse import quote

HUB_SPAWN = {"allow_named_servers": "true", "named_server_limit_per_user": "2",
             "slow_spawn_timeout": "100ms", "slow_stop_timeout": "100ms"}


def next_event(it):
    """test_api.py::next_event: read an event from an eventstream"""
    while True:
        try:
            line = next(it)
        except StopIteration:
            return
        if line.startswith('data:'):
            return json.loads(line.split(':', 1)[1])


def test_progress_named(app):
    """ported from test_api.py::test_progress (named server; the events between the first and
    the last are the spawner's own `progress()`, here Atrium's backend's: not compared)"""
    name = app.add_user()
    r = app.api_request('users', name, 'servers', 'slow', method='post')
    r.raise_for_status()
    assert r.status_code == 202, "the start should still be pending after 0.1 s"
    r = app.api_request('users', name, 'servers/slow/progress', stream=True)
    try:
        r.raise_for_status()
        assert r.headers['content-type'] == 'text/event-stream'
        line_iter = iter(r.iter_lines(decode_unicode=True))
        evt = next_event(line_iter)
        events = [evt]
        while evt is not None and not evt.get('ready') and not evt.get('failed'):
            evt = next_event(line_iter)
            events.append(evt)
    finally:
        r.close()
    url = f"/user/{quote(name, safe='@~')}/slow/"
    # JupyterHub's test checks the first event, then the last; both are compared at once here
    # so that a difference in one does not hide the other
    assert (events[0], events[-1]) == (
        {'progress': 0, 'message': 'Server requested'},
        {
            'progress': 100,
            'message': f'Server ready at {url}',
            'html_message': f'Server ready at <a href="{url}">{url}</a>',
            'url': url,
            'ready': True,
        },
    ), events
