"""The shared suite's fixtures: one test run per step, gated by features.

Every test that asks for `step` (or for `app`, `client`, `auth`, which need
it) runs once for each step under steps/, with the step folder as its id.
A test says which features it checks with `@pytest.mark.features(...)`; a
step that does not declare them all is skipped with the reason "this step
does not teach ... yet". Tests reach a step only through its create_app()
and HTTP, so the same tests can check a learner's own app.
"""

import contextlib
import itertools
import os
import shutil
import time
import uuid

import jinja2
import pytest

from harness.apps import AuthActions
from harness.apps import CliRunner
from harness.apps import add_users
from harness.apps import close_database
from harness.apps import server_like
from harness.apps import travel
from harness.checker import learner_app
from harness.services import throwaway_redis
from harness.smtp import smtp_server
from harness.steps import app_factory
from harness.steps import copy_app
from harness.steps import deselect_replaced
from harness.steps import discover
from harness.steps import load_module
from harness.steps import select
from harness.steps import step_params


def pytest_configure(config):
    config.addinivalue_line("markers", "features(*names): the step features this test checks")
    config.addinivalue_line(
        "markers", "replaced_by(*names): features of later steps whose contract replaces this test's"
    )
    steps = discover()
    if config.getoption("step"):
        try:
            steps = select(steps, config.getoption("step"))
        except LookupError as error:
            raise pytest.UsageError(str(error)) from None
    config.steps = steps
    config.addinivalue_line("markers", "contract(line): the line of the contract this test checks, for --app-path")
    config.addinivalue_line("markers", "asvs(*ids): the OWASP ASVS 5.0 requirements this test proves (docs/asvs.md)")
    if config.getoption("app_path"):
        # A learner's own app in place of the steps; --as-step says which contract.
        config.steps = learner_app(config, steps, _modules)


def pytest_generate_tests(metafunc):
    """Run every test that uses `step` once per step, skipping those it doesn't teach."""
    if "step" not in metafunc.fixturenames:
        return
    params = step_params(metafunc, metafunc.config.steps)
    metafunc.parametrize("step", params, indirect=True, scope="session")


def pytest_collection_modifyitems(config, items):
    deselect_replaced(config, items)


@pytest.fixture(scope="session")
def step(request):
    """The step under test (a harness.steps.Step)."""
    return request.param


_modules = {}

# This test process's own tag, in the names of what it keeps from one test to
# the next (a PostgreSQL database, Redis keys): two runs, or two pytest-xdist
# workers, sharing one server never meet.
PROCESS = f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}_{uuid.uuid4().hex[:8]}"


def reused(request, step):
    """Whether this test's `app` may be the one the test before it had, reset, rather than a new one.

    A new app costs more than most tests: Werkzeug compiles every URL rule
    of it, and its new database engine compiles every query again at first
    use. So a test that asks for `app` gets the app of the test before it,
    when that was the last app the step's create_app() made and it has the
    same settings, with its database put back to alice and bob alone and
    its counts emptied (the `app` fixture). The last made, because some of
    the step's extensions (Flask-Limiter's store, Flask-Bcrypt's cost) are
    objects of its module, set up by each init_app() for the app it was
    given. Other apps a test makes, with `create_app`, are new as before. A
    learner's app (--app-path) is never reused: what it keeps in memory
    between tests is its own. `--fresh-apps` makes a new one for every test.
    """
    return "app" in request.fixturenames and step.factory is None and not request.config.getoption("fresh_apps")


@pytest.fixture
def create_app(step):
    """The step's app factory, its package loaded once per test session."""
    if step.factory is not None:  # a learner's app that the check wraps (harness/checker.py)
        return server_like(step.factory)
    if step.name not in _modules:
        _modules[step.name] = load_module(step.path, step.name)
    make = server_like(app_factory(_modules[step.name]))

    def made(*args, **kwargs):
        app = make(*args, **kwargs)
        LATEST[step.name] = app
        return app

    return made


# The app each step's create_app() made last in this process, and the app
# the `app` fixture last gave a test, with that test's settings: {step name: ...}.
LATEST = {}
REUSABLE = {}


# Base configuration of every test app (test_config adds the test's own
# database and store keys): what the seeded databases are made with, too.
BASE_CONFIG = {
    "TESTING": True,
    "SECRET_KEY": "only-for-tests",
    # The cheapest bcrypt cost: the suite logs in hundreds of times.
    "BCRYPT_LOG_ROUNDS": 4,
}


@pytest.fixture(scope="session")
def postgres_seeds():
    """Per step, a PostgreSQL database holding alice and bob, made once by the step itself: {step name: URL}.

    Each test that uses `app` gets a copy (CREATE DATABASE ... TEMPLATE):
    about 30 ms, where migrating a new database and creating the users
    through the step's own command takes about 120 ms. They are dropped
    at the end of the run.
    """
    seeds = {}
    yield seeds
    if seeds:
        import sqlalchemy as sa

        admin = sa.create_engine(os.environ["FLASK_SQLALCHEMY_DATABASE_URI"], isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                for url in seeds.values():
                    connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{sa.make_url(url).database}" WITH (FORCE)'))
        finally:
            admin.dispose()


def postgres_seed(step, create_app, seeds, admin, server):
    """The name of this step's seeded database on the server, made on first use."""
    import sqlalchemy as sa

    if step.name not in seeds:
        name = f"seed_{uuid.uuid4().hex}"
        with admin.connect() as connection:
            connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        url = sa.make_url(server).set(database=name).render_as_string(hide_password=False)
        seeds[step.name] = url
        seed_app = create_app(BASE_CONFIG | {"SQLALCHEMY_DATABASE_URI": url})
        add_users(seed_app, step)
        # No connection may stay open: a database being used cannot be copied.
        close_database(seed_app)
    return sa.make_url(seeds[step.name]).database


@pytest.fixture
def database_url(request, step, tmp_path, tmp_path_factory, postgres_seeds):
    """A fresh database for one test (steps 01-02 ignore it): empty, or with alice and bob for a test that uses `app`.

    A SQLite file in tmp_path (the `app` fixture copies the seeded file
    there); or, when FLASK_SQLALCHEMY_DATABASE_URI names a database server
    (as in `nox -s tests-postgres`), a new database on that server, dropped
    after the test: for a test that uses `app`, a copy of the step's seeded
    one (postgres_seeds). The server's own database is left alone. A test
    whose app is reused (see `reused`) gets the same file, or database
    name, as the tests before it: the `app` fixture makes it fresh.
    """
    reuse = reused(request, step)
    server = os.environ.get("FLASK_SQLALCHEMY_DATABASE_URI", "")
    if not server or server.startswith("sqlite"):
        folder = tmp_path_factory.getbasetemp() / f"reused-{PROCESS}-{step.name}" if reuse else tmp_path
        folder.mkdir(exist_ok=True)
        yield f"sqlite:///{folder / 'test.sqlite'}"
        return
    import sqlalchemy as sa  # here, not on top: steps 01-02 have no SQLAlchemy

    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    name = f"reused_{PROCESS}_{step.name}" if reuse else f"test_{uuid.uuid4().hex}"
    url = sa.make_url(server).set(database=name).render_as_string(hide_password=False)
    try:
        seeded = "app" in request.fixturenames and "database" in step.features and step.factory is None
        if seeded:
            template = postgres_seed(step, request.getfixturevalue("create_app"), postgres_seeds, admin, server)
            SEEDED.add(url)
        # With fsync off (harness.services.PostgresServer) a copy takes tens of milliseconds.
        clause = f' TEMPLATE "{template}"' if seeded else ""
        with admin.connect() as connection:
            if reuse:  # the name of the tests before: left over if one of them stopped half-way
                connection.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            connection.execute(sa.text(f'CREATE DATABASE "{name}"{clause}'))
        yield url
        with admin.connect() as connection:
            # FORCE: a server process a test started may still hold a connection.
            connection.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))
    finally:
        SEEDED.discard(url)
        admin.dispose()


# The URLs of the test databases copied from a seeded one, which hold alice and bob already.
SEEDED = set()


@pytest.fixture
def redis_prefix(request, step):
    """With FLASK_REDIS_URL set (`nox -s tests-redis`): a key prefix of this test's own, its keys deleted after.

    Steps with server sessions keep them in that Redis (and from step 06
    their counts); the prefix gives each test an empty store without
    flushing a database someone may use. A reused app (see `reused`) keeps
    its prefix from test to test, emptied after each. None without
    FLASK_REDIS_URL.
    """
    url = os.environ.get("FLASK_REDIS_URL")
    if not url:
        yield None
        return
    import redis  # here, not on top: only steps with server sessions install it

    prefix = f"test-{PROCESS}-{step.name}:" if reused(request, step) else f"test-{uuid.uuid4().hex}:"
    yield prefix
    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


@pytest.fixture
def redis_url():
    """FLASK_REDIS_URL when set, else a throwaway redis-server for this test."""
    if os.environ.get("FLASK_REDIS_URL"):
        yield os.environ["FLASK_REDIS_URL"]
        return
    with throwaway_redis() as url:
        yield url


@pytest.fixture
def pass_time(step):
    """`pass_time(seconds)`: that much time goes by for the test's apps, at once where it can.

    A step's app in this process reads the time from Python's clock
    (time.time, datetime.now: its session store's expiry, its links' and
    CSRF tokens' ages, its counts in memory), so the clock jumps on
    (harness.apps.travel) and keeps ticking from there, until the test
    ends. Redis keeps a clock of its own, by which it expires sessions and
    counts itself, and a learner's app may keep time some other way: with
    FLASK_REDIS_URL set (`nox -s tests-redis`) and for a learner's app, the
    test really waits.
    """
    really = step.factory is not None or bool(os.environ.get("FLASK_REDIS_URL"))
    with contextlib.ExitStack() as stack:
        clock = None

        def pass_time(seconds):
            nonlocal clock
            if really:
                time.sleep(seconds)
                return
            if clock is None:
                clock = stack.enter_context(travel(0))
            clock.shift(seconds)

        yield pass_time


@pytest.fixture(scope="session")
def mail_server():
    """A real SMTP server for the whole run (each pytest-xdist worker starts its own): harness/smtp.py."""
    with smtp_server() as inbox:
        # Its senders are the step's apps in this process: nothing comes after the answer.
        inbox.senders_in_background = False
        yield inbox


@pytest.fixture
def inbox(request, step):
    """The run's SMTP server, its Inbox emptied for this test: it holds what the test's apps sent.

    One server, not one per test: its address is in the app's settings, and
    an app with the settings of the test before is reused (see `reused`).
    A step's app in this process hands each message over before its answer
    returns (harness.apps.ServerLikeClient); a server a test started is
    stopped before the next test begins: no message is late for its test.
    A learner's app may send from a thread of its own, after its answer,
    so it gets a server of the test's own.
    """
    if step.factory is not None:
        with smtp_server() as own:
            yield own
        return
    server = request.getfixturevalue("mail_server")
    server.clear()
    yield server


@pytest.fixture(scope="session")
def provider():
    """A real OpenID provider for the whole run (each pytest-xdist worker starts its own): harness/oidc.py.

    Its clients: this suite's app (`provider.ours`) and another site
    (`provider.theirs`), both sending users back to the test client's
    callback. Its accounts: alice (alice's address, verified), eve (an
    address it never verified), and anyone else by name.
    """
    from harness.oidc import test_provider

    with test_provider() as started:
        yield started


@pytest.fixture
def test_config(database_url, redis_prefix):
    """The configuration every test app gets: a known key, a fresh database (and store)."""
    config = BASE_CONFIG | {
        "SQLALCHEMY_DATABASE_URI": database_url,
        # Step 06+: rate-limit counts of this test's own, even in a Redis
        # that every test shares (FLASK_REDIS_URL): keys under its prefix,
        # deleted after the test. (Counts kept in memory start empty in a new
        # app; the `app` fixture empties a reused one's.)
        "RATELIMIT_STORAGE_OPTIONS": {"key_prefix": f"{redis_prefix or f'test-{PROCESS}:'}limits"},
    }
    if redis_prefix is not None:
        # Flask-Session's setting; apps without server sessions ignore it.
        config["SESSION_KEY_PREFIX"] = redis_prefix
    return config


class SharedBytecodeCache(jinja2.BytecodeCache):
    """Compiled templates, kept across the many apps a test run makes.

    Jinja checks each entry against its template's source, so one step's
    base.html is never served for another's: this only saves recompiling.
    """

    def __init__(self):
        self.store = {}

    def load_bytecode(self, bucket):
        if bucket.key in self.store:
            bucket.bytecode_from_string(self.store[bucket.key])

    def dump_bytecode(self, bucket):
        self.store[bucket.key] = bucket.bytecode_to_string()


TEMPLATES = SharedBytecodeCache()


@pytest.fixture(scope="session")
def seeded_databases(tmp_path_factory):
    """Per step, a SQLite file holding alice and bob, made once by the step itself."""
    return {}


def seed_sqlite(step, create_app, test_config, seeded, factory, path):
    """Copy to `path` the step's seeded database, making it on first use.

    Creating the users through the step's own create-user command for every
    test would cost more than the test itself.
    """
    if step.name not in seeded:
        seed = factory.mktemp(f"seed-{step.name}") / "seed.sqlite"
        seed_app = create_app(test_config | {"SQLALCHEMY_DATABASE_URI": f"sqlite:///{seed}"})
        add_users(seed_app, step)
        close_database(seed_app)
        seeded[step.name] = seed
    # A new file, journals of the one before gone: an app of an earlier test
    # that still holds the old file open never touches this one.
    for leftover in (f"{path}-journal", f"{path}-wal", f"{path}-shm"):
        if os.path.exists(leftover):
            os.remove(leftover)
    shutil.copyfile(seeded[step.name], f"{path}.new")
    os.replace(f"{path}.new", path)


def settings(test_config):
    """What an app is made from: its configuration, and the FLASK_* environment its create_app() reads."""
    environment = sorted((name, value) for name, value in os.environ.items() if name.startswith("FLASK_"))
    return repr(sorted(test_config.items())), repr(environment)


@pytest.fixture
def app(request, step, create_app, test_config, seeded_databases, tmp_path_factory):
    """The step's app, made by its create_app(), with alice and bob as users.

    New, or the app of the test before when it may be (see `reused`), reset:
    its database a new copy of the seeded one, its counts emptied.
    """
    url = test_config["SQLALCHEMY_DATABASE_URI"]
    in_sqlite = "database" in step.features and url.startswith("sqlite:///")
    if in_sqlite:
        seed_sqlite(step, create_app, test_config, seeded_databases, tmp_path_factory, url.removeprefix("sqlite:///"))
    made_from = settings(test_config)
    before, app = REUSABLE.get(step.name, (None, None))
    if reused(request, step) and before == made_from and app is LATEST.get(step.name):
        # The counts of the test before (from step 06); in Redis they went with its prefix.
        for limiter in app.extensions.get("limiter", ()):
            limiter.reset()
    else:
        app = create_app(test_config)
        app.jinja_env.bytecode_cache = TEMPLATES
        REUSABLE[step.name] = made_from, app
    if not in_sqlite and url not in SEEDED:  # a copy of a seeded PostgreSQL database has them
        add_users(app, step)
    yield app
    close_database(app)


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return CliRunner(app)


@pytest.fixture
def auth(client):
    return AuthActions(client)


_copies = itertools.count()


@pytest.fixture
def fresh_copy(step, tmp_path, monkeypatch):
    """Start a copy of the step with no configuration at all, as `flask run` would.

    `fresh_copy()` copies the step into a temporary folder (once), loads the
    copy under a new module name and calls its factory with no arguments:
    calling it twice is a restart of the server. `fresh_copy("other")`
    starts a second, separate copy, with an instance folder of its own.
    `fresh_copy("first", name="99_next")` copies it again beside the first,
    under another folder name, as the next step sits beside this one.
    """
    if "fresh-copy" in step.not_judged:  # a learner's app that cannot be copied and started again
        pytest.skip(step.not_judged["fresh-copy"])
    for name in list(os.environ):
        if name.startswith("FLASK_"):
            monkeypatch.delenv(name)

    def start(copy="first", name=None):
        folder = copy_app(step.path, tmp_path / copy, name)
        module = load_module(folder, f"copy{next(_copies)}_{step.name}")
        return server_like(app_factory(module))()

    return start
