"""Figure 2: the cost of being logged in, logged-in GET /profile against the bare twin (bench/wsgi.py)."""

import re
import statistics

from client import Client
from common import quartiles

from harness.accounts import USERS

BARE = "/bare/profile"  # bench/wsgi.py sends this to the bare twin
CSRF_VALUE = re.compile(rb'(name="csrf_token"[^>]*value=")[^"]+"')
TARGET = 0.85


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
    client.login("alice", USERS["alice"]["password"])
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
        "ratio_quartiles": quartiles(ratios),
    }
