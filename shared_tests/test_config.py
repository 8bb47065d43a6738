"""Configuration: the secret key, and a step that runs with none at all."""

import shutil

import pytest

from harness.apps import AuthActions
from harness.apps import add_users
from harness.apps import stored_strings
from harness.pages import text


@pytest.mark.contract("With no configuration the app runs, and sessions survive a restart")
@pytest.mark.features("login", "profile")
def test_runs_with_no_configuration_and_sessions_survive_a_restart(step, fresh_copy):
    before = fresh_copy()
    add_users(before, step)
    browser = before.test_client()
    AuthActions(browser).login("alice")
    assert browser.get("/profile").status_code == 200

    after = fresh_copy()  # the same folder, started again
    name = after.config["SESSION_COOKIE_NAME"]
    returning = after.test_client()
    returning.set_cookie(name, browser.get_cookie(name).value)
    assert returning.get("/profile").status_code == 200


@pytest.fixture
def cheap_hashing(monkeypatch):
    """Tests about the key need no production-cost bcrypt (steps 01-02 ignore it)."""
    monkeypatch.setenv("FLASK_BCRYPT_LOG_ROUNDS", "4")


@pytest.mark.contract("No secret key in the code: each copy of the app makes its own random key")
@pytest.mark.features("login")
@pytest.mark.asvs("9.1.3")
def test_no_secret_key_in_the_code(fresh_copy, cheap_hashing):
    """Two copies of the same code must not share a key: each makes its own."""
    first, other = fresh_copy().secret_key, fresh_copy("other").secret_key
    assert first and other
    assert first != other
    assert len(first) >= 32


@pytest.mark.contract("No secret key in the code: each copy of the app makes its own random key")
@pytest.mark.features("login")
def test_a_new_checkout_in_the_same_place_gets_a_new_key(fresh_copy, cheap_hashing, tmp_path):
    """The key is random, not worked out from something (its folder, say) that an attacker can guess."""
    first = fresh_copy("checkout").secret_key
    shutil.rmtree(tmp_path / "checkout")
    assert fresh_copy("checkout").secret_key != first


@pytest.mark.contract("Steps run side by side from one checkout and never share a database file")
@pytest.mark.features("database", "login")
def test_two_steps_side_by_side_share_no_database(step, fresh_copy, cheap_hashing):
    """Two steps in one folder, as under steps/: a user made in one does not exist in the other."""
    this, beside = fresh_copy("steps"), fresh_copy("steps", name="99_next")
    add_users(this, step)
    assert AuthActions(this.test_client()).login("alice").status_code in (302, 303)
    assert AuthActions(beside.test_client()).login("alice").status_code == 200  # no alice there


@pytest.mark.contract("Configuration comes from FLASK_ environment variables, e.g. FLASK_SECRET_KEY")
@pytest.mark.features("login")
@pytest.mark.asvs("9.1.3")
def test_secret_key_from_the_environment(fresh_copy, cheap_hashing, monkeypatch):
    monkeypatch.setenv("FLASK_SECRET_KEY", "from-the-environment")
    assert fresh_copy().secret_key == "from-the-environment"


# What a guesser tries first on any login form.
DEFAULT_ACCOUNTS = [
    ("admin", "admin"),
    ("admin", "password"),
    ("admin", "changeme"),
    ("root", "root"),
    ("administrator", "administrator"),
    ("test", "test"),
    ("user", "user"),
    ("guest", "guest"),
]


@pytest.mark.contract(
    "No default accounts: a new copy has no users, and admin/admin and the like get 'Invalid username or password.'"
)
@pytest.mark.features("database", "login")
@pytest.mark.asvs("6.3.2")
def test_no_default_accounts(fresh_copy, tmp_path, monkeypatch):
    url = f"sqlite:///{tmp_path / 'new.sqlite'}"
    monkeypatch.setenv("FLASK_SQLALCHEMY_DATABASE_URI", url)
    # The cheapest bcrypt cost: each refused login still checks a dummy hash.
    monkeypatch.setenv("FLASK_BCRYPT_LOG_ROUNDS", "4")
    app = fresh_copy()
    # Every table empty (the migrations' own bookkeeping aside): no user at all.
    assert stored_strings(url, skip=("alembic_version",)) == []
    for username, password in DEFAULT_ACCOUNTS:
        client = app.test_client()
        response = AuthActions(client).login(username, password)
        assert response.status_code == 200, (username, password, response.status_code)
        assert "Invalid username or password." in text(response.text)
        assert client.get("/profile").status_code in (302, 303)
