"""Figure 12: what the second stage adds to a login, and what checking one code costs.

The first step with `two-factor`, served by gunicorn (one sync worker) on
loopback, holds alice (password only) and users with two-factor on. Each
round, side by side, one new visitor logs in as alice (one POST /login)
and another as a user with two-factor on (POST /login, then POST
/login/two-factor with the next code of that user's "app"); which goes
first alternates. The round's own difference is what the second stage
adds. Then, in this process, the step's own functions check codes: pyotp's
verify alone, models.check_totp as the login calls it, and
models.use_recovery_code.
"""

import statistics
import time
from pathlib import Path
from types import SimpleNamespace

from client import Client
from common import env_for
from common import in_process
from common import prepare
from common import quartiles

from harness.accounts import USERS
from harness.served import serving
from harness.two_factor import code
from harness.two_factor import turn_on

# The second stage costs a few milliseconds: beside bcrypt at 12 rounds
# (about 210 ms) it would drown in that check's own spread. So this server
# hashes at the cheapest cost, as for the limiter's figure.
CHEAP_BCRYPT = {"FLASK_BCRYPT_LOG_ROUNDS": "4"}
PASSWORD = "a-long-passphrase"


class HttpAuth:
    """What harness.two_factor.turn_on drives (an AuthActions), over HTTP: a bench Client, logged in.

    Each POST carries a CSRF token from a page of the site, as the browser's form would.
    """

    def __init__(self, client):
        self.client = client

    def post(self, path, data=None):
        status, body = self.client.request("POST", path, self.client.form("/two-factor", **(data or {})))
        return SimpleNamespace(status_code=status, text=body.decode())


def login_cost(tmp, step, rounds):
    """ms for a full login as alice (one POST) and as a user with two-factor on (two POSTs), `rounds` of each.

    A TOTP code works once, and a server takes no code more than one
    30-second step ahead: so each two-factor login is by a user of its own,
    turned on just before.
    """
    env = env_for(tmp, step, extra=CHEAP_BCRYPT)
    # One more, for a login of each kind untimed: the worker's first pass
    # through each view (templates compiled, modules imported) is slower.
    warm, *names = [f"second{i:02d}" for i in range(rounds + 1)]
    prepare(step, env, dict.fromkeys([warm, *names], PASSWORD))
    with serving(step, env, Path(tmp) / f"two-factor-{step.name}.log", workers=1) as server:
        apps = {}
        for name in [warm, *names]:
            client = Client(server.port)
            client.login(name, PASSWORD)
            apps[name] = turn_on(HttpAuth(client), PASSWORD)
        log_in(server.port, "alice", USERS["alice"]["password"])
        log_in(server.port, warm, PASSWORD, apps[warm].next_code())
        password_only, two_factor, second_stage = [], [], []
        for i, name in enumerate(names):
            kinds = [(password_only, None), (two_factor, name)]
            for times, who in kinds if i % 2 else kinds[::-1]:
                if who is None:
                    times.append(log_in(server.port, "alice", USERS["alice"]["password"]))
                else:
                    password, code_given = log_in(server.port, who, PASSWORD, apps[who].next_code())
                    times.append(password + code_given)
                    second_stage.append(code_given)
    added = [b - a for a, b in zip(password_only, two_factor, strict=True)]
    return {
        "password_only_ms": round(1000 * statistics.median(password_only), 2),
        "two_factor_ms": round(1000 * statistics.median(two_factor), 2),
        "second_stage_ms": round(1000 * statistics.median(second_stage), 2),
        # Each round's own difference: the second stage, as a user waits for it.
        "added_ms": round(1000 * statistics.median(added), 2),
        "added_quartiles_ms": quartiles([1000 * a for a in added]),
        "rounds": rounds,
    }


def log_in(port, username, password, totp=None):
    """A new visitor logs in: seconds for POST /login; with `totp`, (that, seconds for POST /login/two-factor).

    Each form is fetched first, untimed, for its CSRF token (the second one
    after the redirect, as the browser follows it); each answer is checked.
    """
    visitor = Client(port)
    form = visitor.login_form(username, password)
    start = time.perf_counter()
    status, _ = visitor.request("POST", "/login", form)
    password_time = time.perf_counter() - start
    if totp is None:
        expect(visitor, status, "/profile")
        return password_time
    expect(visitor, status, "/login/two-factor")
    form = visitor.form("/login/two-factor", code=totp)
    start = time.perf_counter()
    status, _ = visitor.request("POST", "/login/two-factor", form)
    code_time = time.perf_counter() - start
    expect(visitor, status, "/profile")
    return password_time, code_time


def expect(visitor, status, where):
    if status != 302 or visitor.location != where:
        raise RuntimeError(f"a login gave {status} to {visitor.location}, not a redirect to {where}")


def check_cost(tmp, step, repeats):
    """The time of one check of each kind, by the step's own functions, in this process, on its SQLite database.

    pyotp's verify (models.totp_step: the code of the step before, now and
    after); models.check_totp as the second stage calls it (decrypt the
    secret, verify, record the step in one UPDATE and commit); and
    models.use_recovery_code (SHA-256, mark the code used in one UPDATE,
    commit). Each check accepts its code: what is undone between two
    (the step recorded, the codes used) is undone untimed.
    """
    with in_process(tmp, step, "codes", extra=CHEAP_BCRYPT) as (app, package):
        models = package.models
        db = package.extensions.db
        with app.app_context():
            user = db.session.get(models.User, USERS["alice"]["id"])
            secret = models.new_totp_secret()
            recovery = models.enable_two_factor(user, secret, models.totp_step(secret, code(secret)) - 1)
            verify, totp, recovery_times = [], [], []
            for i in range(repeats):
                given = code(secret)
                start = time.perf_counter()
                step_of_code = models.totp_step(secret, given)
                verify.append(time.perf_counter() - start)
                assert step_of_code is not None
                # Not used yet, and the user loaded (as user_loader has done by the second stage).
                user.totp_last_step = step_of_code - 1
                db.session.commit()
                assert user.totp_secret
                start = time.perf_counter()
                accepted = models.check_totp(user, given)
                totp.append(time.perf_counter() - start)
                assert accepted
                if i % len(recovery) == 0 and i:
                    recovery = models.new_recovery_codes(user)
                one = recovery[i % len(recovery)]
                assert user.totp_secret
                start = time.perf_counter()
                accepted = models.use_recovery_code(user, one)
                recovery_times.append(time.perf_counter() - start)
                assert accepted
    return {
        "pyotp_verify_us": round(1e6 * statistics.median(verify), 1),
        "check_totp_ms": round(1e3 * statistics.median(totp), 3),
        "recovery_code_ms": round(1e3 * statistics.median(recovery_times), 3),
        "repeats": repeats,
    }


def measure(tmp, step, rounds, repeats=200):
    """Both halves of the figure."""
    return {"step": step.name, "login": login_cost(tmp, step, rounds), "check": check_cost(tmp, step, repeats)}
