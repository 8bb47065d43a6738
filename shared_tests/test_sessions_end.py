"""Sessions that end (step 05+): the session lives on the server, so the server can end it."""

import base64
import binascii
import contextlib
import json
import os
import secrets
import zlib
from datetime import UTC
from datetime import datetime

import pytest
from flask.sessions import SecureCookieSessionInterface

from harness.apps import AuthActions
from harness.apps import CliRunner
from harness.apps import close_database
from harness.apps import require
from harness.apps import session_cookie_from
from harness.apps import session_data
from harness.apps import session_tables
from harness.apps import stored_strings
from harness.pages import csrf_token
from harness.pages import forms
from harness.pages import text

LOGGED_OUT_EVERYWHERE = "You have been logged out everywhere."


def is_anonymous(browser):
    response = browser.get("/profile")
    assert response.status_code < 500
    return response.status_code in (302, 303) and response.headers["Location"].startswith("/login")


def logged_in(app, username="alice", remember=False):
    """A new browser, logged in through the form."""
    browser = app.test_client()
    fields = {"remember": "y"} if remember else {}
    assert AuthActions(browser).login(username, **fields).status_code in (302, 303)
    assert not is_anonymous(browser)
    return browser


def cookies(app, browser):
    """The session and remember cookies a browser holds: {name: value}."""
    names = (app.config["SESSION_COOKIE_NAME"], app.config.get("REMEMBER_COOKIE_NAME", "remember_token"))
    return {name: browser.get_cookie(name).value for name in names if browser.get_cookie(name) is not None}


def copy_of(app, browser):
    """Another browser holding copies of `browser`'s cookies: a thief's, say."""
    thief = app.test_client()
    for name, value in cookies(app, browser).items():
        thief.set_cookie(name, value)
    return thief


def session_id(app, browser):
    return browser.get_cookie(app.config["SESSION_COOKIE_NAME"]).value


def decodings(value):
    """Whatever `value`, or any dot-separated part of it, turns into as base64 (zlib-compressed or not)."""
    found = []
    for part in [value, *value.strip(".").split(".")]:
        for alphabet in (base64.urlsafe_b64decode, base64.b64decode):
            try:
                data = alphabet(part + "=" * (-len(part) % 4))
            except (binascii.Error, ValueError):
                continue
            found.append(data)
            with contextlib.suppress(zlib.error):
                found.append(zlib.decompress(data))
    return found


@pytest.mark.contract(
    "The session cookie holds only a random, unguessable session id: no user data, nothing base64-decodable into a user id"
)
@pytest.mark.features("login", "server-sessions")
@pytest.mark.asvs("7.2.3", "14.3.3")
def test_the_session_cookie_is_an_opaque_id(app):
    values = [session_id(app, logged_in(app, name)) for name in ("alice", "alice", "bob")]
    assert len(set(values)) == 3, "two logins got the same session id"
    for value in values:
        # 128 bits or more: 22 characters of base64's 64.
        assert len(value) >= 22, value
        for data in decodings(value):
            for clue in (b"user", b"alice", b"bob", b"_id", b"_fresh"):
                assert clue not in data.lower(), f"{value!r} decodes to {data!r}"
            with pytest.raises(ValueError):
                json.loads(data)


SIGN_UP = {
    "username": "carol",
    "email": "carol@example.com",
    "password": "a-long-passphrase",
    "confirm_password": "a-long-passphrase",
}


@pytest.mark.contract("Logging in issues a new session id; the id from before the login is dead")
@pytest.mark.features("login", "server-sessions")
@pytest.mark.parametrize(
    "how",
    # From step 09 a sign-up logs no one in: there it has no session id to renew.
    ["login", "remembered-login", pytest.param("sign-up", marks=pytest.mark.replaced_by("email-confirmation"))],
)
@pytest.mark.asvs("7.2.2", "7.2.4")
def test_login_issues_a_new_session_id(step, app, how):
    browser = app.test_client()
    auth = AuthActions(browser)
    auth.token()  # the login form: an anonymous session, with an id
    before = session_id(app, browser)
    if how == "sign-up":
        require(step, "registration")
        assert auth.post("/register", SIGN_UP).headers["Location"] == "/profile"
    else:
        auth.login("alice", **({"remember": "y"} if how == "remembered-login" else {}))
    assert session_id(app, browser) != before
    assert not is_anonymous(browser)
    # Whoever knew the old id (or planted it) holds nothing: not a login...
    planted = app.test_client()
    planted.set_cookie(app.config["SESSION_COOKIE_NAME"], before)
    assert is_anonymous(planted)
    # ...nor a session at all: the server knows the id no more, and hands out a new one.
    renewed = session_cookie_from(app, planted.get("/login"))
    assert renewed is not None and renewed != before


@pytest.mark.contract(
    "POST /logout ends this browser's session on the server: any copy of its cookies (session and remember), sent again, is anonymous"
)
@pytest.mark.features("login", "logout", "server-sessions")
@pytest.mark.parametrize("remember", [False, True], ids=["session", "remembered"])
@pytest.mark.asvs("7.4.1")
def test_a_copy_of_the_cookies_is_anonymous_after_logout(app, remember):
    browser = logged_in(app, remember=remember)
    thief = copy_of(app, browser)
    assert not is_anonymous(thief)  # the copy works, while the session lasts
    assert AuthActions(browser).logout().status_code in (302, 303)
    assert is_anonymous(browser)
    assert is_anonymous(thief)


@pytest.mark.contract(
    "A session cookie copied before logout still logs in after it until step 05, whose logout ends the session on the server"
)
@pytest.mark.features("login", "logout", "profile")
@pytest.mark.parametrize("remember", [False, True], ids=["session", "remembered"])
def test_before_step_05_a_copied_cookie_outlives_logout(step, app, remember):
    """The weakness steps 01-04 have, and their pages own up to; step 05 ends it."""
    if remember:
        require(step, "remember")
    browser = logged_in(app, remember=remember)
    thief = copy_of(app, browser)
    AuthActions(browser).logout()
    assert is_anonymous(browser)
    if "server-sessions" in step.features:
        assert is_anonymous(thief)
    else:
        # Signed cookies cannot be taken back: the copy still logs in.
        assert not is_anonymous(thief)


@pytest.mark.contract("POST /logout leaves the user's other browsers logged in")
@pytest.mark.features("login", "logout", "server-sessions")
@pytest.mark.asvs("7.1.2")
def test_logout_leaves_other_browsers_logged_in(app):
    here, elsewhere, remembered = logged_in(app), logged_in(app), logged_in(app, remember=True)
    AuthActions(here).logout()
    assert is_anonymous(here)
    assert not is_anonymous(elsewhere)
    assert not is_anonymous(remembered)


@pytest.mark.contract(
    "A new secret key leaves every stored session logged in (remembered ones too), "
    "and refuses the CSRF tokens of forms made under the old key"
)
@pytest.mark.features("login", "logout", "profile", "csrf", "server-sessions")
@pytest.mark.parametrize("remember", [False, True], ids=["session", "remembered"])
def test_a_new_secret_key_keeps_sessions_and_voids_csrf_tokens(app, create_app, test_config, remember):
    """The key no longer signs the session (only its id travels): it signs CSRF tokens, and reset links."""
    browser = logged_in(app, remember=remember)
    old_form = csrf_token(browser.get("/profile").text)  # a page open under the old key
    # The same site restarted with another key: the same database, the same store.
    new_key = create_app(test_config | {"SECRET_KEY": "a-new-key-for-every-server"})
    try:
        moved = copy_of(new_key, browser)
        assert not is_anonymous(moved), "a session made under the old key was logged out by the new one"
        # The form from before the change is refused; the same session's new form is not.
        assert moved.post("/logout", data={"csrf_token": old_form}).status_code == 400
        assert not is_anonymous(moved)
        assert AuthActions(moved).logout().status_code in (302, 303)
        assert is_anonymous(moved)
    finally:
        close_database(new_key)


@pytest.mark.contract(
    "POST /logout-everywhere ends every session of the user on every browser, remembered ones included, "
    "and redirects to /login flashing 'You have been logged out everywhere.'"
)
@pytest.mark.features("login", "logout-everywhere", "remember", "flash")
@pytest.mark.asvs("7.5.2")
def test_logout_everywhere_ends_every_session_of_the_user(app):
    here, elsewhere, remembered = logged_in(app), logged_in(app), logged_in(app, remember=True)
    thief = copy_of(app, remembered)
    bob = logged_in(app, "bob")
    response = AuthActions(here).post("/logout-everywhere")
    assert response.status_code in (302, 303)
    assert response.headers["Location"] == "/login"
    page = here.get("/login")
    assert page.status_code == 200
    assert text(page.text).count(LOGGED_OUT_EVERYWHERE) == 1
    for browser in (here, elsewhere, remembered, thief):
        assert is_anonymous(browser)
    assert not is_anonymous(bob)  # only that user's sessions
    # Logging in again works, anywhere.
    assert not is_anonymous(logged_in(app))
    assert AuthActions(elsewhere).login("alice").headers["Location"] == "/profile"


@pytest.mark.contract("POST /logout-everywhere needs a login: anonymous, it redirects to /login and ends nothing")
@pytest.mark.features("login", "logout-everywhere")
def test_logout_everywhere_when_anonymous(app):
    alice = logged_in(app)
    stranger = AuthActions(app.test_client())
    response = stranger.post("/logout-everywhere")
    assert response.status_code in (302, 303)
    assert response.headers["Location"].startswith("/login")
    assert not is_anonymous(alice)


@pytest.mark.contract("The profile page has a button for POST /logout-everywhere, with a csrf_token")
@pytest.mark.features("login", "profile", "logout-everywhere", "csrf")
def test_profile_has_a_log_out_everywhere_button(app):
    page = logged_in(app).get("/profile")
    found = [form for form in forms(page.text) if form["action"].endswith("/logout-everywhere")]
    assert found, "no form posting to /logout-everywhere on the profile page"
    assert found[0]["method"] == "post"
    assert found[0]["inputs"].get("csrf_token", {}).get("value")
    assert "everywhere" in text(page.text).lower()


@pytest.mark.contract(
    "A session unused for PERMANENT_SESSION_LIFETIME seconds is over, remembered or not, on the server; "
    "every request restarts that clock"
)
@pytest.mark.features("login", "idle-expiry", "remember")
@pytest.mark.asvs("7.3.1", "7.4.1")
def test_an_idle_session_ends_on_the_server(app, create_app, test_config, monkeypatch, pass_time):
    # Seconds: the contract's example. At 2 s, a request slowed by a busy machine
    # (the checker's self-test, beside another session) let a used session lapse.
    lifetime = 3
    monkeypatch.setenv("FLASK_PERMANENT_SESSION_LIFETIME", str(lifetime))
    short = create_app(test_config)  # the same database as `app`, with alice and bob
    try:
        browsers = {"session": logged_in(short), "remembered": logged_in(short, remember=True)}
        copies = {kind: copy_of(short, browser) for kind, browser in browsers.items()}
        # Used more often than the lifetime, for longer than it: still logged in.
        for _ in range(2):
            pass_time(lifetime * 0.5)
            for kind, browser in browsers.items():
                assert not is_anonymous(browser), f"{kind}: logged out while in use"
        # Then left alone for longer than the lifetime: over. The test client
        # sends cookies past their date, as a copy replayed by hand would be:
        # what ends the session is the server.
        pass_time(lifetime + 0.3)
        for kind in browsers:
            assert is_anonymous(copies[kind]), f"{kind}: a copy still works after {lifetime} s unused"
            assert is_anonymous(browsers[kind]), f"{kind}: still logged in after {lifetime} s unused"
    finally:
        close_database(short)


@pytest.mark.contract(
    "However often it is used, a session ends on the server FLASK_SESSION_ABSOLUTE_LIFETIME seconds "
    "after its login (30 days by default), remembered or not"
)
@pytest.mark.features("login", "server-sessions", "remember")
@pytest.mark.parametrize("remember", [False, True], ids=["session", "remembered"])
@pytest.mark.asvs("7.3.2", "7.4.1")
def test_a_session_ends_its_absolute_lifetime_after_login(
    app, create_app, test_config, monkeypatch, remember, pass_time
):
    lifetime = 4  # seconds, in place of 30 days; the idle lifetime stays 14 days
    monkeypatch.setenv("FLASK_SESSION_ABSOLUTE_LIFETIME", str(lifetime))
    short = create_app(test_config)  # the same database as `app`, with alice and bob
    try:
        browser = logged_in(short, remember=remember)
        thief = copy_of(short, browser)
        # Used every half second, so never idle: logged in while the lifetime lasts
        # (2 s of it: when the test really waits, a request on a busy machine may take a while)...
        for _ in range(4):
            pass_time(0.5)
            assert not is_anonymous(browser), f"logged out before {lifetime} s"
        # ...and over once it has passed, for the browser and any copy of its cookies alike.
        pass_time(lifetime - 2 + 0.3)
        assert is_anonymous(thief), f"a copy still works {lifetime} s after the login"
        assert is_anonymous(browser), f"still logged in {lifetime} s after the login"
        # A new login starts a new lifetime.
        assert not is_anonymous(logged_in(short, remember=remember))
    finally:
        close_database(short)


def forged_signed_session(app):
    """A cookie step 04 would take for alice's session: signed with this app's own key."""
    return SecureCookieSessionInterface().get_signing_serializer(app).dumps({"_user_id": "1", "_fresh": True})


def stale_remember_token(app):
    """Flask-Login's remember cookie for user 1, as step 04 sets it, signed with this app's own key."""
    from flask_login.utils import encode_cookie  # here: only steps with Flask-Login have it

    with app.test_request_context():
        return encode_cookie("1")


def deleted_session_id(app):
    """The id of a session that existed, logged in, until its user logged out."""
    browser = logged_in(app)
    value = session_id(app, browser)
    AuthActions(browser).logout()
    return value


NOBODY_ISSUED = [
    ("garbage", "session", lambda app: "not a session id at all"),
    ("empty", "session", lambda app: ""),
    (
        "non-ascii",
        "session",
        lambda app: "\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9",
    ),
    ("huge", "session", lambda app: "A" * 4000),
    ("nul-byte", "session", lambda app: "abc\x00def" * 4),
    ("sql-ish", "session", lambda app: "' OR '1'='1"),
    ("unknown-id", "session", lambda app: secrets.token_urlsafe(32)),
    ("deleted-id", "session", deleted_session_id),
    ("signed-session-of-step-04", "session", forged_signed_session),
    ("stale-remember-token", "remember", stale_remember_token),
    ("garbage-remember-token", "remember", lambda app: "1|" + "0" * 128),
]


@pytest.mark.contract(
    "A cookie nobody signed or issued (garbage, non-ASCII, huge, an unknown or deleted session id, "
    "a stale remember token) means anonymous, never a 500"
)
@pytest.mark.features("login", "server-sessions")
@pytest.mark.parametrize(("which", "make"), [c[1:] for c in NOBODY_ISSUED], ids=[c[0] for c in NOBODY_ISSUED])
@pytest.mark.asvs("7.2.1")
def test_a_cookie_nobody_issued_is_anonymous(app, which, make):
    name = app.config["SESSION_COOKIE_NAME"]
    if which == "remember":
        name = app.config.get("REMEMBER_COOKIE_NAME", "remember_token")
    browser = app.test_client()
    browser.set_cookie(name, make(app))
    assert is_anonymous(browser)
    for path in ("/", "/login", "/register"):
        response = browser.get(path)
        assert response.status_code == 200, f"{path}: {response.status_code}"
    # Logging in from there works, and gets an id of the server's making.
    assert AuthActions(browser).login("alice").headers["Location"] == "/profile"
    assert not is_anonymous(browser)


@pytest.mark.contract(
    "Sessions live on the server: in the step's database by default, in the Redis of FLASK_REDIS_URL when it is set"
)
@pytest.mark.features("login", "server-sessions", "database")
def test_sessions_live_in_the_configured_store(app, database_url):
    sid = session_id(app, logged_in(app))
    in_database = any(sid in value for value in stored_strings(database_url))
    url = os.environ.get("FLASK_REDIS_URL")
    if url:
        import redis

        client = redis.Redis.from_url(url)
        try:
            in_redis = any(sid.encode() in key for key in client.scan_iter(match=f"*{sid}*"))
        finally:
            client.close()
        assert in_redis, f"no key in Redis at {url} holds the session id"
        assert not in_database, "with FLASK_REDIS_URL set, the session is still stored in the database"
    else:
        assert in_database, "the session id is nowhere in the step's database"


# How long a session without a login may stay in the store: the CSRF token's
# own lifetime (Flask-WTF's WTF_CSRF_TIME_LIMIT), an hour.
ONE_HOUR = 3600


def stored_expiries(app):
    """Seconds until each session in the app's store expires, read from outside the app: {key: seconds}.

    In Redis (the app's REDIS_URL, from FLASK_REDIS_URL): the TTL of each key
    under the app's prefix. Else the expiry column of the app's sessions
    table, which Flask-Session writes in UTC.
    """
    url = app.config.get("REDIS_URL")
    if url:
        import redis  # here, not on top: only steps with server sessions install it

        client = redis.Redis.from_url(url)
        try:
            keys = client.scan_iter(match=f"{app.config['SESSION_KEY_PREFIX']}*")
            return {key.decode(): client.ttl(key) for key in keys}
        finally:
            client.close()
    import sqlalchemy as sa

    (table,) = session_tables(app)
    query = sa.text(f"SELECT session_id, expiry FROM {table}").columns(session_id=sa.String, expiry=sa.DateTime)
    engine = sa.create_engine(app.config["SQLALCHEMY_DATABASE_URI"])
    now = datetime.now(UTC).replace(tzinfo=None)
    try:
        with engine.connect() as connection:
            return {key: (expiry - now).total_seconds() for key, expiry in connection.execute(query)}
    finally:
        engine.dispose()


def stored_expiry(app, browser):
    """Seconds until the session of this browser expires in the store."""
    sid = session_id(app, browser)
    (seconds,) = [seconds for key, seconds in stored_expiries(app).items() if key.endswith(sid)]
    return seconds


@pytest.mark.contract(
    "A session without a login (an anonymous visitor's, for a CSRF token) is stored for an hour at most, "
    "in the database or in Redis"
)
@pytest.mark.features("login", "server-sessions", "csrf")
def test_anonymous_sessions_are_stored_for_an_hour_at_most(app):
    for _ in range(50):  # fifty visitors without a cookie: crawlers, say
        assert app.test_client().get("/login").status_code == 200
    expiries = stored_expiries(app)
    # One session each, for its form's CSRF token...
    assert len(expiries) == 50
    # ...and none kept past that token's hour.
    longest = max(expiries.values())
    assert longest <= ONE_HOUR, f"an anonymous session is stored for {longest / 86400:.1f} days"


@pytest.mark.contract(
    "Logging in stores the session (under its new id) for PERMANENT_SESSION_LIFETIME, remembered or not; "
    "the anonymous session after logout, for an hour at most"
)
@pytest.mark.features("login", "logout", "server-sessions", "remember", "csrf")
@pytest.mark.parametrize("remember", [False, True], ids=["session", "remembered"])
def test_a_login_is_stored_for_the_full_lifetime(app, remember):
    browser = app.test_client()
    auth = AuthActions(browser)
    auth.token()  # the login form: an anonymous session
    assert stored_expiry(app, browser) <= ONE_HOUR
    auth.login("alice", **({"remember": "y"} if remember else {}))
    lifetime = app.permanent_session_lifetime.total_seconds()
    assert lifetime - 60 < stored_expiry(app, browser) <= lifetime
    auth.logout()  # a new session, holding only the flashed "You have been logged out."
    assert stored_expiry(app, browser) <= ONE_HOUR


@pytest.mark.contract(
    "A copy of an anonymous session's cookie, sent after the CSRF token's lifetime (WTF_CSRF_TIME_LIMIT, an hour) "
    "unused, is a new, empty session"
)
@pytest.mark.features("login", "logout", "flash", "server-sessions", "csrf")
def test_an_anonymous_session_ends_after_the_token_lifetime(app, create_app, test_config, pass_time):
    lifetime = 2  # seconds, in place of the hour
    short = create_app(test_config | {"WTF_CSRF_TIME_LIMIT": lifetime})  # the same database as `app`
    try:
        browser = logged_in(short)
        AuthActions(browser).logout()  # the session now holds only "You have been logged out."
        old = session_id(short, browser)
        assert session_data(short, old), "the session after logout holds nothing"
        copy = copy_of(short, browser)
        pass_time(lifetime + 0.5)
        page = copy.get("/login")
        assert "You have been logged out." not in text(page.text)
        renewed = session_cookie_from(short, page)
        assert renewed is not None and renewed != old
        assert session_data(short, old) == {}
    finally:
        close_database(short)


@pytest.mark.contract(
    "flask session_cleanup, run on a schedule, deletes the database store's expired sessions and keeps the live ones"
)
@pytest.mark.features("login", "server-sessions", "database", "remember", "csrf")
def test_the_cleanup_deletes_expired_sessions_only(app, create_app, test_config, pass_time):
    lifetime = 2  # seconds an anonymous session lasts, in place of the hour
    # The database store even when the suite keeps sessions in Redis, which deletes them by itself.
    short = create_app(test_config | {"REDIS_URL": None, "WTF_CSRF_TIME_LIMIT": lifetime})
    try:
        for _ in range(5):
            short.test_client().get("/login")
        alice, bob = logged_in(short), logged_in(short, "bob", remember=True)
        pass_time(lifetime + 0.5)
        before = stored_expiries(short)
        expired = {key for key, seconds in before.items() if seconds <= 0}
        # Still there: a database deletes nothing by itself.
        assert len(expired) == 5 and len(before) == 7, before
        result = CliRunner(short).invoke(args=["session_cleanup"])
        assert result.exit_code == 0, result.output
        assert set(stored_expiries(short)) == set(before) - expired
        assert not is_anonymous(alice) and not is_anonymous(bob)
    finally:
        close_database(short)
