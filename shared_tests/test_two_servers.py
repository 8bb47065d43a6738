"""Two server processes sharing one session store and one database act as one site (step 05+).

Signed cookies needed only a shared key; server-side sessions need a shared
store too. These are real, separate processes (`flask run` on two ports),
with the store of the environment: the step's database, or the Redis of
FLASK_REDIS_URL (`nox -s tests-redis`).
"""

import os

import pytest

from harness.accounts import USERS
from harness.pages import table_rows
from harness.served import Browser
from harness.served import Server
from harness.served import assert_one_site
from harness.services import environment_without


@pytest.fixture
def two_servers(step, app, test_config, tmp_path):
    """Two processes of the step sharing the test's database (with alice and bob) and its session store."""
    env = environment_without()
    env.update(
        FLASK_SECRET_KEY=test_config["SECRET_KEY"],  # CSRF tokens are signed with it
        FLASK_SQLALCHEMY_DATABASE_URI=test_config["SQLALCHEMY_DATABASE_URI"],
        FLASK_BCRYPT_LOG_ROUNDS=str(test_config["BCRYPT_LOG_ROUNDS"]),
    )
    if os.environ.get("FLASK_REDIS_URL"):
        env.update(
            FLASK_REDIS_URL=os.environ["FLASK_REDIS_URL"], FLASK_SESSION_KEY_PREFIX=test_config["SESSION_KEY_PREFIX"]
        )
    servers = []
    try:
        for name in ("one", "two"):
            folder = tmp_path / name
            folder.mkdir()
            servers.append(Server(step, env, folder / "server.log"))
        for server in servers:
            server.wait()
        yield servers
        for server in servers:
            assert server.errors() == [], f"the server logged errors; see {server.log}"
    finally:
        for server in servers:
            server.stop()


@pytest.mark.contract(
    "Two app processes sharing one session store and one database act as one site: "
    "a login on one is valid on the other, a logout on one ends it on both"
)
@pytest.mark.features("login", "logout", "profile", "server-sessions", "database")
def test_two_servers_act_as_one_site(two_servers):
    assert_one_site(*two_servers)


@pytest.mark.contract(
    "Disabling an account on one server ends its sessions on every server sharing the store and the database, "
    "at once (step 13+)"
)
@pytest.mark.features("login", "profile", "server-sessions", "database", "roles", "admin-area")
def test_disabling_on_one_server_ends_the_sessions_on_both(two_servers, runner):
    one, two = two_servers
    granted = runner.invoke(args=["roles", "grant", "alice", "admin"])
    assert granted.exit_code == 0, granted.output
    alice, bob = Browser(), Browser()
    assert alice.log_in(one) == (302, "/profile")
    assert bob.log_in(two, "bob", remember=True) == (302, "/profile")
    assert bob.logged_in_as(one) == "bob"
    assert alice.post(one, f"/admin/users/{USERS['bob']['id']}/disable") == (302, "/admin/users")
    for server in (two, one):
        assert bob.logged_in_as(server) is None
    assert bob.log_in(two, "bob")[0] == 200  # the form again: This account is disabled.
    assert alice.logged_in_as(two) == "alice"


@pytest.mark.contract(
    "The sessions page lists the user's sessions on every server sharing the store, and ending one there ends "
    "it on every server (step 14)"
)
@pytest.mark.features("login", "profile", "server-sessions", "database", "device-sessions")
def test_the_sessions_page_lists_and_ends_across_servers(two_servers):
    one, two = two_servers
    laptop, phone = Browser(headers={"User-Agent": "laptop Firefox/133.0"}), Browser()
    assert laptop.log_in(one) == (302, "/profile")
    assert phone.log_in(two) == (302, "/profile")
    status, page = phone.request(two, "/account/sessions")
    assert status == 200 and len(table_rows(page)) == 2
    [end] = [action for cells, [action] in table_rows(page) if "Firefox" in cells[0]]
    assert phone.post(two, end) == (302, "/account/sessions")
    for server in (one, two):
        assert laptop.logged_in_as(server) is None
        assert phone.logged_in_as(server) == "alice"
