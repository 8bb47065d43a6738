"""Every task of this repository, as a nox session.

`nox` runs the whole test matrix (the matrix session, two sessions at a
time); `nox -l` lists every session. Each step's tests run in a virtualenv
holding only what that step's step.toml declares, plus the test tools from
pyproject.toml.
"""

import argparse
import contextlib
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import nox

ROOT = Path(__file__).parent
# The harness is installed into every virtualenv that needs it; nox itself
# runs before any exists, so it finds the harness (stdlib-only for what this
# file uses) beside this file: its one sys.path entry.
sys.path.insert(0, str(ROOT))
from harness.oidc import test_provider  # noqa: E402
from harness.services import PostgresServer  # noqa: E402
from harness.services import redis_server  # noqa: E402
from harness.services import throwaway_redis as start_redis  # noqa: E402
from harness.steps import app_entry  # noqa: E402
from harness.steps import discover  # noqa: E402
from harness.steps import requirements_near  # noqa: E402
from harness.steps import select  # noqa: E402

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"
# A bare `nox` runs the whole test matrix, two sessions at a time (see matrix below).
nox.options.sessions = ["matrix"]

PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")

# The tests start many Python processes of their own (flask run, gunicorn,
# flask db, the checker's pytest). Some machines set PYTHONDONTWRITEBYTECODE,
# and uv installs no .pyc files, so each process would compile Flask and
# SQLAlchemy again, seconds of CPU every time: keep compiled modules in a
# folder of nox's own instead, written once per virtualenv.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
os.environ.setdefault("PYTHONPYCACHEPREFIX", str(ROOT / ".nox" / "pycache"))


def memory_tmpdir(folder=Path("/dev/shm"), room=2 * 2**30):
    """A temporary folder in memory (Linux's tmpfs), if the machine has one with room to spare.

    The tests' SQLite databases, throwaway servers and copies of steps live
    in temporary folders; SQLite waits for the disk at every commit, and the
    suite commits thousands of times. In memory the wait is gone. Elsewhere
    (macOS, a container with a small /dev/shm) the system's own stays.
    """
    if os.environ.get("TMPDIR") or not folder.is_dir() or shutil.disk_usage(folder).free < room:
        return None
    mine = folder / f"flask-login-steps-{os.getuid()}"
    # Others may pass through (PostgreSQL's own user, when we are root, must
    # reach its folder inside) but not list or write.
    mine.mkdir(mode=0o711, exist_ok=True)
    if mine.is_symlink() or mine.stat().st_uid != os.getuid():
        return None  # someone else's: not ours to use
    return str(mine)


if tmpdir := memory_tmpdir():
    os.environ["TMPDIR"] = tmpdir
STEPS = {step.name: step for step in discover()}
FINAL_STEP = list(STEPS)[-1]


# Two tests at a time (pytest-xdist): each test has a fresh database and
# store keys of its own, and an app made for it or reset for it
# (shared_tests/conftest.py, `reused`). `-- -n 0` runs one. Two, not
# more: the tests no longer wait on clocks (`pass_time`), so they compute,
# and each worker beyond the cores only adds its own start (its imports,
# its SMTP server and OpenID provider, its seeded databases). Step 14's
# suite alone took 64 and 68 s with two workers (113 and 120 s of CPU),
# 77 and 63 s with four (151 and 121 s of CPU).
PARALLEL = ["-n", "2"]


# The harness (harness/), editable: what drives the steps from outside.
HARNESS = ["-e", str(ROOT)]


def install_step(session, step, *groups):
    """Install what `step` declares; with dependency groups (tools to test it), those and the harness."""
    extra = [req for group in groups for req in nox.project.dependency_groups(PYPROJECT, group)]
    session.install(*STEPS[step].dependencies, *extra, *(HARNESS if groups else []))


@nox.session
@nox.parametrize("step", list(STEPS), ids=list(STEPS))
def tests(session, step):
    """Run the shared suite on one step, with only that step's dependencies."""
    install_step(session, step, "test")
    session.run("pytest", "--step", step, *PARALLEL, *session.posargs)


@nox.session(name="tests-lowest", default=False, venv_backend="uv")
@nox.parametrize("step", list(STEPS), ids=list(STEPS))
def tests_lowest(session, step):
    """Run the shared suite on one step with the oldest releases its step.toml allows.

    This proves the lower bounds: each package the step names comes at the
    lowest version its bound allows (uv's `--resolution lowest-direct`; what
    those need in turn, at its newest). `tests` installs the newest releases
    whenever it makes a virtualenv, as on a clean clone: uv resolves afresh.
    """
    session.install(*nox.project.dependency_groups(PYPROJECT, "test"), *HARNESS)
    session.install("--resolution", "lowest-direct", *STEPS[step].dependencies)
    session.run("pytest", "--step", step, *PARALLEL, *session.posargs)


def bringing(*features):
    """The steps that teach one of `features` first (each against the step before it), and the last step.

    A store's own run (tests-postgres, tests-redis) goes to the step whose
    lesson brings that store into play, where its code is new, and to the
    last step, which carries every lesson before it. The steps between
    leave the stores' code as they found it (sessions.py and the limiter's
    set-up; step 07's reset and 09's confirmation add counts and rows
    through the same calls), and their own `tests` session still runs
    every one of their tests in the configuration they start with.
    """
    chosen, before = [], set()
    for name, step in STEPS.items():
        if set(features) & (step.features - before):
            chosen.append(name)
        before = step.features
    return list(dict.fromkeys([*chosen, FINAL_STEP]))


# PostgreSQL holding everything: step 03 brings the database, step 04 the
# unique names and addresses it enforces under racing sign-ups. Steps with
# server-side sessions meet PostgreSQL in tests-redis, beside Redis, as
# `nox -s production` serves them; the last step is among them.
DATABASE_STEPS = [
    name for name in bringing("database", "registration") if "server-sessions" not in STEPS[name].features
]
# Redis: step 05 brings the sessions kept there, 06 the counts; and the
# last step. Step 08's production setting and its outages are tested in
# its plain run, where those tests start a PostgreSQL and a Redis of
# their own (test_scale_out.py), so they are not collected here.
SESSION_STEPS = bringing("server-sessions", "rate-limits")

# What the store sessions below leave to the plain `tests` session: tests of
# what a page says and sends (links, fields, headers, redirects to `next`,
# log lines), which read the same rows whatever keeps them, and tests that
# start a copy of the step with no configuration at all (test_config.py),
# which never see the store the session sets up. Everything that writes or
# reads a store (logins, sign-up, sessions, limits, resets, hostile cookies,
# migrations) runs on every store.
STORE_INDEPENDENT = [
    "--ignore=shared_tests/test_next.py",
    "--ignore=shared_tests/test_pages.py",
    "--ignore=shared_tests/test_auth_log.py",
    "--ignore=shared_tests/test_config.py",
    "-k",
    "not test_security_headers_on_every_response and not test_hsts_on_every_https_answer",
]


@nox.session(name="tests-postgres")
@nox.parametrize("step", DATABASE_STEPS, ids=DATABASE_STEPS)
def tests_postgres(session, step):
    """Run the shared suite on a step with a database, against a throwaway PostgreSQL.

    App servers that keep no state and share one database are how this app
    grows past one machine; this proves that the steps whose sessions live
    in signed cookies, keeping everything else in the database, work so.
    """
    install_step(session, step, "test", "postgres")
    with throwaway_postgres(session) as url:
        session.run(
            "pytest",
            "--step",
            step,
            *PARALLEL,
            *STORE_INDEPENDENT,
            *session.posargs,
            env={"FLASK_SQLALCHEMY_DATABASE_URI": url},
        )


@nox.session(name="tests-redis")
@nox.parametrize("step", SESSION_STEPS, ids=SESSION_STEPS)
def tests_redis(session, step):
    """Run the shared suite on a step with server-side sessions in a throwaway Redis, its database in PostgreSQL.

    FLASK_REDIS_URL moves the sessions (and from step 06 the counts) out of
    the step's database into Redis, which several server processes (and
    hosts) can share; each test keeps its keys under a prefix of its own.
    The database is a throwaway PostgreSQL, as the production step has it.
    """
    install_step(session, step, "test", "postgres")
    with throwaway_redis(session) as redis, throwaway_postgres(session) as database:
        session.run(
            "pytest",
            "--step",
            step,
            *PARALLEL,
            *STORE_INDEPENDENT,
            *session.posargs,
            env={"FLASK_REDIS_URL": redis, "FLASK_SQLALCHEMY_DATABASE_URI": database},
        )


@contextlib.contextmanager
def throwaway_redis(session):
    """A throwaway redis-server (harness/services.py); one sentence if there is none."""
    if redis_server() is None:
        session.error(
            "Redis is not installed: `apt-get install redis-server` (Debian, Ubuntu) "
            "or your system's package, then run this session again"
        )
    with start_redis() as url:
        yield url


@contextlib.contextmanager
def throwaway_postgres(session):
    """A throwaway PostgreSQL (harness/services.py); yield its URL, or one sentence if it cannot start."""
    try:
        server = PostgresServer()
    except RuntimeError as error:
        session.error(f"{error}; then run this session again")
    try:
        try:
            server.start()
        except RuntimeError as error:
            session.error(f"could not start PostgreSQL: {error}")
        yield server.url
    finally:
        # Also when Ctrl+C or SIGTERM came while the server was starting.
        server.close()


@nox.session
def lint(session):
    """Check style and formatting with ruff."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


def install_every_step(session, *groups):
    """Install what every step declares (each requirement once), the named groups and the harness."""
    steps = [req for step in STEPS.values() for req in step.dependencies]
    extra = [req for group in groups for req in nox.project.dependency_groups(PYPROJECT, group)]
    session.install(*dict.fromkeys(steps + extra), *HARNESS)


@nox.session
def e2e(session):
    """Drive the steps in a real, headless Chromium (the system's; nothing is downloaded).

    `nox -s e2e -- --step 04` picks steps; other options go to pytest, for
    example `-- --headed` where there is a screen.
    """
    install_every_step(session, "e2e")
    # One test at a time: on two cores, two workers took longer (64 s against
    # 56 s for steps 06 and 08), each with a Chromium of its own.
    # `-- -n 2 --dist loadgroup` runs two, a step to a worker.
    # Each test on the step that first teaches what it checks and on the
    # last step (`tests` checks every step over HTTP): `nox -s e2e -- --step
    # 05` runs all of step 05's.
    session.run("pytest", "e2e_tests", "--first-and-last", *session.posargs)


@nox.session(default=False)
def screenshots(session):
    """Write the docs' screenshots into docs/_static/screenshots/<step>/; commit them.

    `nox -s screenshots -- 04` redoes one step's.
    """
    install_every_step(session, "e2e")
    session.run("python", "e2e_tests/screenshots.py", *session.posargs)


# -j 4: pages are read four at a time (docs/_ext declares itself safe for
# it); most of a page's time is spent waiting on the servers and commands
# it runs, so on two cores this took 93 s where one at a time took 124 s.
DOCS_BUILD = ["-W", "-n", "-E", "-j", "4", "-b", "html", "docs", "docs/_build/html"]


@nox.session
def docs(session):
    """Build the docs into docs/_build/html, strictly: any warning fails the build.

    A missing include, a function renamed under a `:pyobject:`, a broken
    cross-reference, a diff that lost a line the text explains, or a page
    that would load a script, style or font from another host: each one
    is a warning, so each one stops the build.
    """
    install_every_step(session, "docs")
    session.run("sphinx-build", *DOCS_BUILD, *session.posargs)


@nox.session(name="docs-serve", default=False)
def docs_serve(session):
    """Serve the docs on http://127.0.0.1:8000, rebuilt whenever a page or a step changes."""
    install_every_step(session, "docs", "docs-serve")
    session.run(
        "sphinx-autobuild",
        *DOCS_BUILD,
        # The pages include code from these, so a change there rebuilds them too.
        "--watch",
        "steps",
        "--watch",
        "README.md",
        "--ignore",
        "*/instance/*",
        *session.posargs,
    )


@nox.session(default=False)
def serve(session):
    """Serve a step on http://localhost:5000 (127.0.0.1): the last one, or `nox -s serve -- 01`.

    Anything after the step goes to `flask run`: `nox -s serve -- 03 --port 5001`.
    """
    args = list(session.posargs)
    step = FINAL_STEP
    if args and not args[0].startswith("-"):
        try:
            [found] = select(STEPS.values(), [args.pop(0)])
        except (LookupError, ValueError) as error:
            session.error(str(error))
        step = found.name
    install_step(session, step)
    stop_children_on_sigterm()
    session.run("flask", "--app", f"steps/{step}", "run", *args)


PRODUCTION_STEPS = [name for name, step in STEPS.items() if "production-settings" in step.features]


@nox.session(default=False)
def production(session):
    """Serve the last step as in production on http://127.0.0.1:8000: gunicorn, PostgreSQL, Redis.

    A throwaway PostgreSQL and Redis (gone when the session ends), the
    migrations applied with `flask db upgrade`, then gunicorn with several
    workers. Ctrl+C (or one SIGTERM to nox) stops all of it. There is no
    TLS proxy here, so FLASK_PRODUCTION stays off: its Secure cookies need
    HTTPS. Anything after `--` goes to gunicorn: `nox -s production --
    --workers 8`; `-- --bind 127.0.0.1:8001` serves on another port.
    """
    if not PRODUCTION_STEPS:
        session.error("no step teaches production yet")
    step = PRODUCTION_STEPS[-1]
    # gunicorn would listen on its --bind and on ours: take it out of what goes to gunicorn.
    parser = argparse.ArgumentParser(prog="nox -s production --", add_help=False)
    parser.add_argument("--bind", default="127.0.0.1:8000")
    options, gunicorn_args = parser.parse_known_args(session.posargs)
    install_step(session, step)
    stopping = stop_children_on_sigterm()
    with throwaway_postgres(session) as database, throwaway_redis(session) as redis:
        env = {
            "FLASK_SECRET_KEY": secrets.token_hex(32),
            "FLASK_SQLALCHEMY_DATABASE_URI": database,
            "FLASK_REDIS_URL": redis,
        }
        session.run("flask", "--app", f"steps/{step}", "db", "upgrade", env=env)
        command = ["gunicorn", "--workers", "3", "--bind", options.bind, "--chdir", "steps"]
        version = session.run("python", "-c", "import gunicorn; print(gunicorn.__version__)", silent=True)
        if int(version.strip().split(".")[0]) >= 25:
            # Newer gunicorns open a control socket in ~/.gunicorn; nothing here uses it.
            command.append("--no-control-socket")
        if stopping.is_set():
            # nox lets a command that was stopped but ended well pass (exit code 0): stop here.
            session.error("stopped by SIGTERM")
        session.log(f"step {step} on http://{options.bind} (register a user there); Ctrl+C stops it")
        # On Ctrl+C or SIGTERM nox sends gunicorn SIGTERM after 0.3 s, and then
        # waits for it: gunicorn stops its workers (giving them 30 s, its
        # graceful timeout) and exits. nox's default would kill it after
        # 0.2 s more, and its workers would outlive it.
        session.run(*command, *gunicorn_args, f"{step}:create_app()", env=env, terminate_timeout=None)


@nox.session(name="oidc-provider", venv_backend="none", default=False)
def oidc_provider(session):
    """Run a real OpenID provider on a free loopback port for step 12 on: the tests' own. Ctrl+C stops it.

    panva's oidc-provider, installed from the npm registry into a cache
    folder on first use and run by Node.js (`apt-get install nodejs`), with
    its development pages: any login name, any password. It prints the
    FLASK_OIDC_... settings to export where `flask run` runs. It sends
    users back to http://localhost:5000/login/oidc/callback, or to the URL
    given: `nox -s oidc-provider -- http://localhost:5001/login/oidc/callback`.
    """
    callback = session.posargs[0] if session.posargs else "http://localhost:5000/login/oidc/callback"
    stop_children_on_sigterm()
    with test_provider((callback,)) as provider:
        session.log(f"an OpenID provider on {provider.issuer}; in the terminal that runs the step:")
        for name, value in provider.config().items():
            print(f"export FLASK_{name}={shlex.quote(value)}", flush=True)
        session.log("then open http://localhost:5000 and sign in with Example ID; Ctrl+C stops the provider")
        with contextlib.suppress(KeyboardInterrupt):
            provider.process.wait()


def stop_children_on_sigterm():
    """Make SIGTERM stop this session as Ctrl+C does: the servers it started stop too.

    nox stops a command it runs on KeyboardInterrupt; on a bare SIGTERM
    Python would exit at once and leave the command running. Only the first
    SIGTERM counts: another one must not cut the clean-up short. Returns an
    event that is set once a SIGTERM has come.
    """
    received = threading.Event()

    def interrupt(signum, frame):
        if not received.is_set():
            received.set()
            raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)
    return received


@nox.session(default=False)
def check(session):
    """Check your own app against a step's contract: `nox -s check -- 03 path/to/your/app`.

    Installs what that step declares, and the requirements.txt beside your
    app if there is one, then prints which contract lines your app keeps and
    which it breaks. Anything after the path goes to pytest: `--tb=short`
    shows each failure's traceback, `-k logout` checks fewer things.
    """
    args = list(session.posargs)
    if len(args) < 2 or args[0].startswith("-") or args[1].startswith("-"):
        session.error("say which step and which app: nox -s check -- 03 path/to/your/app")
    wanted, path, *rest = args
    try:
        [step] = select(STEPS.values(), [wanted])
    except (LookupError, ValueError) as error:
        session.error(str(error))
    # nox runs from the repository root; the path is relative to where you typed it.
    app = Path(session.invoked_from, path).resolve()
    try:
        app_entry(app)  # a wrong path gets its one sentence before anything is installed
    except LookupError as error:
        session.error(str(error))
    install_step(session, step.name, "test")
    for requirements in requirements_near(app):
        session.install("-r", str(requirements))
    # `--app-path=PATH` in one word: pytest would take a separate PATH outside
    # this repository for a test folder, and look for its settings there.
    session.run("pytest", f"--app-path={app}", "--as-step", step.name, *rest)


@nox.session(name="check-selftest")
def check_selftest(session):
    """Test `nox -s check` itself: copies of each step pass, copies with one break fail naming it.

    Also that one SIGTERM stops `nox -s production` and every server it
    started, run with this same nox.
    """
    install_every_step(session, "test")
    # Each case is a whole pytest process of its own: run two at a time.
    nox_command = shlex.join([sys.executable, "-m", "nox"])
    session.run("pytest", "check_tests", *PARALLEL, *session.posargs, env={"NOX_COMMAND": nox_command})


@nox.session(default=False)
def bench(session):
    """Benchmark the course; writes docs/benchmarks/ (results.json, table.md, chart.png).

    `nox -s bench -- --skip-nox` leaves out the slowest figure, a warm `nox`.
    """
    install_every_step(session, "bench")
    # The warm-nox figure runs this same nox, the one running us.
    session.run("python", "bench/run.py", "--nox", f"{sys.executable} -m nox", *session.posargs)


# The test matrix: what a bare `nox` runs, through the matrix session below.
# Heaviest first, so that the two lanes end together: about the seconds each
# took in a clean-clone run on two cores (a step's suite grows with the
# step). The numbers only order the queue.
MATRIX = sorted(
    [
        *((f"tests-redis({step})", 10 * int(step[:2])) for step in SESSION_STEPS),
        *((f"tests({step})", 8 * int(step[:2])) for step in STEPS),
        *((f"tests-postgres({step})", 25) for step in DATABASE_STEPS),
        ("check-selftest", 100),
        ("docs", 95),
        ("e2e", 90),
        ("lint", 1),
    ],
    key=lambda weighed: -weighed[1],
)


@nox.session(venv_backend="none")
def matrix(session):
    """Run the whole test matrix, two sessions at a time: what a bare `nox` does.

    Each session runs as its own `nox -s NAME`, so it makes and uses the
    same virtualenv as when run alone. Two lanes take the sessions from
    one queue, heaviest first. On two cores one session alone leaves much
    of the second idle (while it installs, starts its servers, waits on a
    clock, a mail or a browser). A session's output is printed whole when
    it ends, so the two never interleave; the times go in a table at the
    end. `nox -s matrix -- --lanes 1` runs one at a time.
    """
    parser = argparse.ArgumentParser(prog="nox -s matrix --")
    parser.add_argument("--lanes", type=int, default=2)
    options = parser.parse_args(session.posargs)
    queue = [name for name, _ in MATRIX]
    logs = ROOT / ".nox" / "matrix-logs"
    logs.mkdir(parents=True, exist_ok=True)
    lock = threading.Lock()
    results, running = {}, {}
    stopping = threading.Event()
    sigterm = stop_children_on_sigterm()
    # A shell starts a command with `&` with SIGINT ignored, and its children
    # inherit that: each session's nox would then shrug off the SIGINT that
    # stops it below. Catching SIGINT here (as Python does by default) gives
    # them the default back when they start.
    signal.signal(signal.SIGINT, signal.default_int_handler)

    def lane():
        while True:
            with lock:
                if not queue or stopping.is_set():
                    return
                name = queue.pop(0)
            log = logs / f"{name}.log"
            start = time.monotonic()
            with log.open("w") as out:
                process = subprocess.Popen(
                    [sys.executable, "-m", "nox", "-s", name], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
                )
                running[name] = process
                if stopping.is_set():  # started just as the stop came: stop it too
                    process.send_signal(signal.SIGINT)
                code = process.wait()
                running.pop(name)
            seconds = time.monotonic() - start
            with lock:
                results[name] = (code, seconds)
                print(log.read_text(), end="", flush=True)
                verdict = "passed" if code == 0 else f"FAILED (exit code {code})"
                session.log(f"[{len(results)}/{len(MATRIX)}] {name} {verdict} in {seconds:.0f} s")

    lanes = [threading.Thread(target=lane) for _ in range(max(1, options.lanes))]

    def wait_for_lanes():
        # Polled, not Thread.join(): a Ctrl+C that landed inside join() once
        # left a lane's last session unreported here.
        while any(thread.is_alive() for thread in lanes):
            time.sleep(0.2)

    for thread in lanes:
        thread.start()
    try:
        wait_for_lanes()
    except KeyboardInterrupt:
        # Ctrl+C at a terminal reaches the running sessions' nox too, and each
        # stops the commands it runs. A SIGTERM reaches only us: pass it on as
        # that same SIGINT, to our own children only, by their id.
        stopping.set()
        if sigterm.is_set():
            for process in list(running.values()):
                process.send_signal(signal.SIGINT)
        wait_for_lanes()
        session.error("stopped")
    width = max(len(name) for name in results)
    for name, _ in MATRIX:
        if name in results:
            code, seconds = results[name]
            session.log(f"{name:<{width}}  {seconds:5.0f} s  {'passed' if code == 0 else 'FAILED'}")
    failed = [name for name, (code, _) in results.items() if code != 0]
    if failed:
        session.error(f"failed: {', '.join(failed)} (each one's whole output is in .nox/matrix-logs/)")
