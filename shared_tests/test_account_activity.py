"""Account activity and your devices (step 14): a security log the user reads, and every live session listed and ended.

The events are read where the user reads them, on /account/activity, in
plain words; the sessions on /account/sessions. Each browser here has its
own address and User-Agent, as alice's laptop and phone would.
"""

import os
import re
from urllib.parse import urlsplit

import pytest

from harness.accounts import USERS
from harness.apps import CliRunner
from harness.apps import add_users
from harness.apps import browser
from harness.apps import close_database
from harness.apps import grant
from harness.apps import house_rule_problems
from harness.apps import is_anonymous
from harness.apps import logged_in_browser
from harness.apps import session_cookie
from harness.apps import stored_strings
from harness.apps import travel
from harness.pages import table_rows
from harness.pages import text
from harness.services import postgres_bindir
from harness.services import throwaway_postgres
from harness.smtp import links as links_in

ACTIVITY = ("account-activity", "login", "logout", "profile")
DEVICES = ("device-sessions", "login", "logout", "profile", "server-sessions")
PASSWORD = USERS["alice"]["password"]
NEW_PASSWORD = "a-brand-new-passphrase"
FIREFOX = "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0"
PHONE = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile "
    "Safari/537.36"
)
EDGE = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 "
    "Safari/537.36 Edg/131.0.0.0"
)


@pytest.fixture(name="test_config")
def mail_to_the_inbox(test_config, inbox):
    """The suite's configuration, sending mail to this test's SMTP server (reset links, notices)."""
    return test_config | inbox.config() | {"MAIL_SUPPRESS_SEND": False}


def device(app, address="198.51.100.1", agent=FIREFOX):
    """A browser of its own (harness.apps.browser), by default alice's laptop: Firefox on Linux."""
    return browser(app, address, agent)


def logged_in(app, username="alice", address="198.51.100.1", agent=FIREFOX, remember=False, password=None):
    """A new browser (see `device`), logged in through the form (harness.apps.logged_in_browser)."""
    return logged_in_browser(app, username, address, agent, password, **({"remember": "y"} if remember else {}))


def reset_by_link(app, inbox, address, password):
    """Ask for a reset link for `address`, follow the emailed link in a new browser and set `password`: the answer."""
    inbox.settle()
    already = len(inbox.messages)
    assert device(app).post("/reset-password", {"email": address}).status_code == 200
    [link] = links_in(inbox.wait_for(already + 1)[already])
    path = urlsplit(link).path
    reset = device(app)
    reset.client.get(path)
    return reset.post(path, {"password": password, "confirm_password": password})


def activity(auth, path="/account/activity"):
    """The events /account/activity shows, newest first, each in its words."""
    page = auth.client.get(path)
    assert page.status_code == 200, page.status_code
    return [text(item) for item in re.findall(r"<li>(.*?)</li>", page.text, re.S)]


def sessions_page(auth):
    """The rows of /account/sessions: [(text, the end button's URL)], oldest first."""
    page = auth.client.get("/account/sessions")
    assert page.status_code == 200, page.status_code
    return [(" ".join(cells), end) for cells, [end] in table_rows(page.text)]


def shown_sessions(auth):
    return [row for row, _ in sessions_page(auth)]


@pytest.mark.contract(
    "Every security event is recorded once, with its time, the user, the client's address and a short user "
    "agent, and shown on /account/activity in plain words, newest first: sign-ins and failures, a lockout, "
    "two-factor codes right and wrong, logouts, resets asked for and done, password, email, two-factor and "
    "passkey changes (step 14)"
)
@pytest.mark.features(*ACTIVITY, "two-factor", "password-reset", "change-password", "change-email", "passkeys")
@pytest.mark.asvs("16.3.1")
def test_every_event_is_recorded_once_with_its_fields(app, inbox):
    from harness.passkeys import SoftAuthenticator
    from harness.passkeys import add_passkey
    from harness.two_factor import second_stage
    from harness.two_factor import turn_on

    stranger = device(app, "203.0.113.9", EDGE)
    assert stranger.login("alice", "not-her-password").status_code == 200
    laptop = logged_in(app)
    two_factor = turn_on(laptop, PASSWORD)
    phone = device(app, "192.0.2.44", PHONE)
    assert phone.login("alice").headers["Location"] == "/login/two-factor"
    assert second_stage(phone, "000000").status_code == 200
    assert second_stage(phone, two_factor.next_code()).headers["Location"] == "/profile"
    assert add_passkey(laptop, SoftAuthenticator(app.config["WEBAUTHN_ORIGIN"]), PASSWORD).status_code == 200
    changed = laptop.post(
        "/change-password",
        {"current_password": PASSWORD, "password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD},
    )
    assert changed.headers["Location"] == "/profile"
    laptop.post("/change-email", {"email": "alice.moved@example.com", "current_password": NEW_PASSWORD})
    assert laptop.post("/logout").status_code in (302, 303)
    assert device(app).post("/reset-password", {"email": "alice@example.com"}).status_code == 200

    # The password change ended the phone's session: alice logs in again there, with the new password and a
    # recovery code (the app's next code is not due yet).
    phone = device(app, "192.0.2.44", PHONE)
    assert phone.login("alice", NEW_PASSWORD).headers["Location"] == "/login/two-factor"
    assert second_stage(phone, two_factor.recovery_codes[0]).headers["Location"] == "/profile"
    events = activity(phone)
    expected = [
        ("Signed in with a recovery code", "192.0.2.44", "Chrome on Android"),
        ("Your password was given, and a code asked for", "192.0.2.44", "Chrome on Android"),
        ("A password reset link was asked for", "198.51.100.1", "Firefox on Linux"),
        ("Signed out", "198.51.100.1", "Firefox on Linux"),
        ("A move to a new email address was asked for", "198.51.100.1", "Firefox on Linux"),
        ("The password was changed", "198.51.100.1", "Firefox on Linux"),
        ("A passkey was added", "198.51.100.1", "Firefox on Linux"),
        ("Signed in", "192.0.2.44", "Chrome on Android"),
        ("A wrong two-factor code was given", "192.0.2.44", "Chrome on Android"),
        ("Your password was given, and a code asked for", "192.0.2.44", "Chrome on Android"),
        ("Two-factor authentication was turned on", "198.51.100.1", "Firefox on Linux"),
        ("Signed in", "198.51.100.1", "Firefox on Linux"),
        ("A sign-in failed: wrong password", "203.0.113.9", "Edge on Windows"),
    ]
    assert events == [f"{what} from {address}, {name}, just now" for what, address, name in expected]
    # bob's account saw none of it.
    assert activity(logged_in(app, "bob"))[1:] == []


class TestTheOtherEvents:
    """The events the test above leaves out: links, second factors, passkeys, addresses, resets, admins."""

    @pytest.fixture(name="test_config")
    def with_the_provider(self, test_config, provider):
        return test_config | provider.config("Example ID")

    @pytest.mark.contract(
        "Every security event is recorded once, with its time, the user, the client's address and a short user "
        "agent, and shown on /account/activity in plain words, newest first: sign-ins and failures, a lockout, "
        "two-factor codes right and wrong, logouts, resets asked for and done, password, email, two-factor and "
        "passkey changes (step 14)"
    )
    @pytest.mark.features(*ACTIVITY, "two-factor", "password-reset", "change-email", "passkeys", "openid-connect")
    @pytest.mark.features("admin-area", "logout-everywhere")
    def test_the_other_events_are_recorded_too(self, app, inbox):
        from harness.oidc import sign_in as provider_sign_in
        from harness.passkeys import SoftAuthenticator
        from harness.passkeys import add_passkey
        from harness.two_factor import recovery_codes_on
        from harness.two_factor import turn_on

        laptop = logged_in(app)
        linked, _ = provider_sign_in(laptop, "alice-elsewhere", path="/link/oidc", data={"current_password": PASSWORD})
        assert linked.headers["Location"] == "/link/oidc"
        [unlink] = re.findall(r'action="(/unlink/oidc/[0-9]+)"', laptop.client.get("/link/oidc").text)
        assert laptop.post(unlink).status_code in (302, 303)
        two_factor = turn_on(laptop, PASSWORD)
        renewed = laptop.post(
            "/two-factor/recovery-codes", {"code": two_factor.next_code(), "current_password": PASSWORD}
        )
        assert renewed.status_code == 200
        # The app's next code is not due yet: one of the new recovery codes turns it off.
        recovery = recovery_codes_on(renewed.text)[0]
        off = laptop.post("/two-factor/disable", {"code": recovery, "current_password": PASSWORD})
        assert off.status_code in (302, 303)
        authenticator = SoftAuthenticator(app.config["WEBAUTHN_ORIGIN"])
        assert add_passkey(laptop, authenticator, PASSWORD).status_code == 200
        [remove] = re.findall(r'href="(/passkeys/[0-9]+/remove)"', laptop.client.get("/passkeys").text)
        assert laptop.post(remove, {"current_password": PASSWORD}).status_code in (302, 303)
        laptop.post("/change-email", {"email": "alice.moved@example.com", "current_password": PASSWORD})
        [link] = [url for message in inbox.wait_to("alice.moved@example.com") for url in links_in(message)]
        assert laptop.client.get("/" + link.split("/", 3)[3]).status_code in (302, 303)
        assert laptop.post("/logout-everywhere").status_code in (302, 303)
        assert reset_by_link(app, inbox, "alice.moved@example.com", NEW_PASSWORD).status_code == 302
        grant(app, "bob")
        bob = logged_in(app, "bob", "192.0.2.8", PHONE)
        for action in ("disable", "enable"):
            assert bob.post(f"/admin/users/{USERS['alice']['id']}/{action}").status_code in (302, 303)
        events = [event.split(" from ")[0] for event in activity(logged_in(app, password=NEW_PASSWORD))]
        assert events == [
            "Signed in",
            "The account was enabled by an admin (bob)",
            "The account was disabled by an admin (bob)",
            "The password was set with a reset link",
            "A password reset link was asked for",
            "Signed out everywhere",
            "The email address was changed",
            "A move to a new email address was asked for",
            "A passkey was removed",
            "A passkey was added",
            "Two-factor authentication was turned off",
            "New recovery codes were made",
            "Two-factor authentication was turned on",
            "An OpenID provider account was unlinked",
            "An OpenID provider account was linked",
            "Signed in",
        ]


@pytest.mark.contract(
    "No column of any table holds a password, a TOTP or recovery code, a reset token, or (but in the session "
    "store's own) a session id (step 14)"
)
@pytest.mark.features(*ACTIVITY, "two-factor", "password-reset", "database")
@pytest.mark.asvs("16.2.5")
def test_no_secret_is_kept_in_any_table(app, inbox, test_config):
    from harness.two_factor import second_stage
    from harness.two_factor import turn_on

    laptop = logged_in(app)
    two_factor = turn_on(laptop, PASSWORD)
    phone = device(app, "192.0.2.44", PHONE)
    phone.login("alice")
    code = two_factor.next_code()
    assert second_stage(phone, code).headers["Location"] == "/profile"
    recovery = two_factor.recovery_codes[0]
    other = device(app, "192.0.2.45")
    other.login("alice")
    assert second_stage(other, recovery).headers["Location"] == "/profile"
    assert device(app).post("/reset-password", {"email": "alice@example.com"}).status_code == 200
    [link] = links_in(inbox.wait_for(1)[0])
    token = link.rsplit("/", 1)[1]
    session_ids = [session_cookie(app, auth.client) for auth in (laptop, phone, other)]
    secrets = [PASSWORD, code, recovery, token]
    found = stored_strings(test_config["SQLALCHEMY_DATABASE_URI"], binary=True)
    assert [secret for secret in secrets if any(secret in value for value in found)] == []
    # Session ids live in the store (and its index of each user's sessions), nowhere else.
    elsewhere = stored_strings(test_config["SQLALCHEMY_DATABASE_URI"], skip=session_like_tables(test_config))
    assert [sid for sid in session_ids if any(sid in value for value in elsewhere)] == []


def session_like_tables(test_config):
    """The tables of the database whose name says they keep sessions: the store's, and its index."""
    import sqlalchemy as sa

    engine = sa.create_engine(test_config["SQLALCHEMY_DATABASE_URI"])
    try:
        with engine.connect() as connection:
            return [name for name in sa.inspect(connection).get_table_names() if "session" in name]
    finally:
        engine.dispose()


@pytest.mark.contract(
    "A lockout is recorded on the account whose name was typed, as are failed sign-ins; a name nobody has "
    "records nothing (step 14)"
)
@pytest.mark.features(*ACTIVITY, "rate-limits")
def test_failures_and_a_lockout_are_recorded_on_the_account(app):
    laptop = logged_in(app, address="198.51.100.77")  # a lockout leaves her sessions alone
    stranger = device(app, "203.0.113.9", EDGE)
    for _ in range(6):
        stranger.login("alice", "not-her-password")
    assert stranger.login("nobody-here", "whatever").status_code in (200, 429)
    events = activity(laptop)
    assert events == [
        "Sign-ins locked for a while after too many failures from 203.0.113.9, Edge on Windows, just now",
        *["A sign-in failed: wrong password from 203.0.113.9, Edge on Windows, just now"] * 5,
        "Signed in from 198.51.100.77, Firefox on Linux, just now",
    ]


@pytest.mark.contract(
    "/account/activity shows the user's last 50 events, newest first, with how long ago each was; it needs a "
    "login (step 14)"
)
@pytest.mark.features(*ACTIVITY)
def test_the_activity_page_shows_the_last_fifty(app, client):
    response = client.get("/account/activity")
    assert response.status_code in (302, 303) and response.headers["Location"].startswith("/login")
    auth = device(app)
    for _ in range(30):
        auth.login("alice")
        auth.post("/logout")
    with travel(2 * 3600 + 60):
        events = activity(logged_in(app))
    assert len(events) == 50
    assert events[0] == "Signed in from 198.51.100.1, Firefox on Linux, just now"
    assert events[1:] == [
        f"{what} from 198.51.100.1, Firefox on Linux, 2 hours ago"
        for what in ["Signed out", "Signed in"] * 24 + ["Signed out"]
    ]


@pytest.mark.contract(
    "An admin sees any user's events at /admin/users/<id>/activity, and what an admin did to an account shows "
    "there, naming the admin; others get 403 (step 14)"
)
@pytest.mark.features(*ACTIVITY, "roles", "admin-area")
def test_an_admin_sees_any_users_activity(app):
    grant(app)
    bob = logged_in(app, "bob", "192.0.2.8", PHONE)
    alice = logged_in(app)
    assert alice.post(f"/admin/users/{USERS['bob']['id']}/end-sessions").status_code in (302, 303)
    assert is_anonymous(bob.client)
    events = activity(alice, f"/admin/users/{USERS['bob']['id']}/activity")
    assert events == [
        "Every session was ended by an admin (alice) from 198.51.100.1, Firefox on Linux, just now",
        "Signed in from 192.0.2.8, Chrome on Android, just now",
    ]
    bob = logged_in(app, "bob")
    assert bob.client.get(f"/admin/users/{USERS['alice']['id']}/activity").status_code == 403


@pytest.mark.contract("flask prune-events --days N deletes the events older than N days, and keeps the rest (step 14)")
@pytest.mark.features(*ACTIVITY)
def test_prune_events(app):
    runner = CliRunner(app)
    logged_in(app)
    with travel(10 * 86400):
        logged_in(app, address="198.51.100.2")
        pruned = runner.invoke(args=["prune-events", "--days", "5"])
        assert (pruned.exit_code, pruned.output.strip()) == (0, "Deleted 1 security events older than 5 days.")
        assert activity(logged_in(app, address="198.51.100.3")) == [
            "Signed in from 198.51.100.3, Firefox on Linux, just now",
            "Signed in from 198.51.100.2, Firefox on Linux, just now",
        ]
    for args in (["prune-events"], ["prune-events", "--days", "-1"], ["prune-events", "--days", "soon"]):
        result = runner.invoke(args=args)
        assert result.exit_code == 2 and "Traceback" not in result.output, args


@pytest.mark.contract(
    "A User-Agent that is huge, garbled or names nothing known is kept cut short and shown as an unknown "
    "browser, never a 500 (step 14)"
)
@pytest.mark.features(*ACTIVITY)
@pytest.mark.parametrize(
    "agent", ["", "x" * 20_000, "Ünïcødé/1.0 (∞)", "() { :; }; /bin/sh", "nul\x00byte", "tab\tand\x7f", "curl/8.5.0"]
)
def test_any_user_agent_is_no_server_error(app, agent):
    auth = logged_in(app, agent=agent)
    [event] = activity(auth)
    name = "curl" if agent.startswith("curl") else "an unknown browser"
    assert event == f"Signed in from 198.51.100.1, {name}, just now"


# Sessions ----------------------------------------------------------------------


@pytest.mark.contract(
    "/account/sessions lists every live session of the user, in either store: its browser, address, when it "
    "logged in and was last seen, this browser marked, each with a button that ends it; it needs a login (step 14)"
)
@pytest.mark.features(*DEVICES, "remember")
@pytest.mark.asvs("7.5.2")
def test_the_sessions_page_lists_every_live_session(app, client):
    assert client.get("/account/sessions").headers["Location"].startswith("/login")
    laptop = logged_in(app)
    phone = logged_in(app, address="192.0.2.44", agent=PHONE, remember=True)
    bob = logged_in(app, "bob")
    with travel(3 * 3600):
        phone.client.get("/profile")  # seen now; the laptop was seen three hours ago
        rows = shown_sessions(laptop)
    assert rows == [
        "Firefox on Linux (this browser) 198.51.100.1 3 hours ago 3 hours ago Log out",
        "Chrome on Android 192.0.2.44 3 hours ago just now End this session",
    ]
    assert len(shown_sessions(bob)) == 1


@pytest.mark.contract(
    "Ending one session from the list ends it at once, whoever holds its cookie; the others go on, and it leaves "
    "the list; it needs a fresh login, and another user's session, or one already ended, is a 404 (step 14)"
)
@pytest.mark.features(*DEVICES, "admin-area")
def test_ending_one_session_leaves_the_others(app):
    laptop = logged_in(app)
    phone = logged_in(app, address="192.0.2.44", agent=PHONE)
    tablet = logged_in(app, address="192.0.2.45", agent=EDGE)
    bob = logged_in(app, "bob")
    [_, (_, end_phone), _] = sessions_page(laptop)
    assert laptop.post(end_phone).headers["Location"] == "/account/sessions"
    assert is_anonymous(phone.client)
    assert not is_anonymous(laptop.client) and not is_anonymous(tablet.client)
    assert [row.split()[0] for row in shown_sessions(laptop)] == ["Firefox", "Edge"]
    assert laptop.post(end_phone).status_code == 404  # ended already
    [(_, bobs)] = sessions_page(bob)
    assert laptop.post(bobs).status_code == 404 and not is_anonymous(bob.client)
    for hostile in ("0" * 32, "z" * 32, "%00" * 10, "a" * 10_000):
        assert laptop.post(f"/account/sessions/{hostile}/end").status_code == 404
    # A stale login gives its password again first.
    with travel(16 * 60):
        [_, (_, end_tablet)] = sessions_page(laptop)
        asked = laptop.post(end_tablet, headers={"Referer": "http://localhost/account/sessions"})
        assert asked.headers["Location"].startswith("/reauthenticate")
    assert not is_anonymous(tablet.client)
    # Its own row logs this browser out.
    [_, (_, own)] = sessions_page(tablet)
    assert tablet.post(own).headers["Location"] == "/login" and is_anonymous(tablet.client)


@pytest.mark.contract(
    "The list stays exactly the live sessions however one ends: logout, a new id at re-authentication, log out "
    "everywhere, a new password, a reset, an admin, and expiry (step 14)"
)
@pytest.mark.features(*DEVICES, "logout-everywhere", "change-password", "password-reset", "admin-area")
def test_the_list_stays_true_however_sessions_end(app, inbox):
    def browsers(auth):
        return [row.split()[0] for row in shown_sessions(auth)]

    laptop, phone = logged_in(app), logged_in(app, address="192.0.2.44", agent=PHONE)
    assert browsers(laptop) == ["Firefox", "Chrome"]
    phone.post("/logout")
    assert browsers(laptop) == ["Firefox"]
    # Giving the password again moves the session to a new id: one row still, under the new id.
    phone = logged_in(app, address="192.0.2.44", agent=PHONE)
    with travel(16 * 60):
        [(_, end_laptop), _] = sessions_page(phone)
        asked = phone.post(end_laptop, headers={"Referer": "http://localhost/account/sessions"})
        assert asked.headers["Location"].startswith("/reauthenticate")
        again = phone.post(asked.headers["Location"], {"current_password": PASSWORD})
        assert again.headers["Location"] == "/account/sessions"
        assert browsers(laptop) == ["Firefox", "Chrome"]
    # Log out everywhere: nothing is left, and the next login is alone in the list.
    phone.post("/logout-everywhere")
    assert is_anonymous(laptop.client)
    laptop = logged_in(app)
    assert browsers(laptop) == ["Firefox"]
    # A new password keeps this session and ends the other.
    phone = logged_in(app, address="192.0.2.44", agent=PHONE)
    changed = laptop.post(
        "/change-password", {"current_password": PASSWORD, "password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD}
    )
    assert changed.headers["Location"] == "/profile" and is_anonymous(phone.client)
    assert browsers(laptop) == ["Firefox"]
    # A reset ends every session.
    phone = logged_in(app, address="192.0.2.44", agent=PHONE, password=NEW_PASSWORD)
    assert reset_by_link(app, inbox, "alice@example.com", PASSWORD).headers["Location"] == "/login"
    assert is_anonymous(laptop.client) and is_anonymous(phone.client)
    laptop = logged_in(app)
    assert browsers(laptop) == ["Firefox"]
    # An admin ends them all.
    grant(app, "bob")
    phone = logged_in(app, address="192.0.2.44", agent=PHONE)
    logged_in(app, "bob").post(f"/admin/users/{USERS['alice']['id']}/end-sessions")
    assert is_anonymous(laptop.client) and is_anonymous(phone.client)
    laptop = logged_in(app)
    assert browsers(laptop) == ["Firefox"]


@pytest.mark.contract(
    "The list stays exactly the live sessions however one ends: logout, a new id at re-authentication, log out "
    "everywhere, a new password, a reset, an admin, and expiry (step 14)"
)
@pytest.mark.features(*DEVICES, "idle-expiry")
@pytest.mark.parametrize("lifetime", ["PERMANENT_SESSION_LIFETIME", "SESSION_ABSOLUTE_LIFETIME"])
def test_expired_sessions_leave_the_list_by_themselves(app, create_app, test_config, monkeypatch, lifetime, pass_time):
    """Unused for its lifetime, or past its absolute lifetime and not back since: gone from the list, untouched."""
    monkeypatch.setenv(f"FLASK_{lifetime}", "4")
    short = create_app(test_config)
    try:
        logged_in(short, address="192.0.2.44", agent=PHONE)
        pass_time(2.1)
        laptop = logged_in(short)
        assert len(shown_sessions(laptop)) == 2
        pass_time(2.1)  # the phone's 4 seconds are up; the laptop's are not, as it is used
        assert [row.split()[0] for row in shown_sessions(laptop)] == ["Firefox"]
    finally:
        close_database(short)


# The matrix runs the last step's sessions in Redis with PostgreSQL beside them, and in the database on
# SQLite: not in a PostgreSQL database. This test does, once, in the plain run (where nothing else is set).
ON_POSTGRESQL = bool(postgres_bindir()) and not (
    os.environ.get("FLASK_REDIS_URL") or os.environ.get("FLASK_SQLALCHEMY_DATABASE_URI")
)

if ON_POSTGRESQL:

    @pytest.mark.contract(
        "With the sessions in a PostgreSQL database, the index takes any header, and lists and ends sessions as "
        "on SQLite (step 14)"
    )
    @pytest.mark.features(*DEVICES, *ACTIVITY)
    def test_the_database_index_on_postgresql(step, create_app, test_config):
        with throwaway_postgres() as url:
            app = create_app(test_config | {"SQLALCHEMY_DATABASE_URI": url})
            try:
                add_users(app, step)
                laptop = logged_in(app, agent="nul\x00byte\x07")
                phone = logged_in(app, address="192.0.2.44", agent=PHONE)
                assert [row.split()[0] for row in shown_sessions(phone)] == ["an", "Chrome"]  # "an unknown browser"
                [(_, end_laptop), _] = sessions_page(phone)
                assert phone.post(end_laptop).headers["Location"] == "/account/sessions"
                assert is_anonymous(laptop.client) and not is_anonymous(phone.client)
                assert activity(phone)[0].startswith("One session was ended from the sessions page from 192.0.2.44")
                assert activity(phone)[-1] == "Signed in from 198.51.100.1, an unknown browser, just now"
            finally:
                close_database(app)


@pytest.mark.contract("The activity and sessions pages keep the house rules (step 14)")
@pytest.mark.features(*DEVICES, *ACTIVITY, "security-headers", "csrf")
def test_the_activity_and_sessions_pages_keep_the_house_rules(app):
    auth = logged_in(app)
    pages = [(path, auth.client.get(path), True) for path in ("/account/activity", "/account/sessions")]
    assert house_rule_problems(app, pages) == []
