"""CSRF: every POST must carry the token the site gave this browser."""

import pytest

from harness.apps import AuthActions
from harness.apps import require
from harness.pages import forms

POSTS = [
    ("/login", {"username": "alice", "password": "wonderland"}, ()),
    ("/logout", {}, ()),
    (
        "/register",
        {
            "username": "carol",
            "email": "carol@example.com",
            "password": "a-long-passphrase",
            "confirm_password": "a-long-passphrase",
        },
        ("registration",),
    ),
    ("/logout-everywhere", {}, ("logout-everywhere",)),
    (
        "/change-password",
        {"current_password": "wonderland", "password": "a-long-passphrase", "confirm_password": "a-long-passphrase"},
        ("change-password",),
    ),
    ("/reset-password", {"email": "alice@example.com"}, ("password-reset",)),
    (
        "/reset-password/any-token",
        {"password": "a-long-passphrase", "confirm_password": "a-long-passphrase"},
        ("password-reset",),
    ),
    ("/confirm", {"email": "alice@example.com"}, ("email-confirmation",)),
    ("/change-email", {"email": "alice.moved@example.com", "current_password": "wonderland"}, ("change-email",)),
    ("/login/two-factor", {"code": "123456"}, ("two-factor",)),
    ("/two-factor/setup", {}, ("two-factor",)),
    ("/two-factor/enable", {"code": "123456", "current_password": "wonderland"}, ("two-factor",)),
    ("/two-factor/disable", {"code": "123456", "current_password": "wonderland"}, ("two-factor",)),
    ("/two-factor/recovery-codes", {"code": "123456", "current_password": "wonderland"}, ("two-factor",)),
    ("/reauthenticate", {"current_password": "wonderland"}, ("admin-area",)),
    ("/admin/users/2/disable", {}, ("admin-area",)),
    ("/admin/users/2/enable", {}, ("admin-area",)),
    ("/admin/users/2/end-sessions", {}, ("admin-area",)),
    ("/account/sessions/" + "0" * 32 + "/end", {}, ("device-sessions",)),
]


@pytest.mark.contract("Every POST needs a valid csrf_token; without one the answer is 400")
@pytest.mark.features("csrf")
@pytest.mark.parametrize(("path", "data", "needs"), POSTS, ids=[p[0] for p in POSTS])
@pytest.mark.parametrize("token", ["missing", "empty", "wrong", "from-another-browser"])
@pytest.mark.asvs("3.5.1")
def test_post_without_a_valid_token_is_refused(step, app, client, path, data, needs, token):
    require(step, *needs)
    client.get("/login")  # the session now has a token; the request below lacks it
    tokens = {
        "missing": None,
        "empty": "",
        "wrong": "not-a-token",
        "from-another-browser": AuthActions(app.test_client()).token(),
    }
    if tokens[token] is not None:
        data = data | {"csrf_token": tokens[token]}
    response = client.post(path, data=data)
    assert response.status_code == 400
    assert "CSRF" in response.text  # says why, in words


@pytest.mark.contract("Every POST needs a valid csrf_token; without one the answer is 400")
@pytest.mark.features("csrf", "logout")
@pytest.mark.asvs("3.5.1")
def test_logout_without_a_token_keeps_you_logged_in(client, auth):
    auth.login("alice")
    assert client.post("/logout").status_code == 400
    assert client.get("/profile").status_code == 200


# Pages for a logged-in user, and what each needs besides a login.
LOGGED_IN_PAGES = [
    ("/", ()),
    ("/profile", ("profile",)),
    ("/change-password", ("change-password",)),
    ("/change-email", ("change-email",)),
]


@pytest.mark.contract("Every page for a logged-in user has the log-out button, whose form carries a working csrf_token")
@pytest.mark.features("csrf", "logout")
@pytest.mark.parametrize(("path", "needs"), LOGGED_IN_PAGES, ids=[p[0] for p in LOGGED_IN_PAGES])
@pytest.mark.asvs("7.4.4")
def test_logout_button_carries_a_token(step, client, auth, path, needs):
    require(step, *needs)
    auth.login("alice")
    page = client.get(path)
    assert page.status_code == 200
    [logout] = [form for form in forms(page.text) if form["method"] == "post" and form["action"] == "/logout"]
    token = logout["inputs"].get("csrf_token", {}).get("value")
    assert token, f"the log-out form on {path} has no csrf_token"
    # The button works: that token, and nothing else, logs out.
    assert client.post("/logout", data={"csrf_token": token}).status_code in (302, 303)
    assert client.get("/profile").status_code in (302, 303)
