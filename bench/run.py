"""Measure what the course costs; print a table, write results.json, table.md and chart.png.

Run it through `nox -s bench` (one virtualenv with every step's dependencies).
`--skip-nox` leaves out the slowest figure, the warm `nox` run.
"""

import argparse
import json
import os
import platform
import re
import socket
import statistics
import subprocess
import sys
import sysconfig
import tarfile
import tempfile
import time
import xml.etree.ElementTree as ET
from importlib import metadata
from pathlib import Path

import workers
from client import Client

from harness.services import throwaway_redis
from harness.steps import discover

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = ROOT / "docs" / "benchmarks"


STEPS = discover()
TARGETS = {"case_ms": 10.0, "auth_ratio": 0.85, "login_ratio": (0.9, 1.1)}
# Server-side sessions against the signed cookie of the step before: at most
# this many times its cost per logged-in request, per store.
STORE_TARGETS = {"database": 2.0, "redis": 1.5}
PACKAGES = ["flask", "werkzeug", "jinja2", "flask-login", "flask-sqlalchemy", "sqlalchemy", "flask-bcrypt", "bcrypt"]
PACKAGES += ["flask-wtf", "pytest", "gunicorn", "matplotlib", "pyinstrument"]


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
    }


def env_for(tmp, step, redis_url=None, extra=None):
    """Configuration from the environment, so nothing lands in the step's instance folder."""
    env = dict(os.environ)
    env["FLASK_SECRET_KEY"] = "bench-only-not-secret"
    env["FLASK_SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp}/{step.name}{'-redis' if redis_url else ''}.sqlite"
    env["BENCH_STEP"] = step.name
    env.pop("FLASK_REDIS_URL", None)
    # The bench measures what requests cost, not the limits on them: limits
    # too high to reach, so that every failed login is checked (and counted).
    env.update(NO_LIMITS)
    if redis_url:
        env["FLASK_REDIS_URL"] = redis_url
    env.update(extra or {})
    return env


# 1. The test matrix, in one process, and the Flask tutorial's own suite beside it.
def test_matrix(tmp):
    return pytest_suite(ROOT, Path(tmp) / "junit-steps.xml")


def pytest_suite(folder, junit):
    """Run the pytest suite in `folder` in a new process; cases that ran, wall time and pytest's own time."""
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}"],
        cwd=folder,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - start
    suites = ET.parse(junit).getroot()
    suites = [suites] if suites.tag == "testsuite" else list(suites)
    total = sum(int(s.get("tests")) for s in suites)
    skipped = sum(int(s.get("skipped")) for s in suites)
    ran = total - skipped
    # pytest's own clock (collection and cases, without interpreter start) as a second figure.
    inside = sum(float(s.get("time")) for s in suites)
    return {
        "cases": ran,
        "skipped": skipped,
        "wall_s": round(wall, 2),
        "pytest_s": round(inside, 2),
        "case_ms": round(wall * 1000 / ran, 2),
        "pytest_case_ms": round(inside * 1000 / ran, 2),
    }


def flask_tutorial_suite(tmp):
    """The baseline: the tests of Flask's own tutorial app (flaskr), run here and now.

    They ship in the Flask source distribution, so they come from the
    package index like everything else, in the version installed here. None
    of their code is kept: it is unpacked into the temporary folder and run.
    """
    version = metadata.version("flask")
    download = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--no-binary", ":all:"]
    subprocess.run([*download, f"flask=={version}", "--dest", tmp], check=True)
    [sdist] = Path(tmp).glob(f"flask-{version}.tar.gz")
    with tarfile.open(sdist) as archive:
        archive.extractall(tmp, filter="data")
    tutorial = Path(tmp) / f"flask-{version}" / "examples" / "tutorial"
    # `python -m pytest` puts the folder on sys.path, so `import flaskr` finds it uninstalled.
    return {"flask": version, **pytest_suite(tutorial, Path(tmp) / "junit-flaskr.xml")}


# 2 and 3. A step behind gunicorn.
class Server:
    """gunicorn, one sync worker on loopback, serving bench/wsgi.py for one step."""

    def __init__(self, tmp, step, redis_url=None, extra=None):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            self.port = sock.getsockname()[1]
        cmd = [sys.executable, "-m", "gunicorn", "--workers", "1", "--worker-class", "sync"]
        cmd += ["--bind", f"127.0.0.1:{self.port}", "--chdir", str(HERE), "--log-level", "warning", "wsgi:application"]
        self.process = subprocess.Popen(cmd, env=env_for(tmp, step, redis_url, extra))
        deadline = time.monotonic() + 60
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"gunicorn did not start for {step.name}") from None
                time.sleep(0.1)

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=30)


BARE = "/bare/profile"  # bench/wsgi.py sends this to the bare twin
CSRF_VALUE = re.compile(rb'(name="csrf_token"[^>]*value=")[^"]+"')


def check_twins(profile, bare, bare_cookies):
    """Stop unless the bare twin serves the page /profile serves, and sends no cookie.

    Both are (status, body). The CSRF token is the one part allowed to differ:
    each page signs its own.
    """
    masked = [CSRF_VALUE.sub(rb'\1-"', body) for _, body in (profile, bare)]
    if profile[0] != 200 or bare[0] != 200 or masked[0] != masked[1]:
        raise RuntimeError(f"{BARE} does not serve the page /profile serves: the comparison would be meaningless")
    if bare_cookies:
        raise RuntimeError(f"{BARE} set a cookie ({', '.join(bare_cookies)}): it must not touch the session")


def auth_cost(port, rounds, count):
    """Logged-in /profile against the bare twin, in many short back-to-back pairs of rounds.

    This machine's speed drifts (it is a small virtual machine on a shared
    host), so each pair's own ratio is taken, while both rounds saw the same
    conditions, and the median of those ratios is the figure. Which route
    goes first alternates from pair to pair.
    """
    client = Client(port)
    client.login("alice", "wonderland")
    bare = Client(port)
    check_twins(client.request("GET", "/profile"), bare.request("GET", BARE), bare.cookies)
    client.rate("/profile", 50)  # warm up both
    bare.rate(BARE, 50)
    profile_rps, bare_rps, ratios = [], [], []
    for i in range(rounds):
        if i % 2:
            b = bare.rate(BARE, count)
            p = client.rate("/profile", count)
        else:
            p = client.rate("/profile", count)
            b = bare.rate(BARE, count)
        profile_rps.append(p)
        bare_rps.append(b)
        ratios.append(p / b)
    return {
        "profile_rps": round(statistics.median(profile_rps), 1),
        "bare_rps": round(statistics.median(bare_rps), 1),
        "ratio": round(statistics.median(ratios), 3),
        # The spread of the pairs' ratios: how far one short measurement can stray.
        "ratio_quartiles": [round(q, 3) for q in statistics.quantiles(ratios, n=4)],
    }


def store_cost(servers, rounds, count):
    """ms per logged-in GET /profile on each server, against the first, in interleaved rounds.

    `servers` maps a label to a port; the first is the baseline (step 04's
    signed cookie). Each round asks every server in turn, the order rotating
    from round to round, and each round's own ratios are kept, so drift of
    the machine's speed falls on both sides of every ratio alike.
    """
    clients = {}
    for label, port in servers.items():
        clients[label] = Client(port)
        clients[label].login("alice", "wonderland")
        clients[label].rate("/profile", 50)  # warm up
    labels = list(servers)
    base = labels[0]
    ms = {label: [] for label in labels}
    ratios = {label: [] for label in labels[1:]}
    for i in range(rounds):
        shift = i % len(labels)
        for label in labels[shift:] + labels[:shift]:
            ms[label].append(1000 / clients[label].rate("/profile", count))
        for label in labels[1:]:
            ratios[label].append(ms[label][-1] / ms[base][-1])
    return {
        "ms": {label: round(statistics.median(values), 3) for label, values in ms.items()},
        "ratio": {label: round(statistics.median(values), 3) for label, values in ratios.items()},
        "ratio_quartiles": {
            label: [round(q, 3) for q in statistics.quantiles(values, n=4)] for label, values in ratios.items()
        },
    }


def stores_cost(tmp, before, step, rounds, count):
    """`step` with its database store and with Redis, against `before`, all served at once."""
    with throwaway_redis() as redis_url:
        servers = {
            f"{before.name}": Server(tmp, before),
            f"{step.name}, database": Server(tmp, step),
            f"{step.name}, redis": Server(tmp, step, redis_url),
        }
        try:
            return store_cost({label: server.port for label, server in servers.items()}, rounds, count)
        finally:
            for server in servers.values():
                server.stop()


NO_LIMITS = {
    f"FLASK_{name}": "1000000 per hour"
    for name in ("LOGIN_LIMIT_PER_USERNAME", "LOGIN_LIMIT_PER_ADDRESS", "REGISTER_LIMIT_PER_ADDRESS")
} | {f"FLASK_{name}": "1000000 per hour" for name in ("RESET_LIMIT_PER_ADDRESS", "RESET_LIMIT_PER_RECIPIENT")}


# The limiter's cost is a fraction of a millisecond: measured beside bcrypt
# at 12 rounds it would drown in that check's own spread. So these servers
# hash at the cheapest cost (and, like every server here, have limits too
# high to lock anyone out, so that every failure is checked and counted).
LIMITER_ENV = {"FLASK_BCRYPT_LOG_ROUNDS": "4"}


def limiter_cost(tmp, before, step, rounds, count):
    """ms per failed POST /login on `step` (counts in memory, in Redis) against `before` (no limits)."""
    with throwaway_redis() as redis_url:
        # Databases of their own: alice is hashed at the cheap cost there.
        def env(name):
            return LIMITER_ENV | {"FLASK_SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/limiter-{name}.sqlite"}

        servers = {
            f"{before.name}": Server(tmp, before, extra=env("before")),
            f"{step.name}, memory": Server(tmp, step, extra=env("memory")),
            f"{step.name}, redis": Server(tmp, step, redis_url, extra=env("redis")),
        }
        try:
            clients = {label: Client(server.port) for label, server in servers.items()}
            labels = list(clients)
            ms = {label: [] for label in labels}
            for i in range(rounds):
                shift = i % len(labels)
                for label in labels[shift:] + labels[:shift]:
                    client = clients[label]
                    forms = [client.login_form("alice", "not-her-password") for _ in range(count)]
                    ms[label].append(1000 * statistics.median(client.timed_post("/login", form) for form in forms))
        finally:
            for server in servers.values():
                server.stop()
    base = labels[0]
    return {
        "ms": {label: round(statistics.median(values), 3) for label, values in ms.items()},
        # Each round's own difference: what the limiter adds to one failed login.
        "added_ms": {
            label: round(statistics.median(a - b for a, b in zip(ms[label], ms[base], strict=True)), 3)
            for label in labels[1:]
        },
    }


RESET_ANSWER = b"If an account uses that address, a reset link is on its way."


def reset_cost(tmp, step, repeats):
    """Median POST /reset-password for an address with an account and one without, interleaved.

    The mail goes to a real SMTP server (aiosmtpd, in this process), as in
    production, so that a step that sent it before answering would show it.
    """
    from harness.smtp import smtp_server

    with smtp_server() as inbox:
        mail = {f"FLASK_{name}": str(value) for name, value in inbox.config().items()}
        server = Server(tmp, step, extra=mail)
        try:
            client = Client(server.port)
            known, unknown = [], []
            for i in range(repeats):
                pairs = [(known, "alice@example.com"), (unknown, "nobody@example.com")]
                for times, address in pairs if i % 2 else pairs[::-1]:
                    form = client.form("/reset-password", email=address)
                    times.append(client.timed_post("/reset-password", form, expect=RESET_ANSWER))
        finally:
            server.stop()
        sent = len(inbox.wait_for(repeats, timeout=30))
    k, u = statistics.median(known), statistics.median(unknown)
    return {"known_ms": round(k * 1000, 2), "unknown_ms": round(u * 1000, 2), "ratio": round(u / k, 3), "sent": sent}


def login_cost(port, repeats):
    """Median POST /login for a wrong password and for an unknown user, interleaved."""
    client = Client(port)
    known, unknown = [], []
    for _ in range(repeats):
        form = client.login_form("alice", "not-her-password")
        known.append(client.timed_post("/login", form))
        form = client.login_form("nobody-by-this-name", "not-her-password")
        unknown.append(client.timed_post("/login", form))
    k, u = statistics.median(known), statistics.median(unknown)
    return {"known_wrong_ms": round(k * 1000, 1), "unknown_ms": round(u * 1000, 1), "ratio": round(u / k, 3)}


def profile_step(tmp, step, requests=1000):
    """Where a logged-in /profile spends its time, against the bare twin: pyinstrument, in process.

    Writes both profiles as text and returns each one's ms per request by phase.
    """
    from pyinstrument import Profiler

    os.environ.update(env_for(tmp, step))
    del os.environ["BENCH_STEP"]  # build the apps below, not at import
    import wsgi

    app, bare = wsgi.build(step.name)
    client = app.test_client()
    form = {"username": "alice", "password": "wonderland"}
    body = client.get("/login").get_data(as_text=True)
    if 'name="csrf_token"' in body:
        form["csrf_token"] = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', body).group(1)
    client.post("/login", data=form)
    bare_client = bare.test_client()
    twin = bare_client.get("/profile")
    sent = [header.split("=", 1)[0] for header in twin.headers.getlist("Set-Cookie")]
    check_twins(as_pair(client.get("/profile")), as_pair(twin), sent)
    where = {}
    for name, who in (("logged_in", client), ("bare", bare_client)):
        for _ in range(100):
            who.get("/profile")  # warm up
        with Profiler(interval=0.0002) as profiler:
            for _ in range(requests):
                who.get("/profile")
        where[name] = phases(profiler.last_session.root_frame(), requests)
        suffix = "" if name == "logged_in" else "_bare"
        (OUT / f"profile_{step.name}{suffix}.txt").write_text(profile_text(profiler))
    return where


# The parts of a request, each found by the outermost call of these functions.
PHASES = {
    "open_session": "open session",  # Flask reads and checks the session cookie
    "load_logged_in_user": "load user",  # steps 01-02, a before_request function
    "_load_user": "load user",  # Flask-Login, on first use of current_user
    "render_template": "render page",
    "save_session": "save session",
    "do_teardown_appcontext": "teardown",  # Flask-SQLAlchemy ends its session here
}
PHASE_NAMES = [*dict.fromkeys(PHASES.values()), "other"]


def phases(root, requests):
    """ms per request spent in each phase of PHASES, and in everything else ("other")."""
    spent = dict.fromkeys(PHASE_NAMES, 0.0)

    def walk(frame):
        phase = PHASES.get(frame.function)
        if phase:
            spent[phase] += frame.time
            return
        for child in frame.children:
            walk(child)

    walk(root)
    spent["other"] = root.time - sum(spent.values())
    spent["total"] = root.time
    return {name: round(seconds * 1000 / requests, 3) for name, seconds in spent.items()}


def as_pair(response):
    """A test client's response as (status, body), as Client.request gives it."""
    return response.status_code, response.get_data()


def profile_text(profiler):
    """The profile as text, with paths relative to the repository (not this machine's)."""
    text = profiler.output_text(show_all=False, color=False, unicode=True)
    return text.replace(f"{ROOT}/", "")


# 3b. bcrypt itself.
def bcrypt_cost(repeats):
    import bcrypt

    out = {}
    for rounds in range(10, 15):
        hashed = bcrypt.hashpw(b"correct horse", bcrypt.gensalt(rounds))
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            bcrypt.checkpw(b"wrong horse", hashed)
            times.append(time.perf_counter() - start)
        out[str(rounds)] = round(statistics.median(times) * 1000, 1)
    return out


# 4. Cold start.
COLD = """
import time
start = time.perf_counter()
from harness.steps import discover, load_module, select
[step] = select(discover(), [{name!r}])
load_module(step.path, "cold_" + step.name).create_app()
print(time.perf_counter() - start)
"""


def cold_start(tmp, step, repeats):
    code = COLD.format(name=step.name)
    times = []
    # One untimed start first: it writes the step's own bytecode.
    for _ in range(repeats + 1):
        result = subprocess.run(
            [sys.executable, "-c", code], env=env_for(tmp, step), check=True, capture_output=True, text=True
        )
        times.append(float(result.stdout.strip().splitlines()[-1]))
    times = times[1:]
    return round(statistics.median(times) * 1000, 1), [round(t * 1000, 1) for t in times]


# 5. A warm nox.
def nox_warm(nox_cmd):
    cmd = nox_cmd.split()
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)  # warm: venvs made and filled
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
    return round(time.perf_counter() - start, 1)


def where_table(where):
    """ms per request by phase, logged-in against bare, for the steps that were profiled."""
    header = ["request", *PHASE_NAMES, "total"]
    rows = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    for step, pair in where.items():
        for name, label in (("logged_in", "logged-in"), ("bare", "bare")):
            cells = [f"{step}, {label}", *(f"{pair[name][phase]:.3f}" for phase in [*PHASE_NAMES, "total"])]
            rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows)


def verdict(value, target):
    if isinstance(target, tuple):
        low, high = target
        if low <= value <= high:
            return "met"
        return f"misses by {low - value:.3f}" if value < low else f"misses by {value - high:.3f}"
    return "met" if value >= target else f"misses by {target - value:.3f}"


def table(results):
    """The results as a Markdown table (included by docs/benchmarks.md)."""
    rows = ["| figure | value | target | verdict |", "| --- | --- | --- | --- |"]
    m = results["raw"]["test_matrix"]
    case = results["case_ms"]
    case_verdict = "met" if case < TARGETS["case_ms"] else f"misses by {case - TARGETS['case_ms']:.2f} ms"
    rows.append(
        f"| test matrix: {m['cases']} cases in {m['wall_s']} s ({m['pytest_s']} s by pytest's clock) | {case} ms/case | < 10 ms | {case_verdict} |"
    )
    f = results["raw"]["flask_tutorial"]
    rows.append(
        f"| per case by pytest's clock: this suite {m['pytest_case_ms']} ms, Flask {f['flask']}'s tutorial suite "
        f"{f['pytest_case_ms']} ms ({f['cases']} cases in {f['pytest_s']} s) | {results['case_ms_vs_flask_tutorial']} "
        "(this / tutorial) | — | — |"
    )
    for step, ratio in results["auth_ratio"].items():
        raw = results["raw"]["auth"][step]
        rows.append(
            f"| {step}: logged-in /profile vs bare ({raw['profile_rps']} / {raw['bare_rps']} req/s; "
            f"middle half of the pairs {raw['ratio_quartiles'][0]}–{raw['ratio_quartiles'][2]}) "
            f"| {ratio} | ≥ 0.85 | {verdict(ratio, TARGETS['auth_ratio'])} |"
        )
    for step, ratio in results["login_unknown_known_ratio"].items():
        raw = results["raw"]["login"][step]
        rows.append(
            f"| {step}: login unknown user / wrong password ({raw['unknown_ms']} / {raw['known_wrong_ms']} ms) "
            f"| {ratio} | 0.9–1.1 | {verdict(ratio, TARGETS['login_ratio'])} |"
        )
    stores = results["raw"].get("stores")
    for label, ratio in results.get("store_ratio", {}).items():
        base, this = list(stores["ms"])[0], stores["ms"][label]
        low, _, high = stores["ratio_quartiles"][label]
        target = STORE_TARGETS[label.rsplit(", ", 1)[1]]
        met = "met" if ratio <= target else f"misses by {ratio - target:.2f}"
        rows.append(
            f"| {label}: logged-in /profile vs {base} ({this} / {stores['ms'][base]} ms; "
            f"middle half of the rounds {low}–{high}) | {ratio}× | ≤ {target}× | {met} |"
        )
    reset = results["raw"].get("reset")
    if reset:
        ratio = results["reset_unknown_known_ratio"]
        rows.append(
            f"| reset request, unknown / known address ({reset['unknown_ms']} / {reset['known_ms']} ms, "
            f"{reset['sent']} emails sent) | {ratio} | 0.9–1.1 | {verdict(ratio, TARGETS['login_ratio'])} |"
        )
    limiter = results["raw"].get("limiter")
    for label, added in results.get("limiter_added_ms", {}).items():
        base = list(limiter["ms"])[0]
        rows.append(
            f"| {label}: a failed login, checked and counted, against {base} ({limiter['ms'][label]} / "
            f"{limiter['ms'][base]} ms, bcrypt at 4 rounds) | +{added} ms | — | — |"
        )
    for rounds, ms in results["bcrypt_ms"].items():
        rows.append(f"| bcrypt check at {rounds} rounds | {ms} ms | — | — |")
    for step, ms in results["cold_start_ms"].items():
        rows.append(f"| {step}: import + create_app | {ms} ms | — | — |")
    nox = results["nox_warm_s"]
    rows.append(f"| warm `nox` | {'not measured' if nox is None else f'{nox} s'} | — | — |")
    if results["raw"]["where"]:
        rows += ["", where_table(results["raw"]["where"])]
    return "\n".join(rows) + "\n"


def chart(results):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 4, figsize=(17, 4))
    suites = {"this suite": results["case_ms_pytest"], "Flask tutorial": results["flask_tutorial_case_ms_pytest"]}
    axes[3].bar(list(suites), list(suites.values()), color=["tab:blue", "tab:gray"])
    axes[3].axhline(10, color="tab:red", linestyle="--", label="target 10 ms")
    axes[3].set_title("test suite: ms per case (pytest's clock)")
    axes[3].legend()
    steps = list(results["auth_ratio"])
    axes[0].bar(steps, list(results["auth_ratio"].values()), color="tab:blue")
    axes[0].axhline(0.85, color="tab:red", linestyle="--", label="target 0.85")
    axes[0].set_title("logged-in / bare requests per second")
    axes[0].legend()
    cold = results["cold_start_ms"]
    axes[1].bar(list(cold), list(cold.values()), color="tab:green")
    axes[1].set_title("cold start: import + create_app (ms)")
    bc = results["bcrypt_ms"]
    axes[2].plot([int(r) for r in bc], list(bc.values()), marker="o")
    axes[2].set_yscale("log")
    axes[2].set_title("bcrypt check (ms) per rounds")
    axes[2].set_xlabel("log rounds")
    for ax in axes[:2]:
        ax.tick_params(axis="x", rotation=20)
    fig.tight_layout()
    fig.savefig(OUT / "chart.png", dpi=100)


def with_bytecode():
    """Let every Python the bench starts read and write compiled bytecode, as a deployed app does.

    Some machines set PYTHONDONTWRITEBYTECODE, and a virtualenv filled by uv
    holds no .pyc files: every import would then compile its source again,
    and a cold start would measure the compiler (about 0.8 s for SQLAlchemy
    and friends), not the app.
    """
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sys.dont_write_bytecode = False
    purelib = sysconfig.get_paths()["purelib"]
    subprocess.run([sys.executable, "-m", "compileall", "-q", purelib], check=False, stdout=subprocess.DEVNULL)


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skip-nox", action="store_true", help="leave out the warm nox wall time")
    parser.add_argument("--nox", default=f"{sys.executable} -m nox", help="how to run nox")
    parser.add_argument("--rounds", type=int, default=30, help="pairs of rounds, logged-in and bare")
    parser.add_argument("--requests", type=int, default=100, help="requests per route per round")
    parser.add_argument("--logins", type=int, default=9, help="login attempts of each kind")
    parser.add_argument(
        "--skip-workers", action="store_true", help="leave out gunicorn workers on PostgreSQL and Redis"
    )
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    with_bytecode()
    for old in OUT.glob("profile_*.txt"):
        old.unlink()  # a step that now meets its target must not keep an old profile
    raw = {"auth": {}, "where": {}, "login": {}, "cold_start": {}}
    results = {"machine": machine()}
    with tempfile.TemporaryDirectory() as tmp:
        print("test matrix...", flush=True)
        raw["test_matrix"] = test_matrix(tmp)
        results["case_ms"] = raw["test_matrix"]["case_ms"]
        print("the Flask tutorial's suite...", flush=True)
        raw["flask_tutorial"] = flask_tutorial_suite(tmp)
        # Per case by pytest's clock: flaskr's 24 tests are too few for interpreter start to vanish.
        results["case_ms_pytest"] = raw["test_matrix"]["pytest_case_ms"]
        results["flask_tutorial_case_ms_pytest"] = raw["flask_tutorial"]["pytest_case_ms"]
        results["case_ms_vs_flask_tutorial"] = round(
            results["case_ms_pytest"] / results["flask_tutorial_case_ms_pytest"], 2
        )
        results["auth_ratio"], results["login_unknown_known_ratio"], results["cold_start_ms"] = {}, {}, {}
        for step in STEPS:
            print(f"{step.name}: serving...", flush=True)
            server = Server(tmp, step)
            try:
                raw["auth"][step.name] = auth_cost(server.port, args.rounds, args.requests)
                results["auth_ratio"][step.name] = raw["auth"][step.name]["ratio"]
                if "database" in step.features:
                    raw["login"][step.name] = login_cost(server.port, args.logins)
                    results["login_unknown_known_ratio"][step.name] = raw["login"][step.name]["ratio"]
            finally:
                server.stop()
            if results["auth_ratio"][step.name] < TARGETS["auth_ratio"]:
                raw["where"][step.name] = profile_step(tmp, step)
            print(f"{step.name}: cold start...", flush=True)
            median, times = cold_start(tmp, step, 5)
            results["cold_start_ms"][step.name] = median
            raw["cold_start"][step.name] = times
        first = next((step for step in STEPS if "server-sessions" in step.features), None)
        if first is not None:
            before = STEPS[STEPS.index(first) - 1]
            print(f"{first.name}: each session store against {before.name}...", flush=True)
            raw["stores"] = stores_cost(tmp, before, first, args.rounds, args.requests)
            results["store_ratio"] = raw["stores"]["ratio"]
        first = next((step for step in STEPS if "rate-limits" in step.features), None)
        if first is not None:
            before = STEPS[STEPS.index(first) - 1]
            print(f"{first.name}: the limiter's cost per failed login, against {before.name}...", flush=True)
            raw["limiter"] = limiter_cost(tmp, before, first, args.rounds, 20)
            results["limiter_added_ms"] = raw["limiter"]["added_ms"]
        first = next((step for step in STEPS if "password-reset" in step.features), None)
        if first is not None:
            print(f"{first.name}: reset requests, known and unknown addresses...", flush=True)
            raw["reset"] = reset_cost(tmp, first, 40)
            results["reset_unknown_known_ratio"] = raw["reset"]["ratio"]
        if not args.skip_workers:
            # bench/workers.py: the production step with 1, 2 and 4 gunicorn workers.
            raw["workers"] = workers.measure()
            (OUT / "workers.md").write_text(workers.table(raw["workers"]))
        print("bcrypt...", flush=True)
        results["bcrypt_ms"] = bcrypt_cost(5)
        results["nox_warm_s"] = None
        if not args.skip_nox:
            print("warm nox (twice)...", flush=True)
            results["nox_warm_s"] = nox_warm(args.nox)
    results["raw"] = raw
    (OUT / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    markdown = table(results)
    (OUT / "table.md").write_text(markdown)
    chart(results)
    print(markdown)


if __name__ == "__main__":
    main()
