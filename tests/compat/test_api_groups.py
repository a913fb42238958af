"""JupyterHub 6.1.1's tests/test_api.py, group part, against the real `atrium serve` (see
conftest.py and api_compat.py). JupyterHub's tests make groups in its database and start from
none; these make their groups through the API, with fresh names, and read lists from where
their groups are.
"""
import json

import pytest

from api_compat import add_user, api_request, new_name


def group_model(name, users=()):
    return {"kind": "group", "name": name, "users": list(users), "roles": [], "properties": {}}


def create_group(app, name=None, users=None):
    name = name or new_name("group")
    r = api_request(app, "groups", name, method="post", json={"users": users} if users else None)
    assert r.status_code == 201, r.text
    return name


def group_of(app, name):
    r = api_request(app, "groups", name)
    assert r.status_code == 200, r.text
    return r.json()


def test_groups_list(app):
    """ported from test_api.py::test_groups_list. JupyterHub's database holds only its two
    groups; here the offsets are counted from where this test's groups are in the list."""
    r = api_request(app, "groups")
    r.raise_for_status()
    before = r.json()
    assert isinstance(before, list)

    # create two groups
    alpha = create_group(app, new_name("alphaflight"))
    beta = create_group(app, new_name("betaflight"))
    i = len(before)  # new groups come last (ordered by id)

    r = api_request(app, "groups")
    r.raise_for_status()
    reply = r.json()
    assert reply[i:] == [group_model(alpha), group_model(beta)]

    # Test offset for pagination
    r = api_request(app, f"groups?offset={i + 1}")
    r.raise_for_status()
    assert r.status_code == 200
    assert r.json() == [group_model(beta)]

    r = api_request(app, f"groups?offset={i + 10}")
    r.raise_for_status()
    assert r.json() == []

    # Test limit for pagination
    r = api_request(app, f"groups?offset={i}&limit=1")
    r.raise_for_status()
    assert r.status_code == 200
    assert r.json() == [group_model(alpha)]

    # 0 is rounded up to 1
    r = api_request(app, f"groups?offset={i}&limit=0")
    r.raise_for_status()
    assert r.json() == [group_model(alpha)]


def test_add_multi_group(app):
    """ported from test_api.py::test_add_multi_group"""
    names = [new_name("group1"), new_name("group2")]
    r = api_request(app, "groups", method="post", data=json.dumps({"groups": names}))
    assert r.status_code == 201
    assert [group["name"] for group in r.json()] == names

    # try to create the same groups again
    r = api_request(app, "groups", method="post", data=json.dumps({"groups": names}))
    assert r.status_code == 409


def test_group_get(app):
    """ported from test_api.py::test_group_get"""
    user = add_user(app, name=new_name("sasquatch"))
    alpha = create_group(app, new_name("alphaflight"), users=[user])

    r = api_request(app, "groups", new_name("runaways"))
    assert r.status_code == 404

    r = api_request(app, "groups", alpha)
    r.raise_for_status()
    assert r.json() == group_model(alpha, [user])


def test_group_create_delete(app):
    """ported from test_api.py::test_group_create_delete"""
    user = add_user(app, name=new_name("sasquatch"))
    r = api_request(app, "groups", new_name("runaways"), method="delete")
    assert r.status_code == 404

    new = new_name("new")
    r = api_request(app, "groups", new, method="post", data=json.dumps({"users": [new_name("doesntexist")]}))
    assert r.status_code == 400
    assert api_request(app, "groups", new).status_code == 404

    omega = new_name("omegaflight")
    r = api_request(app, "groups", omega, method="post", data=json.dumps({"users": [user]}))
    r.raise_for_status()
    assert omega in api_request(app, "users", user).json()["groups"]
    assert user in group_of(app, omega)["users"]

    # create duplicate raises 409
    r = api_request(app, "groups", omega, method="post")
    assert r.status_code == 409

    r = api_request(app, "groups", omega, method="delete")
    assert r.status_code == 204
    assert omega not in api_request(app, "users", user).json()["groups"]
    assert api_request(app, "groups", omega).status_code == 404

    # delete nonexistent gives 404
    r = api_request(app, "groups", omega, method="delete")
    assert r.status_code == 404


def test_group_add_delete_users(app):
    """ported from test_api.py::test_group_add_delete_users"""
    alpha = create_group(app, new_name("alphaflight"))
    # must specify users
    r = api_request(app, "groups", alpha, "users", method="post", data="{}")
    assert r.status_code == 400

    names = [add_user(app, name=new_name(n)) for n in
             ("aurora", "guardian", "northstar", "sasquatch", "shaman", "snowbird")]
    r = api_request(app, "groups", alpha, "users", method="post", data=json.dumps({"users": names}))
    r.raise_for_status()

    for name in names:
        assert api_request(app, "users", name).json()["groups"] == [alpha]
    assert sorted(group_of(app, alpha)["users"]) == sorted(names)

    r = api_request(app, "groups", alpha, "users", method="delete", data=json.dumps({"users": names[:2]}))
    r.raise_for_status()

    for name in names[:2]:
        assert api_request(app, "users", name).json()["groups"] == []
    for name in names[2:]:
        assert api_request(app, "users", name).json()["groups"] == [alpha]
    assert sorted(group_of(app, alpha)["users"]) == sorted(names[2:])


@pytest.mark.parametrize("properties", ["", "str", 5, ["list"]])
def test_group_properties_invalid(app, properties):
    """ported from test_api.py::test_group_properties_invalid"""
    group = create_group(app)
    json_properties = json.dumps(properties) if properties else ""
    have_properties = {"a": 5}
    r = api_request(app, f"groups/{group}/properties", method="put", data=json.dumps(have_properties))
    r.raise_for_status()
    r = api_request(app, f"groups/{group}/properties", method="put", data=json_properties)
    assert r.status_code == 400
    # invalid requests didn't change properties
    assert group_of(app, group)["properties"] == have_properties


def test_group_properties(app):
    """ported from test_api.py::test_group_properties"""
    group = create_group(app)
    properties = {"str": "x", "int": 5, "list": ["a"]}
    r = api_request(app, f"groups/{group}/properties", method="put", data=json.dumps(properties))
    r.raise_for_status()
    assert group_of(app, group)["properties"] == properties

    r = api_request(app, f"groups/{group}/properties", method="put", data="{}")
    r.raise_for_status()
    assert group_of(app, group)["properties"] == {}
