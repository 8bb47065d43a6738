"""Figure 15: what the security log and the index of sessions add, the first step with them against the step before.

Both steps in this process (Flask's test client), side by side, in rounds
that take turns, once with sessions in the database (SQLite) and once in
Redis (a throwaway redis-server). Timed:

- a password login (bcrypt at 4 rounds), whose event the new step records
  and whose new session id it writes into the index;
- a logged-in GET /profile, which writes nothing new: "last seen" goes to
  the index at most once a minute. The target: at most 1.1 times the step
  before's.
"""

import statistics
import time

from common import in_process
from common import login_ms

from harness.apps import logged_in_browser
from harness.services import throwaway_redis

CHEAP_BCRYPT = {"FLASK_BCRYPT_LOG_ROUNDS": "4"}


def profile_ms(client, requests):
    """The median of `requests` logged-in GET /profile, in ms."""
    times = []
    for _ in range(requests):
        start = time.perf_counter()
        response = client.get("/profile")
        times.append(time.perf_counter() - start)
        assert response.status_code == 200, response.status_code
    return 1e3 * statistics.median(times)


def one_store(tmp, old, new, redis_url, rounds, logins, requests):
    """{step: {"login_ms", "profile_ms"}} for both steps on one store, medians over the rounds."""
    measured = {old.name: {"login": [], "profile": []}, new.name: {"login": [], "profile": []}}
    extra = CHEAP_BCRYPT
    with (
        in_process(tmp, old, "activity", redis_url, extra | {"FLASK_SESSION_KEY_PREFIX": "old:"}) as (before, _),
        in_process(tmp, new, "activity", redis_url, extra | {"FLASK_SESSION_KEY_PREFIX": "new:"}) as (after, _),
    ):
        browsers = {old.name: logged_in_browser(before).client, new.name: logged_in_browser(after).client}
        apps = {old.name: before, new.name: after}
        for name in apps:  # a first pass through each view, uncounted
            login_ms(apps[name])
            profile_ms(browsers[name], 5)
        for _ in range(rounds):
            for name, app in apps.items():
                measured[name]["login"].append(statistics.median(login_ms(app) for _ in range(logins)))
                measured[name]["profile"].append(profile_ms(browsers[name], requests))
    return {
        name: {kind: round(statistics.median(values), 3) for kind, values in times.items()}
        for name, times in measured.items()
    }


def measure(tmp, old, new, rounds=5, logins=20, requests=200):
    figure = {"steps": [old.name, new.name], "rounds": rounds, "logins": logins, "requests": requests}
    figure["database"] = one_store(tmp, old, new, None, rounds, logins, requests)
    with throwaway_redis() as redis_url:
        figure["redis"] = one_store(tmp, old, new, redis_url, rounds, logins, requests)
    for store in ("database", "redis"):
        times = figure[store]
        figure[f"{store}_login_added_ms"] = round(times[new.name]["login"] - times[old.name]["login"], 3)
        figure[f"{store}_profile_ratio"] = round(times[new.name]["profile"] / times[old.name]["profile"], 3)
    return figure
