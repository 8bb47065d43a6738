"""Roles and an admin area (step 13+): who may see the admin pages, and what disabling an account does at once.

The first admin is made as an operator makes one, with the step's own
`flask roles grant` command; everything else goes through the pages, as
a browser would, and through copies of cookies, as a thief would.
"""

import re
import urllib.parse

import pytest

from harness.accounts import USERS
from harness.apps import AuthActions
from harness.apps import CliRunner
from harness.apps import browser
from harness.apps import can_log_in
from harness.apps import grant
from harness.apps import house_rule_problems
from harness.apps import is_anonymous
from harness.apps import layout
from harness.apps import logged_in_browser
from harness.apps import session_cookie
from harness.apps import travel
from harness.pages import table_rows
from harness.pages import text

ADMIN = ("roles", "admin-area", "login", "profile")
ALICE, BOB = USERS["alice"]["id"], USERS["bob"]["id"]
DISABLED = "This account is disabled."
# Seconds a login stays fresh (FLASK_FRESH_LOGIN_LIFETIME); the tests move the clock past it.
FRESH_SECONDS = 15 * 60
# The page an admin's forms are on: the browser names it in the Referer header.
FROM_THE_LIST = {"Referer": "http://localhost/admin/users"}


def admin(app):
    """alice, made admin from the command line, logged in with her password just now (a fresh login)."""
    grant(app)
    return logged_in_browser(app, "alice")


def act(auth, action, user_id=BOB):
    """Press one of the admin list's buttons: POST /admin/users/<id>/<action>, from the list."""
    return auth.post(f"/admin/users/{user_id}/{action}", headers=FROM_THE_LIST)


def copy_of(app, auth):
    """Another browser, at another address, holding a copy of `auth`'s session cookie: a thief's."""
    thief = browser(app, address="203.0.113.66")
    thief.client.set_cookie(app.config["SESSION_COOKIE_NAME"], session_cookie(app, auth.client))
    return thief


def login_error(response):
    """The error the login form shows again (or None): the text of its role=alert element."""
    found = re.search(r'role="alert">([^<]*)<', response.text)
    return found.group(1).strip() if found else None


def rows(html):
    """The admin list's rows, each as its text: {username: text}. The first cell is the username, then the email."""
    found = {}
    for cells, _ in table_rows(html):
        username = cells[0].split()[0]
        if username in USERS:
            found[username] = " ".join(cells)
    return found


@pytest.mark.contract(
    "Roles live in the database: flask roles grant USERNAME ROLE and roles revoke USERNAME ROLE, at once, "
    "on the user's next page (step 13+)"
)
@pytest.mark.features(*ADMIN)
def test_roles_are_granted_and_revoked_from_the_command_line(app):
    runner = CliRunner(app)
    alice = logged_in_browser(app)
    assert alice.client.get("/admin/users").status_code == 403
    assert "'alice' is now admin." in grant(app, "ALICE")  # letter case does not count, as at login
    assert "'alice' was admin already." in grant(app)
    # The same session, no new login: the role is asked of the database on each page.
    assert alice.client.get("/admin/users").status_code == 200
    revoked = runner.invoke(args=["roles", "revoke", "alice", "admin"])
    assert (revoked.exit_code, revoked.output.strip()) == (0, "'alice' is no longer admin.")
    assert alice.client.get("/admin/users").status_code == 403
    again = runner.invoke(args=["roles", "revoke", "alice", "admin"])
    assert (again.exit_code, again.output.strip()) == (0, "'alice' was not admin.")
    nobody = runner.invoke(args=["roles", "grant", "zed", "admin"])
    assert nobody.exit_code == 1 and "There is no user 'zed'." in nobody.output
    typo = runner.invoke(args=["roles", "grant", "alice", "admn"])
    assert typo.exit_code == 2 and "admn" in typo.output
    assert alice.client.get("/admin/users").status_code == 403


ROUTES = [
    ("GET", "/admin/users"),
    ("POST", f"/admin/users/{ALICE}/disable"),
    ("POST", f"/admin/users/{ALICE}/enable"),
    ("POST", f"/admin/users/{ALICE}/end-sessions"),
]


@pytest.mark.contract(
    "Every admin route refuses anonymous visitors (a redirect to /login) and users without the admin role "
    "(403, a page in the site's layout), by GET and by POST, with a CSRF token or without (step 13+)"
)
@pytest.mark.features(*ADMIN, "csrf", "server-sessions")
@pytest.mark.parametrize(("method", "path"), ROUTES, ids=[f"{method} {path}" for method, path in ROUTES])
@pytest.mark.parametrize("who", ["anonymous", "bob"])
@pytest.mark.parametrize("token", ["with a CSRF token", "without"])
@pytest.mark.asvs("8.2.1", "8.3.1")
def test_no_admin_route_answers_a_non_admin(app, method, path, who, token):
    grant(app)
    alice = logged_in_browser(app)  # the admin, whose account every POST names
    visitor = browser(app) if who == "anonymous" else logged_in_browser(app, "bob")
    if method == "GET":
        response = visitor.client.get(path)
    elif token == "without":
        response = visitor.client.post(path)
    else:
        response = visitor.post(path)
    if method == "POST" and token == "without":
        assert response.status_code == 400  # the CSRF check comes first
    elif who == "anonymous":
        assert response.status_code in (302, 303)
        assert response.headers["Location"].startswith("/login?next=")
    else:
        assert response.status_code == 403
        assert layout(response.text) == layout(visitor.client.get("/profile").text)
        assert "Forbidden" in text(response.text)
    # Nothing happened to alice: still logged in, and still able to log in.
    assert not is_anonymous(alice.client)
    assert can_log_in(app, "alice")


@pytest.mark.contract(
    "GET /admin/users (role admin) lists every account with username, email, confirmed, two-factor, roles, "
    "disabled and last login (step 13+)"
)
@pytest.mark.features(*ADMIN, "two-factor")
def test_the_admin_list_shows_every_account(app):
    from harness.two_factor import turn_on

    alice = admin(app)
    listed = rows(alice.client.get("/admin/users").text)
    assert set(listed) == set(USERS)
    for username, user in USERS.items():
        assert user["email"] in listed[username]
    assert "admin" in listed["alice"] and "admin" not in listed["bob"]
    assert "never" in listed["bob"] and "never" not in listed["alice"]  # alice has logged in; bob not yet
    turn_on(logged_in_browser(app, "bob"), USERS["bob"]["password"])
    assert act(alice, "disable").status_code in (302, 303)
    after = rows(alice.client.get("/admin/users").text)["bob"]
    assert "never" not in after
    # Two-factor on, where it said off; two dates (disabled since, last login), where there were none.
    assert re.search(r"\bon\b", after) and not re.search(r"\bon\b", listed["bob"])
    dates = r"\b20\d\d-\d\d-\d\d\b"
    assert len(re.findall(dates, after)) == 2 and not re.findall(dates, listed["bob"])


@pytest.mark.contract(
    "POST /admin/users/<id>/disable ends every session of that account at once, remembered ones and copies "
    "included, and stops it logging in: after the right password it is told This account is disabled., after a "
    "wrong one the usual message; enable lets it log in again, but no old session comes back (step 13+)"
)
@pytest.mark.features(*ADMIN, "server-sessions", "remember")
@pytest.mark.asvs("7.4.2")
def test_disabling_an_account_ends_its_sessions_and_its_logins(app):
    alice = admin(app)
    bob = logged_in_browser(app, "bob")
    remembered = AuthActions(app.test_client())
    assert remembered.login("bob", remember="y").status_code in (302, 303)
    thief = copy_of(app, bob)
    assert not is_anonymous(thief.client)

    response = act(alice, "disable")
    assert (response.status_code, response.headers["Location"]) == (302, "/admin/users")
    assert "bob is disabled" in text(alice.client.get("/admin/users").text)
    for client in (bob.client, remembered.client, thief.client):
        assert is_anonymous(client)
    assert login_error(AuthActions(app.test_client()).login("bob")) == DISABLED
    assert login_error(AuthActions(app.test_client()).login("bob", "not-his-password")) == (
        "Invalid username or password."
    )
    assert not is_anonymous(alice.client)  # the admin goes on

    assert act(alice, "enable").status_code in (302, 303)
    assert can_log_in(app, "bob")
    for client in (bob.client, remembered.client, thief.client):
        assert is_anonymous(client)


@pytest.mark.contract("Admins cannot disable themselves (step 13+)")
@pytest.mark.features(*ADMIN)
def test_an_admin_cannot_disable_their_own_account(app):
    alice = admin(app)
    response = act(alice, "disable", ALICE)
    assert response.status_code in (302, 303)
    assert "You cannot disable your own account." in text(alice.client.get("/admin/users").text)
    assert not is_anonymous(alice.client)
    assert can_log_in(app, "alice")


@pytest.mark.contract(
    "POST /admin/users/<id>/end-sessions ends every session of that account; it logs in again as before (step 13+)"
)
@pytest.mark.features(*ADMIN, "server-sessions")
@pytest.mark.asvs("7.4.5")
def test_an_admin_ends_every_session_of_an_account(app):
    alice = admin(app)
    bob = logged_in_browser(app, "bob")
    thief = copy_of(app, bob)
    assert act(alice, "end-sessions").status_code in (302, 303)
    assert is_anonymous(bob.client) and is_anonymous(thief.client)
    assert not is_anonymous(alice.client)
    assert can_log_in(app, "bob")


@pytest.mark.contract(
    "Every admin POST needs a fresh login: a login older than FRESH_LOGIN_LIFETIME, remembered or not, is sent "
    "to give its password again (Flask-Login's refresh_view), then back to the page it came from (step 13+)"
)
@pytest.mark.features(*ADMIN, "remember", "server-sessions")
@pytest.mark.parametrize("remember", [True, False], ids=["remembered", "not remembered"])
@pytest.mark.asvs("7.5.3")
def test_a_stale_admin_login_gives_its_password_again(app, remember):
    grant(app)
    alice = AuthActions(app.test_client())
    assert alice.login("alice", **({"remember": "y"} if remember else {})).status_code in (302, 303)
    bob = logged_in_browser(app, "bob")
    with travel(FRESH_SECONDS + 60):
        assert alice.client.get("/admin/users").status_code == 200  # looking needs no fresh login
        response = act(alice, "disable")
        assert response.status_code in (302, 303)
        assert urllib.parse.unquote(response.headers["Location"]) == "/reauthenticate?next=/admin/users"
        for action in ("enable", "end-sessions"):  # every admin POST, not only this one
            assert act(alice, action).headers["Location"] == response.headers["Location"]
        assert can_log_in(app, "bob") and not is_anonymous(bob.client)  # nothing done yet
        page = alice.client.get(response.headers["Location"])
        assert "Please give your password again to do that." in text(page.text)
        wrong = alice.post(response.headers["Location"], {"current_password": "not-her-password"})
        assert wrong.status_code == 200 and "That is not your current password." in text(wrong.text)
        before = session_cookie(app, alice.client)
        right = alice.post(response.headers["Location"], {"current_password": USERS["alice"]["password"]})
        assert (right.status_code, right.headers["Location"]) == (302, "/admin/users")
        assert session_cookie(app, alice.client) != before  # a new session id at re-authentication
        assert act(alice, "disable").headers["Location"] == "/admin/users"
        assert not can_log_in(app, "bob")


@pytest.mark.contract(
    "A copy of an admin's session cookie, used from another address or browser, can look but not act: the "
    "session is no longer fresh (Flask-Login's session protection), and once the admin gives the password "
    "again it moves to a new id, leaving the copy nothing (step 13+)"
)
@pytest.mark.features(*ADMIN, "server-sessions")
def test_a_copied_admin_cookie_cannot_act_without_the_password(app):
    alice = admin(app)
    thief = copy_of(app, alice)
    assert thief.client.get("/admin/users").status_code == 200
    response = act(thief, "disable")
    assert response.headers["Location"].startswith("/reauthenticate?next=")
    assert can_log_in(app, "bob")
    # One session, two browsers: alice is asked too, and her password ends the copy.
    asked = act(alice, "disable")
    assert asked.headers["Location"].startswith("/reauthenticate?next=")
    assert alice.post(asked.headers["Location"], {"current_password": USERS["alice"]["password"]}).status_code == 302
    assert is_anonymous(thief.client)
    assert act(alice, "disable").headers["Location"] == "/admin/users"
    assert not can_log_in(app, "bob")


@pytest.mark.contract(
    "flask end-sessions USERNAME ends every session of that user, end-sessions --all of every user (step 13+)"
)
@pytest.mark.features(*ADMIN, "server-sessions")
@pytest.mark.asvs("7.4.5")
def test_end_sessions_from_the_command_line(app):
    runner = CliRunner(app)
    alice, bob = logged_in_browser(app), logged_in_browser(app, "bob")
    one = runner.invoke(args=["end-sessions", "BOB"])
    assert (one.exit_code, one.output.strip()) == (0, "Ended every session of 'bob'.")
    assert is_anonymous(bob.client) and not is_anonymous(alice.client)
    bob = logged_in_browser(app, "bob")
    everyone = runner.invoke(args=["end-sessions", "--all"])
    assert everyone.exit_code == 0 and "every account" in everyone.output
    assert is_anonymous(alice.client) and is_anonymous(bob.client)
    assert can_log_in(app, "alice") and can_log_in(app, "bob")
    for args, code in ((["end-sessions"], 2), (["end-sessions", "bob", "--all"], 2), (["end-sessions", "zed"], 1)):
        result = runner.invoke(args=args)
        assert result.exit_code == code, (args, result.output)
        assert "Traceback" not in result.output


@pytest.mark.contract(
    "A disabled account is refused whichever way it comes: half-way through a two-factor login, with a "
    "passkey, with the provider (step 13+)"
)
@pytest.mark.features(*ADMIN, "two-factor")
def test_a_disabled_account_is_stopped_half_way_through_two_factor(app):
    from harness.two_factor import second_stage
    from harness.two_factor import turn_on

    two_factor = turn_on(logged_in_browser(app, "bob"), USERS["bob"]["password"])
    bob = AuthActions(app.test_client())
    assert bob.login("bob").headers["Location"] == "/login/two-factor"
    alice = admin(app)
    assert act(alice, "disable").status_code in (302, 303)
    response = second_stage(bob, two_factor.next_code())
    assert response.headers["Location"] == "/login" and is_anonymous(bob.client)
    assert login_error(AuthActions(app.test_client()).login("bob")) == DISABLED


@pytest.mark.contract(
    "A disabled account is refused whichever way it comes: half-way through a two-factor login, with a "
    "passkey, with the provider (step 13+)"
)
@pytest.mark.features(*ADMIN, "passkeys")
def test_a_disabled_account_cannot_sign_in_with_a_passkey(app):
    from harness.passkeys import SoftAuthenticator
    from harness.passkeys import add_passkey
    from harness.passkeys import sign_in

    authenticator = SoftAuthenticator(app.config["WEBAUTHN_ORIGIN"])
    assert add_passkey(logged_in_browser(app, "bob"), authenticator, USERS["bob"]["password"]).status_code == 200
    assert act(admin(app), "disable").status_code in (302, 303)
    visitor = app.test_client()
    response = sign_in(visitor, authenticator)
    assert response.status_code == 403 and response.get_json() == {"error": DISABLED}
    assert is_anonymous(visitor)


class TestWithTheProvider:
    @pytest.fixture(name="test_config")
    def with_the_provider(self, test_config, provider):
        return test_config | provider.config("Example ID")

    @pytest.mark.contract(
        "A disabled account is refused whichever way it comes: half-way through a two-factor login, with a "
        "passkey, with the provider (step 13+)"
    )
    @pytest.mark.features(*ADMIN, "openid-connect")
    def test_a_disabled_account_cannot_sign_in_with_the_provider(self, app):
        from harness.oidc import sign_in

        dora = AuthActions(app.test_client())
        assert sign_in(dora, "dora")[0].headers["Location"] == "/profile"  # an account made by the provider
        words = text(dora.client.get("/profile").text).split()
        dora_id = int(words[words.index("id") + 1])
        assert act(admin(app), "disable", dora_id).status_code in (302, 303)
        assert is_anonymous(dora.client)
        again = AuthActions(app.test_client())
        response, _ = sign_in(again, "dora")
        assert response.headers["Location"] == "/login" and is_anonymous(again.client)
        assert DISABLED in text(again.client.get("/login").text)


BAD_PATHS = [
    "/admin/users?page=0",
    "/admin/users?page=-1",
    "/admin/users?page=abc",
    "/admin/users?page=99999",
    f"/admin/users?page={10**30}",
    "/admin/users?page=%00",
    "/admin/users?per_page=100000",
]


@pytest.mark.contract("Hostile ids and page numbers in the admin area get a 4xx or the page, never a 500 (step 13+)")
@pytest.mark.features(*ADMIN)
@pytest.mark.parametrize("path", BAD_PATHS)
def test_hostile_page_numbers_are_no_server_error(app, path):
    alice = admin(app)
    response = alice.client.get(path)
    assert response.status_code in (200, 404), response.status_code
    assert "Traceback" not in response.text


@pytest.mark.contract("Hostile ids and page numbers in the admin area get a 4xx or the page, never a 500 (step 13+)")
@pytest.mark.features(*ADMIN)
@pytest.mark.parametrize("user_id", ["0", "99999", str(2**31), str(10**30), "-1", "abc", "%00"])
@pytest.mark.parametrize("action", ["disable", "enable", "end-sessions"])
def test_hostile_ids_are_no_server_error(app, user_id, action):
    alice = admin(app)
    response = alice.post(f"/admin/users/{user_id}/{action}")
    assert response.status_code == 404, response.status_code
    assert not is_anonymous(alice.client)


@pytest.mark.contract(
    "The admin area's pages keep the site's house rules: its layout and headers, no-store, no inline code, "
    "every form a POST with a CSRF token (step 13+)"
)
@pytest.mark.features(*ADMIN, "security-headers", "csrf")
def test_the_admin_pages_keep_the_house_rules(app):
    alice = admin(app)
    pages = [
        ("/admin/users", alice.client.get("/admin/users"), True),
        ("/reauthenticate", alice.client.get("/reauthenticate"), True),
    ]
    assert house_rule_problems(app, pages) == []
