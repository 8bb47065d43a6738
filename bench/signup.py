"""Figure 11: a sign-up with an address that has an account and with one that has none.

Step 09 answers every valid sign-up alike, and hashes the password either
way; the step before it refuses a taken address at its field, before any
hash, so a stopwatch tells a stranger who has an account: the attack that
step 09's page opens with, timed.
"""

import ipaddress
import itertools
import statistics
import time

from client import Client
from common import served_twins

from harness.accounts import USERS
from harness.accounts import took_sign_up
from harness.smtp import smtp_server

TARGET = (0.9, 1.1)
KNOWN = USERS["alice"]["email"]
# What a step that leaks says to a taken address, at the email field.
TAKEN = b"That email address is already registered."
PASSWORD = "a-long-passphrase"

# Behind one proxy, each try from an address of its own, as for an attacker
# with many: the step's own sign-up limit (10 per hour per address, its
# default) stays in force, and never comes in. 198.18.0.0/15 is the range
# set aside for benchmarks (RFC 2544).
BEHIND_A_PROXY = {"FLASK_PROXY_COUNT": "1", "FLASK_REGISTER_LIMIT_PER_ADDRESS": "10 per hour"}
ADDRESSES = ipaddress.ip_network("198.18.0.0/15")


def signup_cost(tmp, step, rounds):
    """Median POST /register with alice's address and with a new one, interleaved; known over unknown.

    Each try is a new visitor (no cookies, a fresh CSRF token, an address
    of its own) with a new username, at the step's bcrypt cost (12, as in
    production). The mail goes to a real SMTP server (aiosmtpd, in this
    process), as in production, so that a step that sent it before
    answering would show it.
    """
    addresses = (str(address) for address in ADDRESSES.hosts())
    tries = itertools.count(1)
    with smtp_server() as inbox:
        mail = {f"FLASK_{name}": str(value) for name, value in inbox.config().items()}
        with served_twins(tmp, step, extra=mail | BEHIND_A_PROXY) as server:
            known, unknown = [], []
            for i in range(rounds):
                pairs = [(known, KNOWN), (unknown, None)]
                for times, email in pairs if i % 2 else pairs[::-1]:
                    n = next(tries)
                    visitor = Client(server.port, {"X-Forwarded-For": next(addresses)})
                    times.append(sign_up(visitor, step, f"signup-{n}", email or f"signup-{n}@example.com"))
        # From step 09 each sign-up sends one email: a link, or a notice to alice.
        leaks = "email-confirmation" not in step.features
        sent = len(inbox.settle() if leaks else inbox.wait_for(2 * rounds, timeout=30))
    k, u = statistics.median(known), statistics.median(unknown)
    return {
        "known_ms": round(k * 1000, 1),
        "unknown_ms": round(u * 1000, 1),
        "ratio": round(k / u, 3),
        "sent": sent,
        "leaks": leaks,
    }


def sign_up(visitor, step, username, email):
    """Seconds for one POST /register (the form, with its CSRF token, is fetched beforehand); its answer is checked.

    From step 09 every sign-up is taken alike; before it, a taken address
    is refused at its field and a new one logged in.
    """
    fields = {"username": username, "email": email, "password": PASSWORD, "confirm_password": PASSWORD}
    form = visitor.form("/register", **fields)
    start = time.perf_counter()
    status, body = visitor.request("POST", "/register", form)
    elapsed = time.perf_counter() - start
    if email == KNOWN and "email-confirmation" not in step.features:
        answered = status == 200 and TAKEN in body
    else:
        answered = took_sign_up(step, (status, visitor.location or body.decode()))
    if not answered:
        raise RuntimeError(f"{step.name}: POST /register with {email} gave {status}, not the step's answer")
    return elapsed
