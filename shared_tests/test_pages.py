"""What each page shows: home, the login form, the profile."""

import pytest

from harness.accounts import USERS
from harness.apps import require
from harness.pages import forms
from harness.pages import inputs
from harness.pages import links
from harness.pages import password_field_problems
from harness.pages import text
from harness.pages import words


@pytest.mark.contract("GET / when anonymous: 200, with a link to /login")
@pytest.mark.features("login")
def test_home_anonymous_links_to_login(client):
    response = client.get("/")
    assert response.status_code == 200
    assert "/login" in links(response.text)


@pytest.mark.contract("GET / when anonymous links to /register (step 04+)")
@pytest.mark.features("login", "registration")
def test_home_anonymous_links_to_register(client):
    assert "/register" in links(client.get("/").text)


@pytest.mark.contract("GET / when logged in: 200, shows the username and a log-out button")
@pytest.mark.features("login", "logout")
@pytest.mark.parametrize("username", USERS)
@pytest.mark.asvs("7.4.4")
def test_home_logged_in_shows_username_and_logout_button(client, auth, username):
    auth.login(username)
    response = client.get("/")
    assert response.status_code == 200
    assert username in words(response.text)
    logout_forms = [f for f in forms(response.text) if f["action"].endswith("/logout")]
    assert logout_forms, "no form posting to /logout"
    assert logout_forms[0]["method"] == "post"


@pytest.mark.contract("GET /login: 200, a form with the inputs username and password")
@pytest.mark.features("login")
@pytest.mark.asvs("6.2.6")
def test_login_form_has_username_and_password(client):
    response = client.get("/login")
    assert response.status_code == 200
    fields = inputs(response.text)
    assert "username" in fields
    assert fields["password"].get("type") == "password"


NEW = "new-password"
# (page, logged in, what it needs, {password input: its autocomplete}).
PASSWORD_FORMS = [
    ("/login", False, (), {"password": "current-password"}),
    ("/register", False, ("registration",), {"password": NEW, "confirm_password": NEW}),
    (
        "/change-password",
        True,
        ("change-password",),
        {"current_password": "current-password", "password": NEW, "confirm_password": NEW},
    ),
]


@pytest.mark.contract(
    "Password inputs say autocomplete current-password or new-password, have no maxlength under 64 and allow pasting"
)
@pytest.mark.features("login")
@pytest.mark.parametrize(
    ("path", "logged_in", "needs", "autocomplete"), PASSWORD_FORMS, ids=[form[0] for form in PASSWORD_FORMS]
)
@pytest.mark.asvs("6.2.7")
def test_password_inputs_let_password_managers_help(step, client, auth, path, logged_in, needs, autocomplete):
    require(step, *needs)
    if logged_in:
        auth.login("alice")
    response = client.get(path)
    assert response.status_code == 200
    assert password_field_problems(response.text, autocomplete) == []


# Every form field the contract knows. A hint, a secret question or its answer
# would be one more.
CONTRACT_FIELDS = {
    "username",
    "email",
    "password",
    "confirm_password",
    "current_password",
    "remember",
    "csrf_token",
    "submit",
}
# (page, logged in, what it needs); the reset link's form is tested in test_password_reset.py.
FORM_PAGES = [
    ("/login", False, ()),
    ("/register", False, ("registration",)),
    ("/reset-password", False, ("password-reset",)),
    ("/change-password", True, ("change-password",)),
    ("/confirm", False, ("email-confirmation",)),
    ("/change-email", True, ("change-email",)),
]


@pytest.mark.contract("No form asks for a password hint or a secret question: only the contract's fields")
@pytest.mark.features("login")
@pytest.mark.parametrize(("path", "logged_in", "needs"), FORM_PAGES, ids=[form[0] for form in FORM_PAGES])
@pytest.mark.asvs("6.4.2")
def test_forms_ask_for_no_hint_and_no_secret_question(step, client, auth, path, logged_in, needs):
    require(step, *needs)
    if logged_in:
        auth.login("alice")
    response = client.get(path)
    assert response.status_code == 200
    asked = {name for form in forms(response.text) for name in form["inputs"]}
    assert "password" in asked or "email" in asked, f"no form on {path}"
    assert asked <= CONTRACT_FIELDS, f"{path} asks for {sorted(asked - CONTRACT_FIELDS)}"


@pytest.mark.contract("The login form has a remember checkbox and a hidden csrf_token (step 03+)")
@pytest.mark.features("login", "csrf", "remember")
def test_login_form_has_remember_and_csrf_token(client):
    fields = inputs(client.get("/login").text)
    assert fields["remember"].get("type") == "checkbox"
    assert fields["csrf_token"].get("type") == "hidden"
    assert fields["csrf_token"].get("value")


@pytest.mark.contract("The login page shows the demo accounts alice and bob (steps 01-02)")
@pytest.mark.features("login", "demo-users")
def test_login_page_shows_demo_accounts(client):
    shown = text(client.get("/login").text)
    for username, user in USERS.items():
        assert username in shown
        assert user["password"] in shown


@pytest.mark.contract("GET /profile when logged in: 200, shows the username and the numeric user id")
@pytest.mark.features("login", "profile")
@pytest.mark.parametrize("username", USERS)
def test_profile_shows_username_and_id(client, auth, username):
    auth.login(username)
    response = client.get("/profile")
    assert response.status_code == 200
    shown = words(response.text)
    assert username in shown
    assert str(USERS[username]["id"]) in shown
    other = next(name for name in USERS if name != username)
    assert other not in shown
