"""What every figure of the bench shares: where it writes, the steps, their settings, a served step.

The servers, ports and accounts come from the harness (harness/), as the
tests use them; this module only says how the bench configures and serves
a step.
"""

import contextlib
import itertools
import os
import platform
import statistics
import time
from importlib import metadata
from pathlib import Path

from harness.accounts import USERS
from harness.apps import AuthActions
from harness.apps import CliRunner
from harness.apps import add_users
from harness.apps import close_database
from harness.served import serving
from harness.services import environment_without
from harness.steps import discover
from harness.steps import load_module

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = ROOT / "docs" / "benchmarks"

STEPS = discover()
PACKAGES = ["flask", "werkzeug", "jinja2", "flask-login", "flask-sqlalchemy", "sqlalchemy", "flask-bcrypt", "bcrypt"]
PACKAGES += ["flask-wtf", "pytest", "gunicorn", "matplotlib", "pyinstrument"]
PACKAGES += ["flask-security-too", "flask-session", "redis"]

# The bench measures what requests cost, not the limits on them: limits
# too high to reach, so that every failed login is checked (and counted).
NO_LIMITS = {
    f"FLASK_{name}": "1000000 per hour"
    for name in (
        "LOGIN_LIMIT_PER_USERNAME",
        "LOGIN_LIMIT_PER_ADDRESS",
        "REGISTER_LIMIT_PER_ADDRESS",
        "RESET_LIMIT_PER_ADDRESS",
        "RESET_LIMIT_PER_RECIPIENT",
        "CONFIRM_LIMIT_PER_ADDRESS",
        "CONFIRM_LIMIT_PER_RECIPIENT",
        "TWO_FACTOR_LIMIT",
    )
}

# Each server gets a database of its own, so that its users are made afresh.
_databases = itertools.count()


def first_with(feature):
    """The first step that teaches `feature`, or None."""
    return next((step for step in STEPS if feature in step.features), None)


def before(step):
    """The step before `step`."""
    return STEPS[STEPS.index(step) - 1]


def quartiles(values):
    """The quartiles of `values`, rounded; with a single value (a smoke run), that value three times."""
    if len(values) < 2:
        return [round(values[0], 3)] * 3
    return [round(q, 3) for q in statistics.quantiles(values, n=4)]


def machine():
    """What this ran on: the figures mean nothing without it."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": versions,
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        # How busy the machine was as the run began: 1, 5 and 15 minutes.
        "load_average": [round(load, 2) for load in os.getloadavg()],
    }


def env_for(tmp, step, redis_url=None, extra=None):
    """Configuration from the environment, so nothing lands in the step's instance folder."""
    env = environment_without()
    env["FLASK_SECRET_KEY"] = "bench-only-not-secret"
    env["FLASK_SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp}/{step.name}-{next(_databases)}.sqlite"
    env["BENCH_STEP"] = step.name
    env.update(NO_LIMITS)
    if redis_url:
        env["FLASK_REDIS_URL"] = redis_url
    env.update(extra or {})
    return env


@contextlib.contextmanager
def environment(env):
    """This process's environment replaced by `env` for a while: a step reads its settings from there."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


@contextlib.contextmanager
def in_process(tmp, step, name, redis_url=None, extra=None):
    """The step's app, made in this process as `flask run` makes it (its settings from the environment), with alice and bob.

    Yields (app, the step's package); closes its database after. `name`
    tells its module apart from the other figures' copies of the step.
    """
    env = env_for(tmp, step, redis_url, extra)
    with environment(env):
        package = load_module(step.path, f"bench_{name}_{step.name}_{next(_databases)}")
        app = package.create_app()
    app.logger.setLevel("ERROR")  # the step logs every login; the figure is the time, not the lines
    try:
        add_users(app, step)
        yield app, package
    finally:
        close_database(app)


def login_ms(app):
    """One password login by a new browser (its form's token fetched first, untimed), in ms."""
    auth = AuthActions(app.test_client())
    form = {"username": "alice", "password": USERS["alice"]["password"], "csrf_token": auth.token()}
    start = time.perf_counter()
    response = auth.client.post("/login", data=form)
    took = time.perf_counter() - start
    assert response.status_code == 302, response.status_code
    return 1e3 * took


def prepare(step, env, more=None):
    """alice and bob in the step's database, made before any server starts, as a deployment would.

    Made here by the step's own `create-user` command (harness.apps.add_users),
    so that gunicorn's workers only serve: two workers would both try.
    `more`: other users to make the same way, {username: password}, each
    with the address username@example.com.
    """
    with environment(env):
        app = load_module(step.path, f"prepare_{step.name}_{next(_databases)}").create_app()
        add_users(app, step)
        runner = CliRunner(app)
        for username, password in (more or {}).items():
            result = runner.invoke(
                args=["create-user", username, "--email", f"{username}@example.com"], input=f"{password}\n" * 2
            )
            if result.exit_code != 0:
                raise RuntimeError(f"create-user {username}: {result.output}")
        close_database(app)


def served_twins(tmp, step, redis_url=None, extra=None):
    """The step and its bare twin (bench/wsgi.py), one gunicorn sync worker on loopback; a context manager.

    The twin's app adds alice and bob itself, at its worker's start, into a
    database of its own.
    """
    env = env_for(tmp, step, redis_url, extra)
    log = Path(tmp) / f"gunicorn-{Path(env['FLASK_SQLALCHEMY_DATABASE_URI']).stem}.log"
    return serving(step, env, log, workers=1, path=HERE / "wsgi")
