"""Figure 3: a failed login, for an unknown user and for a wrong password; and bcrypt's own cost."""

import statistics
import time

from client import Client

TARGET = (0.9, 1.1)


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


def bcrypt_cost(repeats):
    """ms for one failed bcrypt check, at each of 10 to 14 rounds."""
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
