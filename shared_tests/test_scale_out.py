"""Step 08 served as in production: gunicorn workers sharing PostgreSQL and Redis, and outages of both.

These start real servers: a PostgreSQL and a Redis of their own (services.py;
Debian's `postgresql` and `redis-server` packages), and the step under
gunicorn with FLASK_PRODUCTION=1 behind a pretend TLS proxy (FLASK_PROXY_COUNT=1:
the test sends what the proxy would, X-Forwarded-Proto: https). Without
PostgreSQL or Redis installed the tests are not collected at all, rather
than skipped: a skip in this suite only ever means "this step does not
teach that yet".
"""

import contextlib
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from http.cookies import SimpleCookie

import pytest

from conftest import USERS
from pages import csrf_token
from pages import links
from pages import text
from pages import words
from services import PostgresServer
from services import RedisServer
from services import environment_without
from services import free_port
from services import gunicorn_command
from services import postgres_bindir
from services import redis_server
from services import stop_process

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
        FLASK_TRUSTED_HOSTS=json.dumps([Browser.host, "127.0.0.1"]),
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
        result = subprocess.run(
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


class Gunicorn:
    """The step under gunicorn, with several workers, on a free loopback port."""

    def __init__(self, step, env, folder, workers=2):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = folder / f"gunicorn-{self.port}.log"
        command = gunicorn_command(step.path, self.port, workers)
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(command, env=env, cwd=folder, stdout=log, stderr=log)

    def wait(self, timeout=60):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn stopped at start-up:\n{self.log.read_text()}")
            with contextlib.suppress(OSError), urllib.request.urlopen(self.url + "/healthz", timeout=2):
                return
            time.sleep(0.1)
        raise RuntimeError(f"gunicorn did not answer in {timeout} s:\n{self.log.read_text()}")

    def stop(self):
        stop_process(self.process, timeout=20)

    def tracebacks(self):
        return [line for line in self.log.read_text(errors="replace").splitlines() if "Traceback" in line]


@pytest.fixture
def serve(step, site, tmp_path):
    """serve(): one more gunicorn server of the site, started and answering; all stopped after the test."""
    servers = []

    def start():
        server = Gunicorn(step, site, tmp_path)
        servers.append(server)
        server.wait()
        return server

    try:
        yield start
        for server in servers:
            assert server.tracebacks() == [], f"the server logged a traceback; see {server.log}"
    finally:
        for server in servers:
            server.stop()


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None


class Browser:
    """A browser reaching the site through its TLS proxy: HTTPS as far as the app knows.

    It keeps cookies by name (Secure ones too: the proxy's clients use HTTPS)
    and sends a same-origin Referer, as browsers do; every status it sees is kept.
    """

    opener = urllib.request.build_opener(_NoRedirects)
    host = "login.example"

    def __init__(self):
        self.cookies = {}
        self.statuses = []

    def request(self, server, path, form=None):
        """GET (or POST `form`): (status, Location or page text, headers)."""
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        request = urllib.request.Request(server.url + path, data=data)
        request.add_header("X-Forwarded-Proto", "https")
        request.add_header("X-Forwarded-Host", self.host)
        request.add_header("X-Forwarded-For", "198.51.100.7")
        request.add_header("Referer", f"https://{self.host}/login")
        if self.cookies:
            request.add_header("Cookie", "; ".join(f"{name}={value}" for name, value in self.cookies.items()))
        try:
            response = self.opener.open(request, timeout=20)
        except urllib.error.HTTPError as error:
            response = error
        with response:
            for header in response.headers.get_all("Set-Cookie") or []:
                cookie = SimpleCookie()
                cookie.load(header)
                for name, morsel in cookie.items():
                    assert morsel["secure"], f"{name} is not Secure"
                    if morsel.value and morsel["max-age"] != "0":
                        self.cookies[name] = morsel.value
                    else:
                        self.cookies.pop(name, None)
            body = response.read().decode(errors="replace")
            self.statuses.append(response.status)
            assert response.status != 500, body
            assert "Traceback" not in body
            return response.status, response.headers.get("Location") or body, response.headers

    def post(self, server, path, fields=None):
        status, page, _ = self.request(server, "/login")
        if status != 200:
            status, page, _ = self.request(server, "/")
        return self.request(server, path, {**(fields or {}), "csrf_token": csrf_token(page) or ""})[:2]

    def log_in(self, server, username="alice", password=None, remember=False):
        fields = {"username": username, "password": password or USERS[username]["password"]}
        if remember:
            fields["remember"] = "y"
        return self.post(server, "/login", fields)

    def logged_in_as(self, server):
        """The username /profile shows, or None when it sends us to log in."""
        status, page, _ = self.request(server, "/profile")
        if status in (302, 303):
            assert page.startswith("/login"), page
            return None
        assert status == 200, (status, page)
        return next(name for name in USERS if name in words(page))


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
        alice, bob = Browser(), Browser()
        assert alice.log_in(one) == (302, "/profile")
        assert bob.log_in(two, "bob", remember=True) == (302, "/profile")
        for server in (one, two, one, two):  # several requests: each may reach another worker
            assert alice.logged_in_as(server) == "alice"
            assert bob.logged_in_as(server) == "bob"
        thief = Browser()
        thief.cookies = dict(alice.cookies)
        assert alice.post(two, "/logout")[0] in (302, 303)
        for server in (one, two):
            assert alice.logged_in_as(server) is None
            assert thief.logged_in_as(server) is None
            assert bob.logged_in_as(server) == "bob"
        # Failed logins for one name, spread over both servers and their workers.
        guesser = Browser()
        statuses = [guesser.log_in(server, "alice", "not the password")[0] for server in (one, two, one)]
        assert statuses == [200] * PER_USERNAME
        assert guesser.log_in(two, "alice")[0] == 429
        assert Browser().log_in(one, "alice")[0] == 429

    def outage_page(browser, server, path="/profile"):
        """The answer while a store is away: 503, an HTML page in the site's layout."""
        status, page, headers = browser.request(server, path)
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
        alice = Browser()
        assert alice.log_in(server, remember=True) == (302, "/profile")
        assert alice.logged_in_as(server) == "alice"
        for store in stores:
            # bob opens the login form before the outage, and sends it during it.
            bob = Browser()
            form = {"username": "bob", "password": USERS["bob"]["password"]}
            form["csrf_token"] = csrf_token(bob.request(server, "/login")[1])
            store.stop()
            try:
                started = time.monotonic()
                for path in ("/profile", "/", "/login"):
                    outage_page(alice, server, path)
                status, page, _ = bob.request(server, "/login", form)
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
