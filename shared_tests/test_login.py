"""Logging in: right and wrong credentials, and what the session then holds."""

import re

import pytest
from flask.sessions import SecureCookieSessionInterface

from harness.accounts import USERS
from harness.apps import plant_session
from harness.apps import session_data
from harness.pages import decode_session
from harness.pages import inputs
from harness.pages import text

INVALID = "Invalid username or password."


@pytest.mark.contract("POST /login with the right credentials redirects to /profile")
@pytest.mark.features("login", "profile")
@pytest.mark.parametrize("username", USERS)
def test_login_success_redirects_to_profile(client, auth, username):
    response = auth.login(username)
    assert response.status_code in (302, 303)
    assert response.headers["Location"] == "/profile"
    assert client.get("/profile").status_code == 200


@pytest.mark.contract("POST /login with anything else: 200, the form again with 'Invalid username or password.'")
@pytest.mark.features("login", "profile")
@pytest.mark.parametrize(
    ("username", "password"),
    [
        ("alice", "wrong password"),  # known user, wrong password
        ("nobody", "wonderland"),  # unknown user
        ("alice", "can-we-fix-it"),  # someone else's password
        ("alice", ""),  # empty password
        ("", "wonderland"),  # empty username
        ("", ""),  # both empty
        ("alice ", "wonderland"),  # no silent trimming of the username
        ("alice", "wonderland "),  # nor of the password
        ("alice", "WONDERLAND"),  # passwords are case-sensitive
    ],
)
@pytest.mark.asvs("6.2.8")
def test_login_failure_shows_the_same_message(client, auth, username, password):
    response = auth.login(username, password)
    assert response.status_code == 200
    assert INVALID in text(response.text)
    # ...and nobody is logged in.
    assert client.get("/profile").status_code in (302, 303)


@pytest.mark.contract("POST /login, anything else: the same words for an unknown user and a wrong password")
@pytest.mark.features("login")
@pytest.mark.parametrize("unknown", ["nobody", "alice2", "x"])
def test_unknown_user_and_wrong_password_get_the_same_page(auth, unknown):
    """Not only the message: nothing else on the page may tell the two apart."""
    wrong_password = auth.login("alice", "wrong password")
    unknown_user = auth.login(unknown, "wrong password")
    assert wrong_password.status_code == unknown_user.status_code == 200
    assert text(unknown_user.text) == text(wrong_password.text)


@pytest.mark.contract("A failed login shows the form again with the username filled in")
@pytest.mark.features("login")
def test_login_failure_keeps_the_username(client, auth):
    response = auth.login("alice", "wrong password")
    field = inputs(response.text)["username"]
    assert field.get("value") == "alice"


def session_cookie(client, app):
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    assert cookie is not None, "no session cookie"
    return cookie


@pytest.mark.contract("The session holds the user id, never the password or its hash")
@pytest.mark.features("login")
@pytest.mark.parametrize("username", USERS)
@pytest.mark.asvs("14.3.3")
def test_session_holds_the_user_id_and_nothing_secret(step, client, auth, app, username):
    auth.login(username)
    cookie = session_cookie(client, app).value
    user_id = USERS[username]["id"]
    if "server-sessions" in step.features:
        # The cookie is only an id (test_sessions_end.py); the data is on the server.
        session = session_data(app, cookie)
        ids = [value for key, value in session.items() if key.lstrip("_") == "user_id"]
        # The id may carry more after it, as Flask-Login's alternative ids do ("1:0").
        assert len(ids) == 1
        assert re.match(rf"{user_id}(?!\d)", str(ids[0])), ids
    else:
        # Signed, not encrypted: anybody holding the cookie can read this.
        session = decode_session(cookie)
        ids = [value for key, value in session.items() if key.lstrip("_") == "user_id"]
        assert ids in ([user_id], [str(user_id)])
    assert USERS[username]["password"] not in cookie
    assert USERS[username]["password"] not in str(session)
    assert "$2b$" not in str(session)  # nor a password hash


@pytest.mark.contract("Logging in starts a fresh session")
@pytest.mark.features("login")
@pytest.mark.asvs("7.2.2", "7.2.4")
def test_login_starts_a_fresh_session(client, auth, app):
    """Session fixation: nothing planted in the session before login survives it."""
    client.set_cookie(app.config["SESSION_COOKIE_NAME"], plant_session(app, {"planted": "by an attacker"}))
    assert "planted" in session_data(app, session_cookie(client, app).value)
    auth.login("alice")
    assert "planted" not in session_data(app, session_cookie(client, app).value)


@pytest.mark.contract("A forged or tampered session cookie logs nobody in")
@pytest.mark.features("login", "profile")
@pytest.mark.parametrize(
    "forge",
    [
        pytest.param(lambda value, app: value[:-2] + ("AA" if value[-2:] != "AA" else "BB"), id="bad-signature"),
        pytest.param(lambda value, app: edited_payload(value), id="edited-payload"),
        pytest.param(lambda value, app: "not a cookie at all", id="garbage"),
        pytest.param(lambda value, app: "", id="empty"),
        pytest.param(lambda value, app: "x" * 4000, id="huge"),
        pytest.param(lambda value, app: "\u00e9\u00e9.\u00e9", id="non-ascii"),
        pytest.param(lambda value, app: forged_with_other_key(app), id="signed-with-another-key"),
    ],
)
@pytest.mark.asvs("7.2.1", "9.1.1")
def test_tampered_session_cookie_is_anonymous(client, auth, app, forge):
    auth.login("alice")
    name = app.config["SESSION_COOKIE_NAME"]
    forged = forge(session_cookie(client, app).value, app)
    fresh = app.test_client()
    fresh.set_cookie(name, forged)
    response = fresh.get("/profile")
    assert response.status_code in (302, 303)
    assert "/login" in response.headers["Location"]


def edited_payload(value):
    """The same cookie with one character of its (signed) payload changed; of a bare session id, one of the id."""
    if "." not in value.lstrip("."):
        middle = len(value) // 2
        return value[:middle] + ("B" if value[middle] == "A" else "A") + value[middle + 1 :]
    compressed = "." if value.startswith(".") else ""
    payload, signature = value.removeprefix(".").split(".", 1)
    payload = ("B" if payload[0] == "A" else "A") + payload[1:]
    return compressed + payload + "." + signature


def forged_with_other_key(app):
    """A cookie that says "I am user 1" (in every spelling), signed with a guessed key."""
    secret = app.secret_key
    try:
        app.secret_key = "a guessed key"
        # Flask's own cookie sessions, whatever the app uses: what steps 01-04 would read.
        serializer = SecureCookieSessionInterface().get_signing_serializer(app)
        return serializer.dumps({"user_id": 1, "_user_id": "1", "_fresh": True})
    finally:
        app.secret_key = secret


@pytest.mark.contract("The session cookie is HttpOnly and SameSite=Lax")
@pytest.mark.features("login")
@pytest.mark.asvs("3.3.2", "3.3.4")
def test_session_and_cookie_flags(client, auth, app):
    """The session cookie is out of JavaScript's reach and not sent by other sites' forms."""
    response = auth.login("alice")
    name = app.config["SESSION_COOKIE_NAME"]
    headers = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(f"{name}=")]
    assert headers, "login did not set the session cookie"
    attributes = [part.strip().lower() for part in headers[-1].split(";")]
    assert "httponly" in attributes
    assert "samesite=lax" in attributes


@pytest.mark.contract("GET /login when logged in redirects to /profile (step 03+)")
@pytest.mark.features("login", "logged-in-redirect")
def test_login_page_sends_a_logged_in_user_to_profile(client, auth):
    auth.login("alice")
    response = client.get("/login")
    assert response.status_code in (302, 303)
    assert response.headers["Location"] == "/profile"
