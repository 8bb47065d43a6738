"""Passwords: stored as bcrypt hashes, checked in the same time for everyone."""

import re

import pytest

from harness.accounts import USERS
from harness.apps import AuthActions
from harness.apps import add_users
from harness.apps import close_database
from harness.apps import create_user
from harness.apps import stored_strings

BCRYPT_HASH = re.compile(r"^\$2[aby]?\$(\d\d)\$[./A-Za-z0-9]{53}$")


@pytest.mark.contract("Users live in the database with a bcrypt hash of their password, never the password itself")
@pytest.mark.features("database", "password-hash")
@pytest.mark.asvs("11.4.2")
def test_database_holds_hashes_not_passwords(app, database_url):
    strings = stored_strings(database_url)
    for user in USERS.values():
        assert not any(user["password"] in value for value in strings)
    hashes = [value for value in strings if BCRYPT_HASH.match(value)]
    assert len(hashes) == len(USERS)
    assert len(set(hashes)) == len(hashes)


@pytest.mark.contract("Each hash has its own salt: the same password never gives the same hash")
@pytest.mark.features("database", "password-hash")
@pytest.mark.asvs("11.4.2")
def test_same_password_different_hashes(step, app, runner, database_url):
    """A random salt per hash: equal passwords do not give equal hashes."""
    for name in ("carol", "dave"):
        assert create_user(runner, step, name, "same-password").exit_code == 0
    hashes = [value for value in stored_strings(database_url) if BCRYPT_HASH.match(value)]
    assert len(set(hashes)) == len(USERS) + 2


@pytest.mark.contract("With no configuration bcrypt's cost factor is at least 12")
@pytest.mark.features("database", "password-hash")
@pytest.mark.asvs("11.4.2")
def test_default_cost_is_at_least_12(step, fresh_copy, tmp_path, monkeypatch):
    """With no configuration the app uses a production cost factor."""
    url = f"sqlite:///{tmp_path / 'cost.sqlite'}"
    monkeypatch.setenv("FLASK_SQLALCHEMY_DATABASE_URI", url)
    app = fresh_copy()
    add_users(app, step)
    costs = {int(BCRYPT_HASH.match(value).group(1)) for value in stored_strings(url) if BCRYPT_HASH.match(value)}
    assert costs
    assert min(costs) >= 12


@pytest.mark.contract("A password over 72 bytes is just a wrong password at login")
@pytest.mark.features("login", "password-hash")
@pytest.mark.parametrize(
    "password",
    ["wonderland" + "x" * 63, "wonderland" + "\u00e9" * 40, "\U0001f600" * 100],
    ids=["73-bytes", "90-bytes", "400-bytes"],
)
def test_login_with_an_overlong_password_is_just_wrong(client, auth, password):
    response = auth.login("alice", password)
    assert response.status_code == 200
    assert "Invalid username or password." in response.text


@pytest.mark.contract("A longer password never matches on its first 72 bytes alone")
@pytest.mark.features("database", "login", "password-hash")
@pytest.mark.asvs("6.2.8")
def test_no_match_on_the_first_72_bytes_alone(step, app, runner):
    """bcrypt reads 72 bytes; a longer try must not pass because its start matches."""
    password = "\u00e9" * 36  # 36 characters, 72 bytes
    assert create_user(runner, step, "carol", password).exit_code == 0
    client = app.test_client()
    assert AuthActions(client).login("carol", password + "p").status_code == 200
    assert AuthActions(client).login("carol", password).headers["Location"] == "/profile"


@pytest.fixture
def bcrypt_calls(monkeypatch):
    """Every bcrypt hash computation (a password check is one), as (function, cost factor)."""
    import bcrypt  # here, not on top: steps 01-02 do not install it

    calls = []
    for name in ("hashpw", "checkpw"):
        real = getattr(bcrypt, name)

        def spy(*args, _real=real, _name=name):
            # The second argument is a salt or a hash: "$2b$12$...", cost at [4:6].
            calls.append((_name, int(bytes(args[1])[4:6])))
            return _real(*args)

        monkeypatch.setattr(bcrypt, name, spy)
    return calls


@pytest.mark.contract("A login attempt costs the same for unknown users as for known ones (no timing clue)")
@pytest.mark.features("login", "timing-safe-login")
@pytest.mark.parametrize(
    ("username", "password"),
    [("alice", "wrong password"), ("nobody", "wrong password"), ("alice", "wonderland")],
    ids=["known-user", "unknown-user", "right-password"],
)
def test_every_login_checks_one_password(auth, bcrypt_calls, username, password):
    """The same work for an unknown user as for a known one: no timing oracle."""
    auth.login(username, password)
    assert len(bcrypt_calls) == 1, bcrypt_calls


@pytest.mark.contract("A login attempt costs the same for unknown users as for known ones (no timing clue)")
@pytest.mark.features("login", "timing-safe-login", "database")
def test_unknown_user_check_costs_as_much_as_a_real_one(step, create_app, test_config, bcrypt_calls):
    """The dummy hash follows the configured cost, whatever it is (here neither 4 nor 12)."""
    app = create_app(test_config | {"BCRYPT_LOG_ROUNDS": 5})
    try:
        add_users(app, step)
        auth = AuthActions(app.test_client())
        auth.token()
        bcrypt_calls.clear()
        auth.login("alice", "wrong password")
        auth.login("nobody", "wrong password")
        [(_, known), (_, unknown)] = bcrypt_calls
        assert unknown == known == 5
    finally:
        close_database(app)
