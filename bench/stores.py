"""Figure 6: server-side sessions, in the database and in Redis, against the signed cookie of the step before."""

import statistics

from client import Client
from common import quartiles
from common import served_twins

from harness.accounts import USERS
from harness.services import throwaway_redis

# At most this many times the cost per logged-in request of the step
# before (its signed cookie), per store.
TARGETS = {"database": 2.0, "redis": 1.5}


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
        clients[label].login("alice", USERS["alice"]["password"])
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
        "ratio_quartiles": {label: quartiles(values) for label, values in ratios.items()},
    }


def stores_cost(tmp, before, step, rounds, count):
    """`step` with its database store and with Redis, against `before`, all served at once."""
    with (
        throwaway_redis() as redis_url,
        served_twins(tmp, before) as base,
        served_twins(tmp, step) as database,
        served_twins(tmp, step, redis_url) as redis,
    ):
        servers = {f"{before.name}": base, f"{step.name}, database": database, f"{step.name}, redis": redis}
        return store_cost({label: server.port for label, server in servers.items()}, rounds, count)
