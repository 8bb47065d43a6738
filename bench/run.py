"""Measure what the course costs; print a table, write results.json, table.md and chart.png.

Run it through `nox -s bench` (one virtualenv with every step's dependencies).
`--skip-nox` leaves out the slowest figure, the warm `nox` run. Each figure
is measured by a module of its own in bench/; report.py writes the files.
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

import activity
import auth
import fst
import limiter
import logins
import oidc
import passkeys
import report
import reset
import signup
import startup
import stores
import suites
import two_factor
import where
import workers
from common import OUT
from common import STEPS
from common import before
from common import first_with
from common import machine
from common import served_twins

FIGURES = {
    "suites": "the test matrix, and the Flask tutorial's suite beside it (suites.py)",
    "auth": "per step: logged-in against bare, failed logins, and where the time goes (auth.py, logins.py, where.py)",
    "cold": "per step: import + create_app in a fresh interpreter (startup.py)",
    "stores": "server-side sessions against the signed cookie (stores.py)",
    "limiter": "what the limiter adds to a failed login (limiter.py)",
    "reset": "reset requests, known and unknown addresses (reset.py)",
    "signup": "sign-ups with a known and an unknown address, the first step that hides it and the one before (signup.py)",
    "two-factor": "a login with two-factor on against one without, and the cost of checking a code (two_factor.py)",
    "passkeys": "checking a passkey's registration and sign-in, by py_webauthn and by the step (passkeys.py)",
    "oidc": "a sign-in with the tests' OpenID provider, the site's share and the provider's (oidc.py)",
    "activity": "what the security log adds to a login and the index of sessions to a page, per store (activity.py)",
    "workers": "the production step with 1, 2 and 4 gunicorn workers (workers.py)",
    "fst": "the course against Flask-Security-Too (fst.py, fst_app.py, with wrk)",
    "bcrypt": "bcrypt itself (logins.py)",
    "nox": "a warm `nox` (startup.py)",
}


def options():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--skip-nox", action="store_true", help="leave out the warm nox wall time")
    parser.add_argument("--nox", default=f"{sys.executable} -m nox", help="how to run nox")
    parser.add_argument("--rounds", type=int, default=30, help="pairs of rounds, logged-in and bare")
    parser.add_argument("--requests", type=int, default=100, help="requests per route per round")
    parser.add_argument("--logins", type=int, default=9, help="login attempts of each kind")
    parser.add_argument("--signups", type=int, default=20, help="sign-ups of each kind, per step")
    parser.add_argument(
        "--two-factor-logins", type=int, default=20, help="logins of each kind, with two-factor on and without"
    )
    parser.add_argument(
        "--skip-workers", action="store_true", help="leave out gunicorn workers on PostgreSQL and Redis"
    )
    parser.add_argument("--skip-fst", action="store_true", help="leave out the comparison with Flask-Security-Too")
    parser.add_argument("--fst-rounds", type=int, default=3, help="rounds of the Flask-Security-Too comparison")
    parser.add_argument("--fst-seconds", type=int, default=10, help="seconds of load per server per round there")
    parser.add_argument(
        "--only",
        help="comma-separated figures to measure, of: "
        + ", ".join(f"{name} ({what})" for name, what in FIGURES.items()),
    )
    parser.add_argument("--out", type=Path, default=OUT, help="where the files go (default docs/benchmarks)")
    parser.add_argument(
        "--merge",
        action="store_true",
        help="lay this run's figures over the results.json already in --out, keeping the others, and write "
        "the table from both (the chart only if this run measured one of its figures)",
    )
    args = parser.parse_args()
    chosen = args.only.split(",") if args.only else list(FIGURES)
    unknown = set(chosen) - set(FIGURES)
    if unknown:
        parser.error(f"no figure {', '.join(sorted(unknown))}; the figures are {', '.join(FIGURES)}")
    skipped = {"nox": args.skip_nox, "workers": args.skip_workers, "fst": args.skip_fst}
    args.figures = [name for name in chosen if not skipped.get(name)]
    return args


def main():
    args = options()
    figures, out = args.figures, args.out
    out.mkdir(parents=True, exist_ok=True)
    startup.with_bytecode()
    if "auth" in figures:
        for old in out.glob("profile_*.txt"):
            old.unlink()  # a step that now meets its target must not keep an old profile
    # Only the measured figures' raw numbers: with --merge, the others stay as they were.
    raw = {}
    if "auth" in figures:
        raw.update(auth={}, where={}, login={})
    if "cold" in figures:
        raw["cold_start"] = {}
    results = {"machine": machine()}
    with tempfile.TemporaryDirectory() as tmp:
        if "suites" in figures:
            measure_suites(tmp, results, raw)
        if "auth" in figures:
            results["auth_ratio"], results["login_unknown_known_ratio"] = {}, {}
            for step in STEPS:
                measure_auth(tmp, step, args, results, raw, out)
        if "cold" in figures:
            results["cold_start_ms"] = {}
            for step in STEPS:
                print(f"{step.name}: cold start...", flush=True)
                results["cold_start_ms"][step.name], raw["cold_start"][step.name] = startup.cold_start(tmp, step, 5)
        step = first_with("server-sessions")
        if "stores" in figures and step is not None:
            print(f"{step.name}: each session store against {before(step).name}...", flush=True)
            raw["stores"] = stores.stores_cost(tmp, before(step), step, args.rounds, args.requests)
            results["store_ratio"] = raw["stores"]["ratio"]
        step = first_with("rate-limits")
        if "limiter" in figures and step is not None:
            print(f"{step.name}: the limiter's cost per failed login, against {before(step).name}...", flush=True)
            raw["limiter"] = limiter.limiter_cost(tmp, before(step), step, args.rounds, 20)
            results["limiter_added_ms"] = raw["limiter"]["added_ms"]
        step = first_with("password-reset")
        if "reset" in figures and step is not None:
            print(f"{step.name}: reset requests, known and unknown addresses...", flush=True)
            raw["reset"] = reset.reset_cost(tmp, step, 40)
            results["reset_unknown_known_ratio"] = raw["reset"]["ratio"]
        step = first_with("email-confirmation")
        if "signup" in figures and step is not None:
            measure_signup(tmp, step, args, results, raw)
        step = first_with("two-factor")
        if "two-factor" in figures and step is not None:
            print(f"{step.name}: logins with two-factor on and without, and checking codes...", flush=True)
            raw["two_factor"] = two_factor.measure(tmp, step, args.two_factor_logins)
            results["two_factor_added_ms"] = raw["two_factor"]["login"]["added_ms"]
        step = first_with("passkeys")
        if "passkeys" in figures and step is not None:
            print(f"{step.name}: checking passkeys...", flush=True)
            raw["passkeys"] = passkeys.measure(tmp, step)
            results["passkey_sign_in_ms"] = raw["passkeys"]["view"]["sign_in_ms"]
        step = first_with("openid-connect")
        if "oidc" in figures and step is not None:
            print(f"{step.name}: signing in with the OpenID provider...", flush=True)
            raw["oidc"] = oidc.measure(tmp, step)
            results["oidc_site_ms"] = raw["oidc"]["site_ms"]
        step = first_with("device-sessions")
        if "activity" in figures and step is not None:
            print(
                f"{step.name}: the security log and the index of sessions, against {before(step).name}...", flush=True
            )
            raw["activity"] = activity.measure(tmp, before(step), step)
            results["activity_profile_ratio"] = max(
                raw["activity"]["database_profile_ratio"], raw["activity"]["redis_profile_ratio"]
            )
        if "workers" in figures:
            raw["workers"] = workers.measure()
            (out / "workers.md").write_text(workers.table(raw["workers"]))
        if "fst" in figures:
            print("the course against Flask-Security-Too...", flush=True)
            raw["fst"] = fst.measure(tmp, rounds=args.fst_rounds, seconds=args.fst_seconds)
            results["fst_ratio"] = raw["fst"]["ratio"]
        if "bcrypt" in figures:
            print("bcrypt...", flush=True)
            results["bcrypt_ms"] = logins.bcrypt_cost(5)
        if "nox" in figures or args.skip_nox:
            results["nox_warm_s"] = None
        if "nox" in figures:
            print("warm nox (twice)...", flush=True)
            results["nox_warm_s"] = startup.nox_warm(args.nox)
    results["raw"] = raw
    redraw = True
    if args.merge:
        # The chart stays as it is unless this run measured something it shows.
        redraw = report.charted(results)
        results = merged(out / "results.json", results, figures)
    print(report.write(results, out, redraw))


def merged(path, results, figures):
    """This run's figures laid over those of the run in `path`: the rest stays as that run measured it.

    `machine` stays that run's; `merged` records, per figure laid over it,
    the machine (and date) of the run that measured it.
    """
    if not path.exists():
        raise SystemExit(f"--merge: there is no {path} to merge into")
    earlier = json.loads(path.read_text())
    this_machine = results.pop("machine")
    earlier["raw"].update(results.pop("raw"))
    earlier.update(results)
    earlier.setdefault("merged", {}).update(dict.fromkeys(figures, this_machine))
    return earlier


def measure_suites(tmp, results, raw):
    print("test matrix...", flush=True)
    raw["test_matrix"] = suites.test_matrix(tmp)
    results["case_ms"] = raw["test_matrix"]["case_ms"]
    print("the Flask tutorial's suite...", flush=True)
    raw["flask_tutorial"] = suites.flask_tutorial_suite(tmp)
    # Per case by pytest's clock: flaskr's 24 tests are too few for interpreter start to vanish.
    results["case_ms_pytest"] = raw["test_matrix"]["pytest_case_ms"]
    results["flask_tutorial_case_ms_pytest"] = raw["flask_tutorial"]["pytest_case_ms"]
    results["case_ms_vs_flask_tutorial"] = round(
        results["case_ms_pytest"] / results["flask_tutorial_case_ms_pytest"], 2
    )


def measure_signup(tmp, step, args, results, raw):
    """Sign-ups with a known and an unknown address: the first step that answers both alike, and the one before."""
    raw["signup"], results["signup_known_unknown_ratio"] = {}, {}
    for each in (before(step), step):
        print(f"{each.name}: sign-ups, known and unknown addresses...", flush=True)
        raw["signup"][each.name] = signup.signup_cost(tmp, each, args.signups)
        results["signup_known_unknown_ratio"][each.name] = raw["signup"][each.name]["ratio"]


def measure_auth(tmp, step, args, results, raw, out):
    """The step and its bare twin on one server: the logged-in ratio, then failed logins; profiles if it misses."""
    print(f"{step.name}: serving...", flush=True)
    with served_twins(tmp, step) as server:
        raw["auth"][step.name] = auth.auth_cost(server.port, args.rounds, args.requests)
        results["auth_ratio"][step.name] = raw["auth"][step.name]["ratio"]
        if "database" in step.features:
            raw["login"][step.name] = logins.login_cost(server.port, args.logins)
            results["login_unknown_known_ratio"][step.name] = raw["login"][step.name]["ratio"]
    if results["auth_ratio"][step.name] < auth.TARGET:
        raw["where"][step.name] = where.profile_step(tmp, step, out)


if __name__ == "__main__":
    main()
