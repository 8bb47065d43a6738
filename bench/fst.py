"""Figure 10: the course against what a user would pick instead, Flask-Security-Too, side by side.

Four servers at once, each gunicorn with 2 sync workers on loopback:
step 04 (Flask's signed cookie) and bench/fst_app.py with the same kind of
session; the last step with its sessions in Redis (FLASK_REDIS_URL, users in
SQLite) and fst_app.py with Flask-Session in the same Redis (another
database number). One client per server logs in as alice; then, in each of
a few rounds, wrk (bench/load.py) sends logged-in `GET /profile` to every
server in turn for a fixed time, the order rotating from round to round.
Each pair's figure is the median of its rounds' own ratios, course over
Flask-Security-Too requests per second.

Run by bench/run.py; alone: `python bench/fst.py --seconds 2 --rounds 1`
(prints the figures, writes nothing). `python bench/fst.py --in-process`
times the same page in this process instead, for every step from 04 on
and both Flask-Security-Too apps, in short turns: what each
lesson adds to the request, without gunicorn and the client (prints,
writes nothing). `--past 04@REV` times step 04 as it was at git revision
REV beside them: has a step's page grown slower, or the other side faster?
"""

import argparse
import contextlib
import io
import json
import statistics
import subprocess
import tarfile
import tempfile
from pathlib import Path

import load
from activity import profile_ms
from client import Client
from common import HERE
from common import ROOT
from common import STEPS
from common import env_for
from common import environment
from common import in_process
from common import prepare

from harness.accounts import USERS
from harness.apps import AuthActions
from harness.apps import logged_in_browser
from harness.served import serving
from harness.services import environment_without
from harness.services import throwaway_redis
from harness.steps import Step
from harness.steps import select

TARGET = 1.5  # each step serves at least this many times what Flask-Security-Too does
WORKERS = 2
FST = "Flask-Security-Too"


def fst_env(tmp, name, redis_url=None):
    """fst_app.py's settings: a SQLite file of its own, and Redis for the sessions if given."""
    env = environment_without()
    env["FLASK_SECRET_KEY"] = "bench-only-not-secret"
    env["FLASK_SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp}/fst-{name}.sqlite"
    if redis_url:
        env["FLASK_REDIS_URL"] = redis_url
    return env


def prepare_fst(env):
    """fst_app.py's tables and users, made in this process before its workers start."""
    import fst_app

    with environment(env):
        fst_app.add_users(fst_app.create_app())


def logged_in(server, field):
    """The cookies of a client that logged in as alice on `server`, by her username or email address."""
    client = Client(server.port)
    name = "alice" if field == "username" else USERS["alice"]["email"]
    client.login(name, USERS["alice"]["password"], field=field)
    status, body = client.request("GET", "/profile")
    if status != 200 or b"alice" not in body:
        raise RuntimeError(f"GET /profile after the login on port {server.port} gave {status}")
    return client.cookies


def measure(tmp, last=None, rounds=3, seconds=10):
    """Requests per second of each server, and each pair's ratio (course / Flask-Security-Too)."""
    [cookie_step] = select(STEPS, ["04_registration"])
    # The last step that keeps its sessions on the server (FLASK_REDIS_URL: in Redis).
    last = last or [step for step in STEPS if "server-sessions" in step.features][-1]
    pairs = {
        f"{cookie_step.name} / {FST}, signed cookie": (cookie_step.name, f"{FST}, signed cookie"),
        f"{last.name} / {FST}, Redis": (f"{last.name}, Redis", f"{FST}, Redis"),
    }
    with throwaway_redis() as redis_url:
        # One Redis, two of its databases: the step's, and Flask-Security-Too's.
        fst_redis = second_database(redis_url)
        envs = {
            cookie_step.name: (cookie_step, env_for(tmp, cookie_step)),
            f"{FST}, signed cookie": (None, fst_env(tmp, "cookie")),
            f"{last.name}, Redis": (last, env_for(tmp, last, redis_url)),
            f"{FST}, Redis": (None, fst_env(tmp, "redis", fst_redis)),
        }
        for step, env in envs.values():
            if step:
                prepare(step, env)
            else:
                prepare_fst(env)
        with all_serving(tmp, envs) as servers:
            runs = interleaved(servers, rounds, seconds)
    ratios = {pair: [a / b for a, b in zip(runs[step], runs[app], strict=True)] for pair, (step, app) in pairs.items()}
    return {
        "client": f"wrk, 1 thread, {load.CONNECTIONS} connections, {seconds} s a round",
        "workers": WORKERS,
        "rounds": rounds,
        "pairs": {pair: list(sides) for pair, sides in pairs.items()},
        "rps": {label: round(statistics.median(values), 1) for label, values in runs.items()},
        "runs": runs,
        "ratio": {pair: round(statistics.median(values), 3) for pair, values in ratios.items()},
        "ratio_rounds": {pair: [round(value, 3) for value in values] for pair, values in ratios.items()},
    }


def interleaved(servers, rounds, seconds):
    """{label: [requests per second, a round each]}: every server in turn, the order rotating each round."""
    # A step's login form asks for the username, Flask-Security-Too's for the email address.
    cookies = {label: logged_in(server, "email" if FST in label else "username") for label, server in servers.items()}

    def rate(label, duration):
        return load.rate(servers[label].port, "/profile", cookies[label], duration, expect="alice")

    for label in servers:
        rate(label, 1)  # every worker warm
    return in_turns(list(servers), rounds, lambda label: round(rate(label, seconds), 1))


def in_turns(labels, rounds, measure):
    """{label: [measure(label), a round each]}: every label in turn, the order rotating from round to round."""
    runs = {label: [] for label in labels}
    for i in range(rounds):
        shift = i % len(labels)
        for label in labels[shift:] + labels[:shift]:
            runs[label].append(measure(label))
    return runs


def second_database(redis_url):
    """The same Redis, database number 1: Flask-Security-Too's, beside the step's."""
    return redis_url.rsplit("/", 1)[0] + "/1"


@contextlib.contextmanager
def all_serving(tmp, envs):
    """Every server of `envs` answering at once, gunicorn with WORKERS workers each: {label: Server}."""
    with contextlib.ExitStack() as stack:
        servers = {}
        for index, (label, (step, env)) in enumerate(envs.items()):
            log = Path(tmp) / f"fst-gunicorn-{index}.log"
            path = None if step else HERE / "fst_app"
            servers[label] = stack.enter_context(serving(step, env, log, workers=WORKERS, path=path))
        yield servers


def in_process_ms(tmp, turns=100, batch=20, past=()):
    """{label: ms}: logged-in GET /profile in this process (Flask's test client), the median of the turns' medians.

    Each step from 04 on, its sessions in a throwaway Redis from the first
    step that keeps them on the server, and Flask-Security-Too with the
    signed cookie and with Flask-Session in Redis: all logged in first,
    then `batch` requests to each in turn, `turns` times, the order
    rotating. This machine's speed swings by a third within seconds: short
    turns lay every swing on every side alike. (Five rounds of 400 did not:
    one side's round could fall in a slow spell, and step 04 once took 1.5
    times what its own copy did. Turns of one request each are steady but
    cold: every request finds the caches full of another app.)
    `past`: (step, git revision) pairs, each step as it was then, timed too.
    """
    import fst_app

    [cookie_step] = select(STEPS, ["04_registration"])
    steps = {step.name: step for step in STEPS[STEPS.index(cookie_step) :]}
    steps.update({f"{step.name} at {revision}": step_at(tmp, step, revision) for step, revision in past})
    clients = {}
    # Redis outermost: it stops after the apps have closed their connections.
    with throwaway_redis() as redis_url, contextlib.ExitStack() as stack:
        for label, step in steps.items():
            url = redis_url if "server-sessions" in step.features else None
            app, _ = stack.enter_context(in_process(tmp, step, "fst", url))
            clients[label] = logged_in_browser(app).client
        for label, name, url in (("signed cookie", "cookie", None), ("Redis", "redis", second_database(redis_url))):
            env = fst_env(tmp, name, url)
            prepare_fst(env)
            with environment(env):
                auth = AuthActions(fst_app.create_app().test_client())
            # Flask-Security-Too's login form asks for the email address.
            form = {"email": USERS["alice"]["email"], "password": USERS["alice"]["password"]}
            if auth.post("/login", form).status_code != 302 or "alice" not in auth.client.get("/profile").text:
                raise RuntimeError(f"{FST}, {label}: the login as alice did not take")
            clients[f"{FST}, {label}"] = auth.client
        for client in clients.values():
            profile_ms(client, 200)  # every code path warm
        runs = in_turns(list(clients), turns, lambda label: profile_ms(clients[label], batch))
    return {label: round(statistics.median(values), 3) for label, values in runs.items()}


def step_at(tmp, step, revision):
    """`step` as it was at git `revision`: its folder, out of this repository's history, in a folder of `tmp`."""
    commit = git("rev-parse", "--verify", f"{revision}^{{commit}}").decode().strip()
    archive = git("archive", "--format=tar", commit, f"steps/{step.name}")
    into = Path(tmp) / f"past-{commit}"
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return Step.from_dir(into / "steps" / step.name)


def git(*args):
    """What git prints, run in this repository; what it says, and an exit, if it fails."""
    done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True)
    if done.returncode:
        raise SystemExit(f"git {args[0]}: {done.stderr.decode().strip()}")
    return done.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=10, help="seconds of load per server per round")
    parser.add_argument("--last", help="the step with Redis sessions (default: the last step)")
    parser.add_argument("--in-process", action="store_true", help="time the page in this process instead")
    parser.add_argument(
        "--past",
        action="append",
        default=[],
        metavar="STEP@REV",
        help="with --in-process: time STEP as it was at git revision REV too (again for more)",
    )
    args = parser.parse_args()
    if args.past and not args.in_process:
        parser.error("--past goes with --in-process")
    last = select(STEPS, [args.last])[0] if args.last else None
    past = []
    for spec in args.past:
        name, at, revision = spec.partition("@")
        if not (at and revision):
            parser.error(f"--past {spec!r}: not STEP@REV, such as 04@HEAD~10")
        try:
            past.append((select(STEPS, [name])[0], revision))
        except LookupError as error:
            parser.error(f"--past {spec!r}: {error}")
    with tempfile.TemporaryDirectory() as tmp:
        if args.in_process:
            print(json.dumps(in_process_ms(tmp, past=past), indent=2))
        else:
            print(json.dumps(measure(tmp, last, args.rounds, args.seconds), indent=2))


if __name__ == "__main__":
    main()
