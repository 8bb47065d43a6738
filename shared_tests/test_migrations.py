"""Migrations (step 08): the schema is made and changed by Alembic, through Flask-Migrate's `flask db`.

Each test has a database of its own (SQLite, or a new PostgreSQL database
under `nox -s tests-postgres`), looked at from outside the app with
SQLAlchemy's inspector.
"""

import subprocess
import sys
import time
import warnings
from pathlib import Path

import pytest

from harness import launcher
from harness import oidc
from harness.accounts import USERS
from harness.apps import AuthActions
from harness.apps import add_users
from harness.apps import close_database
from harness.apps import grant
from harness.pages import text
from harness.passkeys import SoftAuthenticator
from harness.passkeys import add_passkey
from harness.passkeys import sign_in
from harness.services import environment_without
from harness.services import free_port
from harness.services import stop_process
from harness.services import wait_for_port
from harness.steps import discover
from harness.steps import load_module
from harness.two_factor import turn_on


def tables(url):
    """The tables in the database at `url`, and the indexes (by name) in it."""
    import sqlalchemy as sa  # here, not on top: steps 01-02 have no SQLAlchemy

    engine = sa.create_engine(url)
    try:
        with engine.connect() as connection:
            names = set(sa.inspect(connection).get_table_names())
            if engine.dialect.name == "sqlite":
                query = "SELECT name FROM sqlite_master WHERE type = 'index'"
            else:
                query = "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
            indexes = {row[0] for row in connection.execute(sa.text(query))}
            versions = []
            if "alembic_version" in names:
                versions = [row[0] for row in connection.execute(sa.text("SELECT version_num FROM alembic_version"))]
        return names, indexes, versions
    finally:
        engine.dispose()


def logs_in(app, username):
    client = app.test_client()
    response = AuthActions(client).login(username)
    return response.status_code in (302, 303) and client.get("/profile").status_code == 200


def flask_command(step, url, *args, tmp_path):
    """Start `flask --app STEP ARGS...` on the database at `url`, in a process of its own."""
    env = environment_without()
    env.update(FLASK_SQLALCHEMY_DATABASE_URI=url, FLASK_SECRET_KEY="only-for-tests")
    return launcher.Popen(
        [sys.executable, "-m", "flask", "--app", str(step.path), *args],
        env=env,
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def model_tables(app):
    return set(app.extensions["migrate"].db.metadata.tables)


@pytest.mark.contract("flask db upgrade makes the whole schema in an empty database, and records its version")
@pytest.mark.features("migrations", "database", "login")
def test_upgrade_makes_the_schema_in_an_empty_database(step, create_app, test_config, database_url, tmp_path):
    assert tables(database_url)[0] == set()
    command = flask_command(step, database_url, "db", "upgrade", tmp_path=tmp_path)
    output = command.communicate(timeout=120)[0]
    assert command.returncode == 0, output
    assert "Traceback" not in output
    names, indexes, versions = tables(database_url)
    assert len(versions) == 1, versions
    app = create_app(test_config)
    try:
        assert model_tables(app) <= names
        add_users(app, step)
        assert logs_in(app, "alice")
    finally:
        close_database(app)


@pytest.mark.contract("The migrations make exactly the tables, columns and indexes the models declare")
@pytest.mark.features("migrations", "database")
def test_migrations_make_what_the_models_declare(app, database_url):
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    db = app.extensions["migrate"].db
    with app.app_context(), db.engine.connect() as connection, warnings.catch_warnings():
        # Autogenerate cannot compare indexes on expressions (lower(username)) on
        # every database, and says so; they are checked by name below.
        warnings.simplefilter("ignore")
        differences = compare_metadata(MigrationContext.configure(connection), db.metadata)
    assert differences == []
    indexes = tables(database_url)[1]
    declared = {index.name for table in db.metadata.tables.values() for index in table.indexes}
    assert declared <= indexes, f"indexes the models declare but the database lacks: {declared - indexes}"


def step_before_migrations():
    """The last step with a database made by db.create_all(): the one this step's database comes from."""
    return [step for step in discover() if "database" in step.features and "migrations" not in step.features][-1]


@pytest.mark.contract(
    "A database made by the step before (create_all, no migrations) upgrades in place and keeps its users "
    "and their passwords"
)
@pytest.mark.features("migrations", "database", "login", "profile")
def test_a_database_from_the_step_before_upgrades_in_place(step, create_app, test_config, database_url):
    before = step_before_migrations()
    module = load_module(before.path, f"before_migrations_{before.name}")
    old = module.create_app(test_config)
    try:
        add_users(old, before)
    finally:
        close_database(old)
    names, _, versions = tables(database_url)
    assert names and "alembic_version" not in names  # made by create_all(), as a learner's would be

    app = create_app(test_config)
    try:
        names, _, versions = tables(database_url)
        assert len(versions) == 1
        for username, user in USERS.items():
            client = app.test_client()
            assert AuthActions(client).login(username).status_code in (302, 303), f"{username} cannot log in"
            assert str(user["id"]) in client.get("/profile").text
    finally:
        close_database(app)


@pytest.mark.contract("flask db downgrade base removes the schema, and flask db upgrade makes it again")
@pytest.mark.features("migrations", "database", "login")
def test_downgrade_and_upgrade_again(step, app, runner, database_url):
    close_database(app)  # no pooled connection holds on to the tables
    result = runner.invoke(args=["db", "downgrade", "base"])
    assert result.exit_code == 0, result.output
    names, _, versions = tables(database_url)
    assert not (model_tables(app) & names), f"left behind: {model_tables(app) & names}"
    assert versions == []
    result = runner.invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    names, _, versions = tables(database_url)
    assert model_tables(app) <= names
    assert len(versions) == 1
    add_users(app, step)
    assert logs_in(app, "bob")


@pytest.mark.contract(
    "The flask db commands leave the revision to you: after flask db downgrade base, flask db current shows none and "
    "the tables are gone until flask db upgrade; flask run still upgrades at start"
)
@pytest.mark.features("migrations", "database")
def test_flask_db_commands_do_not_upgrade_at_start(step, database_url, tmp_path):
    """Every `flask` command makes the app; an upgrade at start would undo `db downgrade` at the next one."""

    def flask(*args):
        command = flask_command(step, database_url, *args, tmp_path=tmp_path)
        output = command.communicate(timeout=120)[0]
        assert command.returncode == 0, output
        return output

    # Each command is a process of its own that makes the app: four in all.
    flask("db", "upgrade")
    [head] = tables(database_url)[2]
    flask("db", "downgrade", "base")
    assert head not in flask("db", "current")  # the command made the app, and left the revision alone
    names, _, versions = tables(database_url)
    assert versions == [] and names <= {"alembic_version"}, names

    port = free_port()
    server = flask_command(step, database_url, "run", "--port", str(port), tmp_path=tmp_path)
    try:
        wait_for_port(port, server, "flask run", timeout=60)
        assert tables(database_url)[2] == [head]
    finally:
        stop_process(server)
        server.communicate()  # and close its pipe


@pytest.mark.contract(
    "A database that cannot be reached stops the app at start with a message naming "
    "FLASK_SQLALCHEMY_DATABASE_URI, not a traceback"
)
@pytest.mark.features("migrations", "database")
@pytest.mark.parametrize("where", ["postgresql-down", "sqlite-folder-missing"])
def test_an_unreachable_database_stops_the_start_with_a_message(step, tmp_path, where):
    """Seen as `flask` shows it: a PostgreSQL port nothing listens on, or a SQLite file in no folder."""
    if where == "postgresql-down":
        url = f"postgresql+psycopg://nobody@127.0.0.1:{free_port()}/nowhere"
    else:
        url = f"sqlite:///{tmp_path / 'no-such-folder' / 'app.sqlite'}"
    command = flask_command(step, url, "routes", tmp_path=tmp_path)
    output = command.communicate(timeout=120)[0]
    assert command.returncode != 0, f"it started:\n{output}"
    assert "Traceback" not in output, output
    assert "FLASK_SQLALCHEMY_DATABASE_URI" in output, output


# Imports the app first (the slow, uneven part), then makes it at an agreed
# moment, so that the processes really do start together.
TOGETHER = """
import time
from harness.steps import app_factory, load_module
factory = app_factory(load_module({path!r}, "racer"))
time.sleep(max(0, {moment!r} - time.time()))
factory()
"""


@pytest.mark.contract("Several servers starting at once on a new database all start, and the schema is made once")
@pytest.mark.features("migrations", "database")
def test_servers_starting_together_upgrade_once(step, database_url, tmp_path):
    env = environment_without()
    env.update(FLASK_SQLALCHEMY_DATABASE_URI=database_url, FLASK_SECRET_KEY="only-for-tests")
    env["FLASK_BCRYPT_LOG_ROUNDS"] = "4"
    code = TOGETHER.format(shared=str(Path(__file__).parent), path=str(step.path), moment=time.time() + 2)
    commands = [
        launcher.Popen(
            [sys.executable, "-c", code],
            env=env,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = [command.communicate(timeout=120)[0] for command in commands]
    for command, output in zip(commands, outputs, strict=True):
        assert command.returncode == 0, output
        assert "Traceback" not in output
    names, _, versions = tables(database_url)
    assert len(versions) == 1


@pytest.mark.contract("Applying the migrations leaves the app's own loggers working")
@pytest.mark.features("migrations", "database")
def test_migrations_leave_the_loggers_alone(create_app, test_config, database_url):
    """Alembic's usual env.py calls logging.config.fileConfig(), which disables every logger made before it."""
    import logging

    before = logging.getLogger("flask_login_steps.before_the_migrations")
    app = create_app(test_config)  # a new database: the migrations run now, in this process
    try:
        assert tables(database_url)[2], "no migration ran"
        assert not before.disabled
        assert not app.logger.disabled
        assert not logging.getLogger("werkzeug").disabled
    finally:
        close_database(app)


def step_before(step):
    """The step just before this one: its database is the one this step's migrations upgrade."""
    steps = discover()
    names = [s.name for s in steps]
    name = (step.checked_as or step).name  # a learner's app: the step it is checked as
    return steps[names.index(name) - 1]


def upgraded_from_the_step_before(step, create_app, test_config, database_url, tmp_path):
    """alice and bob made by the step before in the test's database, then `flask db upgrade` by this step: its app."""
    before = step_before(step)
    module = load_module(before.path, f"before_{before.name}")
    old = module.create_app(test_config)  # its own migrations, at start
    try:
        add_users(old, before)
    finally:
        close_database(old)
    old_versions = tables(database_url)[2]

    command = flask_command(step, database_url, "db", "upgrade", tmp_path=tmp_path)
    output = command.communicate(timeout=120)[0]
    assert command.returncode == 0, output
    assert "Traceback" not in output
    assert tables(database_url)[2] != old_versions  # a migration of this step's own ran
    return create_app(test_config)


@pytest.mark.contract(
    "A database left by the step before upgrades in place with flask db upgrade: its accounts log in without "
    "confirming, and new sign-ups still wait for their link (step 09+)"
)
@pytest.mark.features("migrations", "database", "login", "profile", "registration", "email-confirmation")
def test_accounts_from_the_step_before_log_in_without_confirming(step, create_app, test_config, database_url, tmp_path):
    app = upgraded_from_the_step_before(step, create_app, test_config, database_url, tmp_path)
    try:
        for username, user in USERS.items():
            client = app.test_client()
            assert AuthActions(client).login(username).status_code in (302, 303), f"{username} cannot log in"
            assert str(user["id"]) in client.get("/profile").text
        # The accounts made from now on are not confirmed by the column's default.
        auth = AuthActions(app.test_client())
        fields = {"username": "carol", "email": "carol@example.com"}
        fields |= {"password": "a-long-passphrase", "confirm_password": "a-long-passphrase"}
        assert auth.post("/register", fields).status_code < 400
        assert AuthActions(app.test_client()).login("carol", "a-long-passphrase").status_code == 200
    finally:
        close_database(app)


@pytest.mark.contract(
    "A database left by the step before upgrades in place with flask db upgrade: every account has two-factor "
    "off and logs in with its password alone, and can turn it on (step 10+)"
)
@pytest.mark.features("migrations", "database", "login", "profile", "two-factor")
def test_accounts_from_the_step_before_log_in_without_a_code(step, create_app, test_config, database_url, tmp_path):
    app = upgraded_from_the_step_before(step, create_app, test_config, database_url, tmp_path)
    try:
        for username, user in USERS.items():
            auth = AuthActions(app.test_client())
            response = auth.login(username)
            assert response.status_code in (302, 303) and response.headers["Location"] == "/profile", username
            assert str(user["id"]) in auth.client.get("/profile").text
        # And the new columns work: bob turns it on, and then his password alone is not enough.
        turn_on(auth, USERS["bob"]["password"])
        assert AuthActions(app.test_client()).login("bob").headers["Location"] == "/login/two-factor"
    finally:
        close_database(app)


@pytest.mark.contract(
    "A database left by the step before upgrades in place with flask db upgrade: its accounts have no passkey, "
    "log in as before, and can add one and sign in with it (step 11+)"
)
@pytest.mark.features("migrations", "database", "login", "profile", "passkeys")
def test_accounts_from_the_step_before_add_a_passkey(step, create_app, test_config, database_url, tmp_path):
    app = upgraded_from_the_step_before(step, create_app, test_config, database_url, tmp_path)
    try:
        auth = AuthActions(app.test_client())
        assert auth.login("alice").headers["Location"] == "/profile"
        assert "You have no passkey yet." in text(auth.client.get("/passkeys").text)
        authenticator = SoftAuthenticator(app.config["WEBAUTHN_ORIGIN"])
        assert add_passkey(auth, authenticator, USERS["alice"]["password"]).status_code == 200
        client = app.test_client()
        assert sign_in(client, authenticator).get_json() == {"redirect": "/profile"}
        assert "alice" in text(client.get("/profile").text)
    finally:
        close_database(app)


@pytest.mark.contract(
    "A database left by the step before upgrades in place with flask db upgrade: its accounts log in as before, "
    "and can link an account at the provider (step 12+)"
)
@pytest.mark.features("migrations", "database", "login", "profile", "openid-connect")
def test_accounts_from_the_step_before_link_a_provider_account(
    step, create_app, test_config, database_url, tmp_path, provider
):
    app = upgraded_from_the_step_before(step, create_app, test_config | provider.config(), database_url, tmp_path)
    try:
        auth = AuthActions(app.test_client())
        assert auth.login("alice").headers["Location"] == "/profile"
        response, _ = oidc.sign_in(
            auth, "alice-elsewhere", path="/link/oidc", data={"current_password": USERS["alice"]["password"]}
        )
        assert response.headers["Location"] == "/link/oidc"
        again = AuthActions(app.test_client())
        assert oidc.sign_in(again, "alice-elsewhere")[0].headers["Location"] == "/profile"
    finally:
        close_database(app)


@pytest.mark.contract(
    "A database left by the step before upgrades in place with flask db upgrade: no account is disabled and "
    "nobody is an admin, until flask roles grant makes the first (step 13+)"
)
@pytest.mark.features("migrations", "database", "login", "profile", "roles", "admin-area")
def test_accounts_from_the_step_before_get_their_first_admin(step, create_app, test_config, database_url, tmp_path):
    app = upgraded_from_the_step_before(step, create_app, test_config, database_url, tmp_path)
    try:
        auth = AuthActions(app.test_client())
        assert auth.login("alice").headers["Location"] == "/profile"
        assert auth.client.get("/admin/users").status_code == 403
        grant(app)
        page = auth.client.get("/admin/users")
        assert page.status_code == 200 and all(user["email"] in page.text for user in USERS.values())
        assert AuthActions(app.test_client()).login("bob").headers["Location"] == "/profile"
    finally:
        close_database(app)


@pytest.mark.contract(
    "A database left by the step before upgrades in place with flask db upgrade: its accounts log in as before, "
    "and their activity and sessions pages start from that login (step 14)"
)
@pytest.mark.features("migrations", "database", "login", "profile", "account-activity", "device-sessions")
def test_accounts_from_the_step_before_start_their_activity(step, create_app, test_config, database_url, tmp_path):
    app = upgraded_from_the_step_before(step, create_app, test_config, database_url, tmp_path)
    try:
        auth = AuthActions(app.test_client())
        assert auth.login("alice").headers["Location"] == "/profile"
        assert "Signed in from" in text(auth.client.get("/account/activity").text)
        assert "(this browser)" in text(auth.client.get("/account/sessions").text)
    finally:
        close_database(app)
