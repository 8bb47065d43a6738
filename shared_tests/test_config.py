"""Configuration: the secret key, and a step that runs with none at all."""

import pytest

from conftest import AuthActions
from conftest import add_users


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


@pytest.mark.features("login")
def test_no_secret_key_in_the_code(fresh_copy, cheap_hashing):
    """Two copies of the same code must not share a key: each makes its own."""
    first, other = fresh_copy().secret_key, fresh_copy("other").secret_key
    assert first and other
    assert first != other
    assert len(first) >= 32


@pytest.mark.features("login")
def test_secret_key_from_the_environment(fresh_copy, cheap_hashing, monkeypatch):
    monkeypatch.setenv("FLASK_SECRET_KEY", "from-the-environment")
    assert fresh_copy().secret_key == "from-the-environment"
