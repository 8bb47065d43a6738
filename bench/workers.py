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
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from client import Client

from harness.services import free_port
from harness.services import gunicorn_command
from harness.services import stop_process
from harness.services import throwaway_postgres
from harness.services import throwaway_redis
from harness.services import wait_for_port
from harness.steps import discover

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = ROOT / "docs" / "benchmarks"


WORKERS = (1, 2, 4)
USER = ("alice", "wonderland", "alice@example.com")


def production_step():
    steps = [step for step in discover() if "production-settings" in step.features]
    if not steps:
        raise SystemExit("no step teaches production yet")
    return steps[-1]


def prepare(step, env, folder):
    """The migrations, then alice, as a deployment would do before starting the servers."""
    flask = [sys.executable, "-m", "flask", "--app", str(step.path)]
    run = {"env": env, "cwd": folder, "capture_output": True, "text": True, "check": True}
    subprocess.run([*flask, "db", "upgrade"], **run)
    username, password, email = USER
    subprocess.run([*flask, "create-user", username, "--email", email], input=f"{password}\n{password}\n", **run)


def serve(step, env, folder, workers):
    """gunicorn with `workers` sync workers on a free loopback port: (process, port)."""
    port = free_port()
    command = gunicorn_command(step.path, port, workers) + ["--log-level", "warning"]
    process = subprocess.Popen(command, env=env, cwd=folder)
    wait_for_port(port, process, "gunicorn", timeout=60)
    return process, port


def throughput(port, clients, requests):
    """Requests per second, all `clients` threads together, each sending `requests` GETs of /profile."""
    visitors = []
    for _ in range(clients):
        visitor = Client(port)
        visitor.login(USER[0], USER[1])
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
        env = dict(os.environ)
        env.update(
            FLASK_SECRET_KEY="bench-only-not-secret",
            FLASK_SQLALCHEMY_DATABASE_URI=database,
            FLASK_REDIS_URL=redis,
            # One login per client: the cost of bcrypt is not what this measures.
            FLASK_BCRYPT_LOG_ROUNDS="4",
        )
        prepare(step, env, folder)
        for workers in WORKERS:
            print(f"{step.name}: gunicorn with {workers} worker(s)...", flush=True)
            process, port = serve(step, env, folder, workers)
            try:
                runs = [round(throughput(port, clients, requests), 1) for _ in range(repeats)]
            finally:
                stop_process(process, timeout=30)
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
