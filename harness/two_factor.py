"""Two-factor authentication (step 10+), driven from outside: turn it on, read the secret and codes, make codes.

The secret is read from the setup page as a user types it into an app, and
codes are computed from it with pyotp, as the app on a phone computes them.
Used by the shared suite, the docs' attacks and the bench; the browser tests
read the same page through Chromium.
"""

import re
import time
from dataclasses import dataclass
from dataclasses import field

from harness.pages import text

# A TOTP secret as the setup page shows it: base32, maybe in groups of four.
SECRET = re.compile(r"(?<![\w.])(?:[A-Z2-7]{4} ?){3,}[A-Z2-7]{4}(?![\w.])")
# What a recovery code may look like on the page that shows them once: a
# `<code>` or list item of 8 to 40 letters, digits and dashes (no spaces,
# unlike the secret a setup page shows in groups).
RECOVERY_CODE = re.compile(r"<(?:code|li)>\s*([A-Za-z0-9][A-Za-z0-9-]{6,38}[A-Za-z0-9])\s*</(?:code|li)>")


def secret_on(html: str) -> str:
    """The TOTP secret a setup page shows as text, without its spaces."""
    found = SECRET.findall(text(html))
    assert found, "no TOTP secret (base32) on the setup page"
    return max(found, key=len).replace(" ", "")


def recovery_codes_on(html: str) -> list[str]:
    """The recovery codes a page shows, in its order."""
    return RECOVERY_CODE.findall(html)


def code(secret: str, at: float | None = None) -> str:
    """The TOTP code of `secret` at the time `at` (now if None), as an authenticator app shows it."""
    import pyotp  # here, not on top: only steps with two-factor install it

    return pyotp.TOTP(secret).at(time.time() if at is None else at)


@dataclass
class TwoFactor:
    """What turning two-factor on gave the user: the secret (their phone's copy) and the recovery codes."""

    secret: str
    recovery_codes: list[str] = field(default_factory=list)
    # The time of the last code given: each step's code works once, so the
    # next one must come from a later 30-second step (next_code moves on).
    last: float = 0.0

    def next_code(self) -> str:
        """A code from the step after the last one used: valid now, because servers allow one step of drift.

        A second call within the same 30 seconds needs the clock moved
        (the tests use time-machine) or a recovery code.
        """
        at = max(time.time(), self.last + 30)
        if at > time.time() + 30:
            raise RuntimeError("no unused TOTP code is valid yet: move the clock on, or use a recovery code")
        self.last = at
        return code(self.secret, at)


def start_setup(auth):
    """POST /two-factor/setup as the logged-in user of `auth` (an AuthActions): the setup page's response."""
    response = auth.post("/two-factor/setup")
    assert response.status_code == 200, response.status_code
    return response


def turn_on(auth, password: str) -> TwoFactor:
    """Turn two-factor on for the logged-in user of `auth`, typing the secret into an "app" and its code back."""
    secret = secret_on(start_setup(auth).text)
    now = time.time()
    response = auth.post("/two-factor/enable", {"code": code(secret, now), "current_password": password})
    assert response.status_code == 200, response.status_code
    codes = recovery_codes_on(response.text)
    assert len(codes) == 10, f"{len(codes)} recovery codes on the page: {codes}"
    return TwoFactor(secret, codes, last=now)


def second_stage(auth, value: str, path: str = "/login/two-factor"):
    """POST a code (TOTP or recovery) to the second stage of a login."""
    return auth.post(path, {"code": value})
