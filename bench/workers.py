"""How the production step scales with gunicorn workers: logged-in GET /profile per second.

The last step with the `production-settings` feature, served by gunicorn
with 1, 2 and 4 sync workers, against a throwaway PostgreSQL and Redis
(sessions and rate-limit counts in Redis, users in PostgreSQL), as
`nox -s production` serves it. The load is bounded: a fixed number of
client threads on loopback, each logged in as alice with a session of its
own, each sending a fixed number of requests one after the other. The
clients share the machine with the server, so on a small machine the
figures say how far workers help there, not what a bigger host would do.

Run by bench/run.py; alone: `python bench/workers.py` (writes
docs/benchmarks/workers.json and workers.md).
"""

import json
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path

from client import Client
from common import OUT
from common import prepare

from harness.accounts import USERS
from harness.served import serving
from harness.services import environment_without
from harness.services import throwaway_postgres
from harness.services import throwaway_redis
from harness.steps import discover

WORKERS = (1, 2, 4)


def production_step():
    steps = [step for step in discover() if "production-settings" in step.features]
    if not steps:
        raise SystemExit("no step teaches production yet")
    return steps[-1]


def throughput(port, clients, requests):
    """Requests per second, all `clients` threads together, each sending `requests` GETs of /profile."""
    visitors = []
    for _ in range(clients):
        visitor = Client(port)
        visitor.login("alice", USERS["alice"]["password"])
        visitors.append(visitor)
    for visitor in visitors:
        visitor.rate("/profile", 5)  # every worker warm
    errors = []

    def load(visitor):
        try:
            visitor.rate("/profile", requests)
        except Exception as error:  # noqa: BLE001 -- reported below, not lost in a thread
            errors.append(error)

    threads = [threading.Thread(target=load, args=(visitor,)) for visitor in visitors]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - start
    if errors:
        raise RuntimeError(f"a client failed: {errors[0]}")
    return clients * requests / elapsed


def measure(clients=8, requests=150, repeats=3):
    """{workers: {"rps": median, "runs": [...]}} for each worker count."""
    step = production_step()
    results = {"step": step.name, "clients": clients, "requests_per_client": requests, "workers": {}}
    with tempfile.TemporaryDirectory() as folder, throwaway_postgres() as database, throwaway_redis() as redis:
        env = environment_without()
        env.update(
            FLASK_SECRET_KEY="bench-only-not-secret",
            FLASK_SQLALCHEMY_DATABASE_URI=database,
            FLASK_REDIS_URL=redis,
            # One login per client: the cost of bcrypt is not what this measures.
            FLASK_BCRYPT_LOG_ROUNDS="4",
        )
        # The migrations (create_app runs them), then alice and bob, before any server starts.
        prepare(step, env)
        for workers in WORKERS:
            print(f"{step.name}: gunicorn with {workers} worker(s)...", flush=True)
            log = Path(folder) / f"gunicorn-{workers}.log"
            with serving(step, env, log, workers=workers) as server:
                runs = [round(throughput(server.port, clients, requests), 1) for _ in range(repeats)]
            results["workers"][str(workers)] = {"rps": statistics.median(runs), "runs": runs}
    return results


def table(results):
    """The figures as a Markdown table."""
    one = results["workers"][str(WORKERS[0])]["rps"]
    lines = [
        f"Logged-in `GET /profile` on {results['step']}, gunicorn sync workers, PostgreSQL and Redis; "
        f"{results['clients']} clients on loopback, {results['requests_per_client']} requests each "
        f"(median of {len(next(iter(results['workers'].values()))['runs'])} runs), {os.cpu_count()} cores.",
        "",
        "| workers | requests/s | against 1 worker |",
        "| --- | --- | --- |",
    ]
    for workers, figures in results["workers"].items():
        lines.append(f"| {workers} | {figures['rps']:.0f} | {figures['rps'] / one:.2f}× |")
    return "\n".join(lines) + "\n"


def main():
    results = measure()
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "workers.json").write_text(json.dumps(results, indent=2) + "\n")
    (OUT / "workers.md").write_text(table(results))
    print(table(results))


if __name__ == "__main__":
    main()
