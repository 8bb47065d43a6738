"""Remember me: a second, long-lived cookie that logs you in again."""

from datetime import datetime
from datetime import timezone
from email.utils import parsedate_to_datetime
from http.cookies import SimpleCookie

import pytest


def remember_cookie_name(app):
    return app.config.get("REMEMBER_COOKIE_NAME", "remember_token")


def reopened_browser(app, client, keep):
    """A new client holding only the cookie named `keep` of those `client` has."""
    browser = app.test_client()
    cookie = client.get_cookie(keep)
    if cookie is not None:
        browser.set_cookie(keep, cookie.value)
    return browser


@pytest.mark.contract("Remember me: the remember cookie logs you in again in a new browser session")
@pytest.mark.features("remember", "profile")
def test_remember_cookie_logs_you_in_again(app, client, auth):
    auth.login("alice", remember="y")
    browser = reopened_browser(app, client, remember_cookie_name(app))
    response = browser.get("/profile")
    assert response.status_code == 200
    assert "alice" in response.text


@pytest.mark.contract("Without remember me, closing the browser logs you out")
@pytest.mark.features("remember", "profile")
def test_without_remember_closing_the_browser_logs_you_out(app, client, auth):
    auth.login("alice")
    assert client.get_cookie(remember_cookie_name(app)) is None
    browser = reopened_browser(app, client, remember_cookie_name(app))
    assert browser.get("/profile").status_code in (302, 303)


def cookies_set(response):
    """The cookies a response sets, with their attributes."""
    cookies = SimpleCookie()
    for header in response.headers.getlist("Set-Cookie"):
        cookies.load(header)
    return cookies


def lifetime(cookie):
    """Seconds until the cookie expires; None for one the browser drops when it closes."""
    if cookie["max-age"]:
        return int(cookie["max-age"])
    if cookie["expires"]:
        return (parsedate_to_datetime(cookie["expires"]) - datetime.now(timezone.utc)).total_seconds()
    return None


@pytest.mark.contract("Remember me: the remember cookie logs you in again in a new browser session")
@pytest.mark.features("remember")
def test_remember_cookie_lasts_for_days(app, auth):
    cookie = cookies_set(auth.login("alice", remember="y")).get(remember_cookie_name(app))
    assert cookie is not None, "login with remember me did not set the remember cookie"
    seconds = lifetime(cookie)
    assert seconds is not None, "the remember cookie has no expiry: closing the browser drops it"
    assert seconds >= 24 * 3600


@pytest.mark.contract("Without remember me, closing the browser logs you out")
@pytest.mark.features("remember")
def test_without_remember_no_cookie_outlives_the_browser(auth):
    response = auth.login("alice")
    assert response.status_code in (302, 303)
    for name, cookie in cookies_set(response).items():
        if cookie.value:  # an emptied cookie is a deletion, which is fine
            assert lifetime(cookie) is None, f"{name} would survive closing the browser"


@pytest.mark.contract("The remember cookie is HttpOnly and SameSite=Lax")
@pytest.mark.features("remember")
def test_remember_cookie_flags(app, auth):
    response = auth.login("alice", remember="y")
    name = remember_cookie_name(app)
    headers = [h for h in response.headers.getlist("Set-Cookie") if h.startswith(f"{name}=")]
    assert headers, "login with remember me did not set the remember cookie"
    attributes = [part.strip().lower() for part in headers[-1].split(";")]
    assert "httponly" in attributes
    assert "samesite=lax" in attributes


@pytest.mark.contract("Logging out forgets the remember cookie")
@pytest.mark.features("remember", "logout", "profile")
def test_logout_forgets_the_remember_cookie(app, client, auth):
    auth.login("alice", remember="y")
    assert client.get_cookie(remember_cookie_name(app)) is not None
    auth.logout()
    assert client.get_cookie(remember_cookie_name(app)) is None
    assert client.get("/profile").status_code in (302, 303)


@pytest.mark.contract("A forged remember cookie logs nobody in")
@pytest.mark.features("remember", "profile")
@pytest.mark.parametrize("value", ["1|forged", "1", "", "2|" + "0" * 128, "\u00e9|x"])
def test_forged_remember_cookie_is_anonymous(app, value):
    browser = app.test_client()
    browser.set_cookie(remember_cookie_name(app), value)
    assert browser.get("/profile").status_code in (302, 303)


@pytest.mark.contract("GET /login when logged in redirects to /profile (step 03+)")
@pytest.mark.features("remember", "logged-in-redirect")
def test_remembered_user_is_sent_away_from_login(app, client, auth):
    auth.login("alice", remember="y")
    browser = reopened_browser(app, client, remember_cookie_name(app))
    response = browser.get("/login")
    assert response.headers["Location"] == "/profile"
