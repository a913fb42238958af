"""JupyterHub 6.1.1's tests/test_api.py::test_get_users_pagination, against the real
`atrium serve` (see conftest.py and api_compat.py).

JupyterHub's test lowers the page sizes (its default_page_limit and max_page_limit fixtures:
10 and 20); this hub is configured with the same (`api_page_default_limit`,
`api_page_max_limit`). Its own module: the test counts every user of the hub.

Atrium's README documents one difference on purpose: without the pagination Accept header,
JupyterHub cuts the list at the maximum page size (200, here 20), Atrium returns the whole
list, or exactly the offset/limit asked for. The cases where that matters expect Atrium's
documented answer and say so.
"""
from urllib.parse import parse_qs, urlparse

import pytest

from api_compat import PAGINATION_MEDIA_TYPE, api_request, new_name

DEFAULT_PAGE_LIMIT = 10
MAX_PAGE_LIMIT = 20

HUB_CONFIG = f"api_page_default_limit: {DEFAULT_PAGE_LIMIT}\napi_page_max_limit: {MAX_PAGE_LIMIT}\n"


def all_usernames(app):
    """Every user name in id order, read page by page with the pagination media type
    (JupyterHub's test reads its database)."""
    names = []
    offset = 0
    while True:
        r = api_request(app, "users", params={"offset": offset, "limit": MAX_PAGE_LIMIT, "sort": "id"},
                        headers={"Accept": PAGINATION_MEDIA_TYPE})
        assert r.status_code == 200, r.text
        page = r.json()
        names += [u["name"] for u in page["items"]]
        if not page["_pagination"]["next"]:
            return names
        offset = page["_pagination"]["next"]["offset"]


@pytest.mark.parametrize(
    "n, offset, limit, accepts_pagination, expected_count, include_stopped_servers",
    [
        (10, None, None, False, 10, False),
        (10, None, None, True, 10, False),
        (10, 5, None, True, 5, False),
        (10, 5, None, False, 5, False),
        (10, None, 5, True, 5, True),
        (10, 5, 1, True, 1, True),
        (10, 10, 10, True, 0, False),
        # default page limit, pagination expected
        (30, None, None, True, "default", False),
        # JupyterHub: default max page limit, pagination not expected -> 'max' (20).
        # Atrium (README, on purpose): the whole list.
        (30, None, None, False, "all", False),
        # JupyterHub: limit exceeded -> 'max' (20). Atrium (README, on purpose): the limit
        # asked for, 500, so the whole list of 30.
        (30, None, 500, False, "all", False),
    ],
)
def test_get_users_pagination(app, n, offset, limit, accepts_pagination, expected_count, include_stopped_servers):
    """ported from test_api.py::test_get_users_pagination"""
    if expected_count == "default":
        expected_count = DEFAULT_PAGE_LIMIT
    elif expected_count == "max":
        expected_count = MAX_PAGE_LIMIT
    # populate users up to n (JupyterHub also makes three groups, of which every other new
    # user is a member, to show that membership does not change the count)
    usernames = all_usernames(app)
    groups = [new_name("pagination") for _ in range(3)]
    for group in groups:
        assert api_request(app, "groups", group, method="post").status_code == 201
    for i in range(n - len(usernames)):
        name = app.add_user()
        usernames.append(name)
        if i % 2:
            for group in groups:
                r = api_request(app, "groups", group, "users", method="post", json={"users": [name]})
                assert r.status_code == 200, r.text
    total_users = len(usernames)
    if expected_count == "all":
        expected_count = total_users

    url = "users"
    params = {}
    if offset:
        params["offset"] = offset
    if limit:
        params["limit"] = limit
    if params:
        url += "?" + "&".join(f"{k}={v}" for k, v in params.items())
    if include_stopped_servers:
        # assumes limit is set
        url += "&include_stopped_servers"

    headers = {}
    if accepts_pagination:
        headers["Accept"] = PAGINATION_MEDIA_TYPE
    r = api_request(app, url, headers=headers)
    assert r.status_code == 200
    response = r.json()
    if accepts_pagination:
        assert set(response) == {"items", "_pagination"}
        pagination = response["_pagination"]
        if include_stopped_servers and pagination["next"]:
            next_query = parse_qs(urlparse(pagination["next"]["url"]).query, keep_blank_values=True)
            assert "include_stopped_servers" in next_query
        users = response["items"]
        assert pagination["total"] == total_users
    else:
        users = response
    assert len(users) == expected_count
    expected_usernames = usernames
    if offset:
        expected_usernames = expected_usernames[offset:]
    expected_usernames = expected_usernames[:expected_count]

    got_usernames = [u["name"] for u in users]
    assert got_usernames == expected_usernames
