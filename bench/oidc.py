"""Figure 14: a whole sign-in with an OpenID provider, split into the site's share and the provider's.

The first step with `openid-connect`, in this process on its SQLite
database (Flask's test client), against the tests' provider
(harness/oidc.py: oidc-provider in Node.js on loopback). Each round, a new
visitor signs in as a provider account of its own, which this site then
knows (its second sign-in): the provider remembers no one across
browsers, so each round walks its login and consent pages. Timed apart:
the site's two requests (POST /login/oidc; the callback, which includes
the site's own request to the provider's token endpoint, timed too), and
the browser's walk through the provider's pages.
"""

import statistics
import time

import requests
from common import in_process

from harness.apps import AuthActions
from harness.oidc import ProviderUser
from harness.oidc import back_at_the_app
from harness.oidc import start_sign_in
from harness.oidc import test_provider


class TokenTimer:
    """The time of the site's requests to the token endpoint, from requests' own clock (`response.elapsed`)."""

    def __init__(self):
        self.times = []
        self.send = requests.Session.send

    def __enter__(self):
        timer = self

        def send(session, request, **kwargs):
            response = timer.send(session, request, **kwargs)
            if request.url.endswith("/token"):
                timer.times.append(response.elapsed.total_seconds())
            return response

        requests.Session.send = send
        return self

    def __exit__(self, *exc):
        requests.Session.send = self.send


def measure(tmp, step, rounds=30):
    with test_provider() as provider:
        extra = {"FLASK_BCRYPT_LOG_ROUNDS": "4"} | {f"FLASK_{name}": value for name, value in provider.config().items()}
        site, pages, token = [], [], []
        with in_process(tmp, step, "oidc", extra=extra) as (app, _), TokenTimer() as timer:
            for i in range(rounds + 1):
                login = f"bench{i:03d}"
                for _ in range(2):  # the first sign-in makes the account; the second is timed
                    auth = AuthActions(app.test_client())
                    auth.token()  # the login page, untimed
                    start = time.perf_counter()
                    authorize = start_sign_in(auth)
                    started = time.perf_counter()
                    callback = ProviderUser(login).sign_in(authorize)
                    walked = time.perf_counter()
                    response = back_at_the_app(auth, callback)
                    done = time.perf_counter()
                    assert response.headers.get("Location") == "/profile", response.headers.get("Location")
                if i:  # the first round warms the views, and fetches discovery and the keys
                    site.append((started - start) + (done - walked))
                    pages.append(walked - started)
                    token.append(timer.times[-1])
    return {
        "step": step.name,
        "site_ms": round(1e3 * statistics.median(site), 2),
        "token_ms": round(1e3 * statistics.median(token), 2),
        "provider_pages_ms": round(1e3 * statistics.median(pages), 2),
        "rounds": rounds,
    }
