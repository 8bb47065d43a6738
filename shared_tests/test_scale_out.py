"""Step 08 served as in production: gunicorn workers sharing PostgreSQL and Redis, and outages of both.

These start real servers: a PostgreSQL and a Redis of their own (services.py;
Debian's `postgresql` and `redis-server` packages), and the step under
gunicorn with FLASK_PRODUCTION=1 behind a pretend TLS proxy (FLASK_PROXY_COUNT=1:
the test sends what the proxy would, X-Forwarded-Proto: https). Without
PostgreSQL or Redis installed the tests are not collected at all, rather
than skipped: a skip in this suite only ever means "this step does not
teach that yet".
"""

import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

import pytest

from harness import launcher
from harness.accounts import USERS
from harness.pages import csrf_token
from harness.pages import links
from harness.pages import text
from harness.served import Browser
from harness.served import Server
from harness.served import assert_one_site
from harness.services import PostgresServer
from harness.services import RedisServer
from harness.services import environment_without
from harness.services import postgres_bindir
from harness.services import redis_server

# These tests start a PostgreSQL and a Redis of their own, whatever the run's
# configuration: in `nox -s tests-postgres` or `tests-redis`, which only
# change that configuration, they would repeat themselves, so they are
# collected once, in the plain run (and never skipped).
OWN_STORES_ONLY = not (os.environ.get("FLASK_REDIS_URL") or os.environ.get("FLASK_SQLALCHEMY_DATABASE_URI"))
CAN_RUN = bool(redis_server() and postgres_bindir()) and OWN_STORES_ONLY
FEATURES = ("production-settings", "migrations", "healthz", "server-sessions", "rate-limits", "login", "logout")
PER_USERNAME = 3


@pytest.fixture(scope="module")
def backing():
    """One PostgreSQL and one Redis for this file's tests; Redis keeps its data across a restart."""
    postgres, redis = PostgresServer(), RedisServer(durable=True)
    try:
        postgres.start()
        redis.start()
        yield postgres, redis
    finally:
        postgres.close()
        redis.close()


@pytest.fixture
def site(step, backing, tmp_path):
    """The environment of one site: a new database (migrated, with alice and bob) and keys of its own in Redis."""
    import sqlalchemy as sa

    postgres, redis = backing
    name = f"site_{uuid.uuid4().hex}"
    admin = sa.create_engine(postgres.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    env = environment_without()
    env.update(
        FLASK_PRODUCTION="1",
        FLASK_SECRET_KEY=uuid.uuid4().hex * 2,
        FLASK_PROXY_COUNT="1",
        # The site's own name, which the proxy forwards, and the servers' own
        # (for /healthz, asked directly): every other Host gets a 400.
        FLASK_TRUSTED_HOSTS=json.dumps([ProxiedBrowser.host, "127.0.0.1"]),
        FLASK_SQLALCHEMY_DATABASE_URI=sa.make_url(postgres.url).set(database=name).render_as_string(False),
        FLASK_REDIS_URL=redis.url,
        FLASK_SESSION_KEY_PREFIX=f"{name}:session:",
        FLASK_RATELIMIT_STORAGE_OPTIONS=json.dumps({"key_prefix": name}),
        FLASK_BCRYPT_LOG_ROUNDS="4",
        FLASK_LOGIN_LIMIT_PER_USERNAME=f"{PER_USERNAME} per 15 minutes",
    )
    flask = [sys.executable, "-m", "flask", "--app", str(step.path)]
    # As a deployment does: the migrations first, then the servers.
    steps = [["db", "upgrade"]]
    for username, user in USERS.items():
        steps.append(["create-user", username, "--email", user["email"]])
    for args in steps:
        password = USERS.get(args[1], {}).get("password", "") if args[0] == "create-user" else ""
        result = launcher.run(
            [*flask, *args],
            env=env,
            cwd=tmp_path,
            input=f"{password}\n{password}\n",
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, result.stdout + result.stderr
    return env


@pytest.fixture
def serve(step, site, tmp_path):
    """serve(): one more gunicorn server of the site, started and answering; all stopped after the test."""
    servers = []

    def start():
        server = Server(step, site, tmp_path / f"gunicorn-{len(servers)}.log", workers=2)
        servers.append(server)
        server.wait("/healthz")
        return server

    try:
        yield start
        for server in servers:
            assert server.errors() == [], f"the server logged a traceback; see {server.log}"
    finally:
        for server in servers:
            server.stop()


class ProxiedBrowser(Browser):
    """A browser reaching the site through its TLS proxy: HTTPS as far as the app knows.

    It sends what the proxy adds, and a same-origin Referer, as browsers do;
    it keeps Secure cookies too (the proxy's clients use HTTPS), and fails
    on any cookie that is not Secure, any 500 or traceback.
    """

    host = "login.example"

    def __init__(self):
        super().__init__(
            {
                "X-Forwarded-Proto": "https",
                "X-Forwarded-Host": self.host,
                "X-Forwarded-For": "198.51.100.7",
                "Referer": f"https://{self.host}/login",
            }
        )

    def request(self, server, path, form=None):
        status, page = super().request(server, path, form)
        for name, morsel in self.set_cookies.items():
            assert morsel["secure"], f"{name} is not Secure"
        assert status != 500, page
        assert "Traceback" not in page
        return status, page


def health(server):
    try:
        with urllib.request.urlopen(server.url + "/healthz", timeout=20) as response:
            return response.status, response.read().decode().strip()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode().strip()


if CAN_RUN:

    @pytest.mark.contract(
        "Two gunicorn servers sharing one PostgreSQL and one Redis act as one site: a login on one is valid "
        "on the other, a logout on one ends it on both, failed logins on both count towards one limit"
    )
    @pytest.mark.features(*FEATURES)
    def test_two_gunicorn_servers_act_as_one_site(serve):
        one, two = serve(), serve()
        assert health(one) == health(two) == (200, "ok")
        assert_one_site(one, two, ProxiedBrowser)
        # Failed logins for one name, spread over both servers and their workers.
        guesser = ProxiedBrowser()
        statuses = [guesser.log_in(server, "alice", "not the password")[0] for server in (one, two, one)]
        assert statuses == [200] * PER_USERNAME
        assert guesser.log_in(two, "alice")[0] == 429
        assert ProxiedBrowser().log_in(one, "alice")[0] == 429

    def outage_page(browser, server, path="/profile"):
        """The answer while a store is away: 503, an HTML page in the site's layout."""
        status, page = browser.request(server, path)
        headers = browser.answer_headers
        assert status == 503, (path, status, page)
        assert headers.get_content_type() == "text/html"
        assert "/login" in links(page) or "/" in links(page), "the 503 page lacks the site's navigation"
        assert "try again" in text(page).lower()
        assert "Content-Security-Policy" in headers

    @pytest.mark.contract(
        "When Redis or PostgreSQL goes away under a running server, pages and /healthz answer 503 at once (an HTML "
        "page in the site's layout, never a 500); when it is back the next requests work, with no restart and no "
        "account or session lost"
    )
    @pytest.mark.features(*FEATURES)
    @pytest.mark.parametrize("sessions_in", ["redis", "database"])
    def test_outages_of_redis_and_postgres(serve, backing, site, sessions_in):
        """With sessions and counts in Redis (Redis, then PostgreSQL, goes away), or all in PostgreSQL."""
        postgres, redis = backing
        stores = (redis, postgres)
        if sessions_in == "database":
            del site["FLASK_REDIS_URL"]  # sessions in the database, counts in each worker's memory
            stores = (postgres,)
        server = serve()
        alice = ProxiedBrowser()
        assert alice.log_in(server, remember=True) == (302, "/profile")
        assert alice.logged_in_as(server) == "alice"
        for store in stores:
            # bob opens the login form before the outage, and sends it during it.
            bob = ProxiedBrowser()
            form = {"username": "bob", "password": USERS["bob"]["password"]}
            form["csrf_token"] = csrf_token(bob.request(server, "/login")[1])
            store.stop()
            try:
                started = time.monotonic()
                for path in ("/profile", "/", "/login"):
                    outage_page(alice, server, path)
                status, page = bob.request(server, "/login", form)
                assert status == 503, (store, status, page)
                assert health(server)[0] == 503
                # Five answers, each at once: not after a string of retries with back-off.
                assert time.monotonic() - started < 3, f"{time.monotonic() - started:.1f} s for five answers"
            finally:
                store.start()
            assert health(server) == (200, "ok")
            assert alice.logged_in_as(server) == "alice", f"the session did not survive the {store} outage"
            assert bob.log_in(server, "bob") == (302, "/profile")
            assert bob.logged_in_as(server) == "bob"
        assert 500 not in alice.statuses
