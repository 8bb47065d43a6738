"""Figure 7: what the limiter adds to a failed login, its counts in memory and in Redis."""

import statistics

from client import Client
from common import served_twins

from harness.services import throwaway_redis

# The limiter's cost is a fraction of a millisecond: measured beside bcrypt
# at 12 rounds it would drown in that check's own spread. So these servers
# hash at the cheapest cost (and, like every server here, have limits too
# high to lock anyone out, so that every failure is checked and counted).
LIMITER_ENV = {"FLASK_BCRYPT_LOG_ROUNDS": "4"}


def limiter_cost(tmp, before, step, rounds, count):
    """ms per failed POST /login on `step` (counts in memory, in Redis) against `before` (no limits)."""

    # Databases of their own: alice is hashed at the cheap cost there.
    def env(name):
        return LIMITER_ENV | {"FLASK_SQLALCHEMY_DATABASE_URI": f"sqlite:///{tmp}/limiter-{name}.sqlite"}

    with (
        throwaway_redis() as redis_url,
        served_twins(tmp, before, extra=env("before")) as base,
        served_twins(tmp, step, extra=env("memory")) as memory,
        served_twins(tmp, step, redis_url, extra=env("redis")) as redis,
    ):
        servers = {f"{before.name}": base, f"{step.name}, memory": memory, f"{step.name}, redis": redis}
        clients = {label: Client(server.port) for label, server in servers.items()}
        labels = list(clients)
        ms = {label: [] for label in labels}
        for i in range(rounds):
            shift = i % len(labels)
            for label in labels[shift:] + labels[:shift]:
                client = clients[label]
                forms = [client.login_form("alice", "not-her-password") for _ in range(count)]
                ms[label].append(1000 * statistics.median(client.timed_post("/login", form) for form in forms))
    base = labels[0]
    return {
        "ms": {label: round(statistics.median(values), 3) for label, values in ms.items()},
        # Each round's own difference: what the limiter adds to one failed login.
        "added_ms": {
            label: round(statistics.median(a - b for a, b in zip(ms[label], ms[base], strict=True)), 3)
            for label in labels[1:]
        },
    }
