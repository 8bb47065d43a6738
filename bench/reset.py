"""Figure 8: a reset request for an address with an account and for one without."""

import statistics

from client import Client
from common import served_twins

from harness.smtp import smtp_server

TARGET = (0.9, 1.1)
RESET_ANSWER = b"If an account uses that address, a reset link is on its way."


def reset_cost(tmp, step, repeats):
    """Median POST /reset-password for an address with an account and one without, interleaved.

    The mail goes to a real SMTP server (aiosmtpd, in this process), as in
    production, so that a step that sent it before answering would show it.
    """
    with smtp_server() as inbox:
        mail = {f"FLASK_{name}": str(value) for name, value in inbox.config().items()}
        with served_twins(tmp, step, extra=mail) as server:
            client = Client(server.port)
            known, unknown = [], []
            for i in range(repeats):
                pairs = [(known, "alice@example.com"), (unknown, "nobody@example.com")]
                for times, address in pairs if i % 2 else pairs[::-1]:
                    form = client.form("/reset-password", email=address)
                    times.append(client.timed_post("/reset-password", form, expect=RESET_ANSWER))
        sent = len(inbox.wait_for(repeats, timeout=30))
    k, u = statistics.median(known), statistics.median(unknown)
    return {"known_ms": round(k * 1000, 2), "unknown_ms": round(u * 1000, 2), "ratio": round(u / k, 3), "sent": sent}
