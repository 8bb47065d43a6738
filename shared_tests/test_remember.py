"""Remember me: a login that outlives closing the browser, when asked for.

Steps 03-04 do it with Flask-Login's second, long-lived cookie; step 05+
with a long-lived session cookie. The tests hold for both: a browser that
closes keeps only the cookies that carry an expiry date.
"""

from datetime import datetime
from datetime import timezone
from email.utils import parsedate_to_datetime
from http.cookies import SimpleCookie

import pytest

from harness.apps import lasting_cookies
from harness.apps import remember_cookie_name
from harness.apps import reopened_browser


@pytest.mark.contract("Remember me: the remember cookie logs you in again in a new browser session")
@pytest.mark.features("remember", "profile")
def test_remember_cookie_logs_you_in_again(app, client, auth):
    auth.login("alice", remember="y")
    browser = reopened_browser(app, client)
    response = browser.get("/profile")
    assert response.status_code == 200
    assert "alice" in response.text


@pytest.mark.contract("Without remember me, closing the browser logs you out")
@pytest.mark.features("remember", "profile")
def test_without_remember_closing_the_browser_logs_you_out(app, client, auth):
    auth.login("alice")
    assert client.get("/profile").status_code == 200
    assert lasting_cookies(app, client) == {}
    browser = reopened_browser(app, client)
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


def lasting_cookies_set(response):
    """The cookies a response sets that outlive the browser: {name: Morsel}."""
    return {name: cookie for name, cookie in cookies_set(response).items() if cookie.value and lifetime(cookie)}


@pytest.mark.contract("Remember me: the remember cookie logs you in again in a new browser session")
@pytest.mark.features("remember")
def test_remember_cookie_lasts_for_days(auth):
    lasting = lasting_cookies_set(auth.login("alice", remember="y"))
    assert lasting, "login with remember me set no cookie that outlives the browser"
    assert max(lifetime(cookie) for cookie in lasting.values()) >= 24 * 3600


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
@pytest.mark.asvs("3.3.2", "3.3.4")
def test_remember_cookie_flags(auth):
    lasting = lasting_cookies_set(auth.login("alice", remember="y"))
    assert lasting, "login with remember me set no cookie that outlives the browser"
    for name, cookie in lasting.items():
        assert cookie["httponly"], f"{name} is not HttpOnly"
        assert cookie["samesite"].lower() == "lax", f"{name} is not SameSite=Lax"


@pytest.mark.contract("Logging out forgets the remember cookie")
@pytest.mark.features("remember", "logout", "profile")
@pytest.mark.asvs("14.3.1")
def test_logout_forgets_the_remember_cookie(app, client, auth):
    auth.login("alice", remember="y")
    assert lasting_cookies(app, client) != {}
    auth.logout()
    assert lasting_cookies(app, client) == {}
    assert client.get("/profile").status_code in (302, 303)
    assert reopened_browser(app, client).get("/profile").status_code in (302, 303)


@pytest.mark.contract("A forged remember cookie logs nobody in")
@pytest.mark.features("remember", "profile")
@pytest.mark.parametrize("value", ["1|forged", "1", "", "2|" + "0" * 128, "\u00e9|x"])
@pytest.mark.asvs("9.1.1")
def test_forged_remember_cookie_is_anonymous(app, value):
    browser = app.test_client()
    browser.set_cookie(remember_cookie_name(app), value)
    assert browser.get("/profile").status_code in (302, 303)


@pytest.mark.contract("GET /login when logged in redirects to /profile (step 03+)")
@pytest.mark.features("remember", "logged-in-redirect")
def test_remembered_user_is_sent_away_from_login(app, client, auth):
    auth.login("alice", remember="y")
    browser = reopened_browser(app, client)
    response = browser.get("/login")
    assert response.headers["Location"] == "/profile"
