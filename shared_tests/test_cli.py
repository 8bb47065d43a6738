"""The `create-user` command: the only way into steps 03+ before step 04's sign-up page."""

import pytest

from harness.accounts import LONGEST_PASSWORD
from harness.accounts import REFUSED_PASSWORDS
from harness.accounts import USERS
from harness.apps import AuthActions
from harness.apps import create_user
from harness.apps import stored_strings


@pytest.mark.contract("flask create-user NAME adds a user, asking for the password twice without showing it")
@pytest.mark.features("database", "login")
def test_create_user_then_log_in(step, app, runner):
    result = create_user(runner, step, "carol", "a-long-passphrase")
    assert result.exit_code == 0, result.output
    assert "a-long-passphrase" not in result.output  # the prompt does not echo it
    response = AuthActions(app.test_client()).login("carol", "a-long-passphrase")
    assert response.headers["Location"] == "/profile"


@pytest.mark.contract("create-user refuses a taken name with a short, clear message")
@pytest.mark.features("database")
@pytest.mark.parametrize("username", ["alice", "bob"])
def test_create_user_with_a_taken_name_fails_clearly(step, runner, username):
    result = create_user(runner, step, username, "a-long-passphrase", email=f"new-{username}@example.com")
    assert result.exit_code != 0
    assert "taken" in result.output.lower()
    assert "Traceback" not in result.output
    assert len(result.output.strip().splitlines()[-1]) < 200


@pytest.mark.contract("create-user refuses two different passwords and creates nobody")
@pytest.mark.features("database", "login")
def test_create_user_with_mismatched_passwords_creates_nobody(step, app, runner):
    result = create_user(runner, step, "carol", "a-long-passphrase", confirm="something-else")
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    assert AuthActions(app.test_client()).login("carol", "a-long-passphrase").status_code == 200


@pytest.mark.contract("create-user refuses a password over 72 bytes, bcrypt's limit")
@pytest.mark.features("database", "login")
@pytest.mark.parametrize(
    "password", ["x" * 73, "\u00e9" * 37, "\U0001f600" * 19], ids=["73-ascii", "74-bytes-latin", "76-bytes-emoji"]
)
def test_create_user_refuses_passwords_over_72_bytes(step, app, runner, password):
    result = create_user(runner, step, "carol", password)
    assert result.exit_code != 0
    assert "72" in result.output
    assert "Traceback" not in result.output
    assert AuthActions(app.test_client()).login("carol", password).status_code == 200


@pytest.mark.contract(
    "Wherever a password is set, a common one (letter case aside), one of 65 characters and one over 72 bytes "
    "are refused, with a message at the field (step 04+)"
)
@pytest.mark.features("registration")
@pytest.mark.parametrize(("password", "words"), REFUSED_PASSWORDS.values(), ids=REFUSED_PASSWORDS.keys())
@pytest.mark.asvs("6.2.4")
def test_create_user_refuses_a_common_or_too_long_password(step, runner, database_url, password, words):
    result = create_user(runner, step, "carol", password)
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    message = result.output.strip().splitlines()[-1]
    assert any(word in message.lower() for word in words), message
    assert len(message) < 200
    assert "carol" not in stored_strings(database_url)


@pytest.mark.contract("Wherever a password is set, one of 64 characters is accepted (step 04+)")
@pytest.mark.features("registration", "login")
@pytest.mark.asvs("6.2.9")
def test_create_user_takes_a_64_character_password(step, app, runner):
    result = create_user(runner, step, "carol", LONGEST_PASSWORD)
    assert result.exit_code == 0, result.output
    assert AuthActions(app.test_client()).login("carol", LONGEST_PASSWORD).headers["Location"] == "/profile"


@pytest.mark.contract("create-user requires --email (step 04+)")
@pytest.mark.features("database", "email")
def test_create_user_needs_an_email(step, runner):
    result = runner.invoke(args=["create-user", "carol"], input="a-long-passphrase\n" * 2)
    assert result.exit_code != 0
    assert "email" in result.output.lower()


@pytest.mark.contract("Users get ids in the order they are made: the first 1, the second 2, shown on /profile")
@pytest.mark.features("database", "login", "profile")
def test_ids_follow_creation_order(client, auth):
    for username, user in USERS.items():
        auth.login(username)
        assert str(user["id"]) in client.get("/profile").text
        auth.logout()


@pytest.mark.contract("create-user takes the password only at its hidden prompt, never as an option")
@pytest.mark.features("database")
def test_create_user_takes_no_password_option(step, app, runner):
    args = ["create-user", "carol", "--password", "a-long-passphrase"]
    if "email" in step.features:
        args += ["--email", "carol@example.com"]
    # Even with an answer waiting at the prompt, the option itself is refused.
    result = runner.invoke(args=args, input="a-long-passphrase\na-long-passphrase\n")
    assert result.exit_code != 0
    assert "no such option" in result.output.lower()
    assert AuthActions(app.test_client()).login("carol", "a-long-passphrase").status_code == 200
