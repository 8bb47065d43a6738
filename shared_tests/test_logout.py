"""Logging out, and the protected profile page."""

import pytest

from harness.apps import require
from harness.pages import text

PLEASE_LOG_IN = "Please log in to access this page."
LOGGED_OUT = "You have been logged out."


@pytest.mark.contract("GET /profile when anonymous redirects to /login")
@pytest.mark.features("profile")
def test_profile_anonymous_redirects_to_login(client):
    response = client.get("/profile")
    assert response.status_code in (302, 303)
    assert response.headers["Location"].split("?")[0] == "/login"


@pytest.mark.contract("GET /profile when anonymous redirects to /login?next=%2Fprofile (step 03+)")
@pytest.mark.features("profile", "login-next")
def test_profile_anonymous_redirect_carries_next(client):
    assert client.get("/profile").headers["Location"] == "/login?next=%2Fprofile"


@pytest.mark.contract("GET /profile when anonymous flashes 'Please log in to access this page.' (step 02+)")
@pytest.mark.features("profile", "flash")
def test_profile_anonymous_flashes_please_log_in(client):
    response = client.get("/profile", follow_redirects=True)
    assert PLEASE_LOG_IN in text(response.text)


@pytest.mark.contract("POST /logout logs you out and redirects")
@pytest.mark.features("login", "logout", "profile")
@pytest.mark.asvs("7.4.1")
def test_logout_logs_out(client, auth):
    auth.login("alice")
    response = auth.logout()
    assert response.status_code in (302, 303)
    assert client.get("/profile").status_code in (302, 303)


@pytest.mark.contract("POST /logout when anonymous redirects")
@pytest.mark.features("logout")
def test_logout_anonymous_redirects(auth):
    assert auth.logout().status_code in (302, 303)


@pytest.mark.contract("GET /logout (and /logout-everywhere) answers 405: logging out is by POST only")
@pytest.mark.features("logout")
@pytest.mark.parametrize(
    ("path", "needs"), [("/logout", ()), ("/logout-everywhere", ("logout-everywhere",))], ids=["logout", "everywhere"]
)
@pytest.mark.parametrize("logged_in", [False, True], ids=["anonymous", "logged-in"])
@pytest.mark.asvs("3.5.3")
def test_logout_by_get_is_not_allowed(step, client, auth, logged_in, path, needs):
    """A link, an <img> or a prefetch must not log anybody out."""
    require(step, *needs)
    if logged_in:
        auth.login("alice")
    assert client.get(path).status_code == 405
    if logged_in:
        assert client.get("/profile").status_code == 200


@pytest.mark.contract("Flash messages appear on the next page rendered, once")
@pytest.mark.features("login", "logout", "flash")
def test_logout_flash_is_shown_once(client, auth):
    auth.login("alice")
    first = client.get(auth.logout().headers["Location"])
    assert text(first.text).count(LOGGED_OUT) == 1
    assert LOGGED_OUT not in text(client.get("/").text)


@pytest.mark.contract("Flash messages appear on the next page rendered, once")
@pytest.mark.features("profile", "flash")
def test_please_log_in_flash_is_shown_once(client):
    first = client.get("/profile", follow_redirects=True)
    assert text(first.text).count(PLEASE_LOG_IN) == 1
    assert PLEASE_LOG_IN not in text(client.get("/login").text)
