"""Rate limits (step 06+): failed logins per username and per address, sign-ups per address.

Each test's app gets tiny limits through its configuration, and counts of
its own: a fresh store in memory, or keys under a new prefix when
FLASK_REDIS_URL puts the counts in Redis (then these same tests run there).
A test client stands for one client address through `environ_base`.
"""

import logging
import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from harness.accounts import USERS
from harness.accounts import took_sign_up
from harness.apps import AuthActions
from harness.apps import add_users
from harness.apps import browser
from harness.apps import close_database
from harness.pages import csrf_token
from harness.pages import links
from harness.pages import text
from harness.pages import words
from harness.served import Browser
from harness.served import serving
from harness.services import RedisServer
from harness.services import environment_without
from harness.services import free_port
from harness.services import redis_server

INVALID = "Invalid username or password."
FORM = "application/x-www-form-urlencoded"
# Small enough to reach in a few requests; long enough not to pass during a test.
PER_USERNAME = 3
PER_ADDRESS = 6
PER_ADDRESS_SIGN_UPS = 3
LIMITS = {
    "LOGIN_LIMIT_PER_USERNAME": f"{PER_USERNAME} per 15 minutes",
    "LOGIN_LIMIT_PER_ADDRESS": f"{PER_ADDRESS} per 15 minutes",
    "REGISTER_LIMIT_PER_ADDRESS": f"{PER_ADDRESS_SIGN_UPS} per 15 minutes",
}


@pytest.fixture(name="test_config")
def tiny_limits(test_config):
    """The suite's test configuration, with this file's tiny limits."""
    return test_config | LIMITS


def fail(auth, username, times=1):
    """Log in as `username` with a wrong password, `times` times; each must be an ordinary failure."""
    for _ in range(times):
        response = auth.login(username, "not the password")
        assert response.status_code == 200, f"a failed login answered {response.status_code}"
        assert INVALID in text(response.text)


def logged_in(response):
    return response.status_code in (302, 303) and response.headers["Location"] == "/profile"


def retry_after(response):
    """Retry-After as seconds; it must be there, a whole number, and positive."""
    value = response.headers.get("Retry-After")
    assert value is not None, "no Retry-After header"
    assert value.isdigit() and int(value) > 0, f"Retry-After: {value!r}"
    return int(value)


@pytest.mark.contract("Failed logins are counted per username: over the limit that username gets 429 from any address")
@pytest.mark.features("login", "rate-limits")
@pytest.mark.parametrize("spellings", [["alice"], ["alice", "ALICE", "Alice"]], ids=["same-case", "mixed-case"])
@pytest.mark.asvs("6.1.1", "6.3.1")
def test_a_locked_username_stays_locked_from_another_address(app, spellings):
    """Counted whatever the letter case, as login ignores it; the count is the name's, not the address's."""
    for n in range(PER_USERNAME):
        # Each failure from an address of its own: only a per-username count adds them up.
        fail(browser(app, f"198.51.100.{n + 1}"), spellings[n % len(spellings)])
    elsewhere = browser(app, "203.0.113.9")
    assert elsewhere.login("alice", "not the password").status_code == 429
    assert elsewhere.login("alice").status_code == 429  # the right password too


@pytest.mark.contract(
    "A lockout stops new logins only: the user's sessions, remembered ones too, go on working through it"
)
@pytest.mark.features("login", "rate-limits", "remember", "profile")
@pytest.mark.asvs("6.1.1")
def test_a_lockout_leaves_the_users_sessions_alone(app):
    """What a stranger who locks alice's name cannot do: log her out."""
    at_home, remembered = browser(app, "198.51.100.1"), browser(app, "198.51.100.2")
    assert logged_in(at_home.login("alice"))
    assert logged_in(remembered.login("alice", remember="y"))
    fail(browser(app, "203.0.113.9"), "alice", PER_USERNAME)
    assert browser(app, "203.0.113.10").login("alice").status_code == 429  # locked
    for kind, kept in (("session", at_home), ("remembered", remembered)):
        page = kept.client.get("/profile")
        assert page.status_code == 200, f"{kind}: {page.status_code} during the lockout"
        assert "alice" in words(page.text), kind


@pytest.mark.contract(
    "Failed logins are counted per client address: other usernames from that address work until its own limit"
)
@pytest.mark.features("login", "rate-limits")
@pytest.mark.asvs("6.3.1")
def test_another_username_from_the_same_address_waits_for_the_address_limit(app):
    same = browser(app, "198.51.100.1")
    fail(same, "alice", PER_USERNAME)
    assert same.login("alice").status_code == 429
    # bob, from the very same address, is not locked: his own name has no failures.
    assert logged_in(same.login("bob"))
    same = browser(app, "198.51.100.1")  # logged out again: a new browser, same address
    # Fewer than PER_USERNAME failures for each name, so only the address counts them all.
    names = [f"user{n}" for n in range(PER_ADDRESS - PER_USERNAME)]
    for name in names:
        fail(same, name)
    assert same.login("bob", "not the password").status_code == 429
    assert same.login("bob").status_code == 429
    # Another address is not affected.
    assert logged_in(browser(app, "203.0.113.9").login("bob"))


@pytest.mark.contract("Over a limit, POST /login answers 429 with Retry-After, even for the right password")
@pytest.mark.features("login", "rate-limits")
@pytest.mark.asvs("6.3.1")
def test_the_right_password_during_a_lockout_gets_429_with_retry_after(app, client):
    auth = browser(app, "198.51.100.1")
    fail(auth, "alice", PER_USERNAME)
    response = auth.login("alice")
    assert response.status_code == 429
    assert 0 < retry_after(response) <= 15 * 60 + 2
    # Nothing about the password leaks, and nobody was logged in.
    assert text(response.text) == text(auth.login("alice", "not the password").text)
    assert auth.client.get("/profile").status_code in (302, 303)


@pytest.mark.contract("A successful login does not count towards the limit")
@pytest.mark.features("login", "logout", "rate-limits")
def test_a_successful_login_does_not_count(app):
    auth = browser(app, "198.51.100.1")
    fail(auth, "alice", PER_USERNAME - 1)
    for _ in range(PER_ADDRESS + 1):  # more than any limit
        assert logged_in(auth.login("alice"))
        auth.logout()
    fail(auth, "alice")  # the last failure the limit allows...
    assert auth.login("alice").status_code == 429  # ...and then no more


@pytest.mark.contract("The 429 page is in the site's layout and says when to try again; no traceback")
@pytest.mark.features("login", "rate-limits")
def test_the_429_page_is_in_the_layout_and_says_when(app, client):
    # The layout: the links every page has (the home page and the login page share them).
    layout = set(links(client.get("/").text)) & set(links(client.get("/login").text))
    auth = browser(app, "198.51.100.1")
    fail(auth, "alice", PER_USERNAME)
    response = auth.login("alice")
    assert response.status_code == 429
    assert response.mimetype == "text/html"
    assert layout <= set(links(response.text)), "the 429 page lacks the site's navigation"
    shown = text(response.text)
    assert "Traceback" not in response.text
    assert "try again" in shown.lower()
    # When: a number of seconds or minutes, that agrees with Retry-After.
    seconds = retry_after(response)
    expected = {str(seconds), str(round(seconds / 60)), str(-(-seconds // 60))}
    assert expected & set(shown.replace(".", " ").split()), f"no wait of {seconds} s in: {shown!r}"


@pytest.mark.contract("When the window has passed, the username can log in again")
@pytest.mark.features("login", "rate-limits")
@pytest.mark.asvs("6.1.1")
def test_the_lock_ends_when_the_window_passes(step, create_app, test_config, pass_time):
    app = create_app(test_config | {"LOGIN_LIMIT_PER_USERNAME": "2 per 2 seconds"})
    try:
        add_users(app, step)
        auth = browser(app, "198.51.100.1")
        fail(auth, "alice", 2)
        locked = auth.login("alice")
        assert locked.status_code == 429
        wait = retry_after(locked)
        assert wait <= 3
        pass_time(wait)
        for _ in range(10):
            if (response := auth.login("alice")).status_code != 429:
                break
            pass_time(0.2)  # the store's clock may round up to the next second
        assert logged_in(response)
    finally:
        close_database(app)


@pytest.mark.contract(
    "Without FLASK_REDIS_URL each server process keeps its own counts in memory: "
    "a second process starts with none and leaves the first's alone"
)
@pytest.mark.features("login", "rate-limits")
def test_each_process_keeps_its_own_counts_in_memory(step, app, test_config, tmp_path):
    """Why production shares the counts: two `flask run` processes of one site, each counting alone."""
    env = server_env(test_config)  # no FLASK_REDIS_URL: counts in each process's memory
    with serving(step, env, tmp_path / "one.log") as one, serving(step, env, tmp_path / "two.log") as two:
        for _ in range(PER_USERNAME):
            assert Browser().log_in(one, "alice", "not the password")[0] == 200
        assert Browser().log_in(one, "alice")[0] == 429
        # The other process has counted nothing: a guesser gets the limit's tries again there.
        assert Browser().log_in(two, "alice")[0] in (302, 303)
        assert Browser().log_in(one, "alice")[0] == 429  # and the first still keeps its own


@pytest.mark.contract("POST /register is limited per client address (step 06+)")
@pytest.mark.features("registration", "register-limit")
def test_sign_ups_are_limited_per_address(step, app):
    form = {"username": "carol", "email": "carol@example.com", "password": "short", "confirm_password": "short"}
    same = browser(app, "198.51.100.1")
    for _ in range(PER_ADDRESS_SIGN_UPS):  # failed sign-ups count too
        assert same.post("/register", form).status_code == 200
    good = form | {"password": "a-long-passphrase", "confirm_password": "a-long-passphrase"}
    refused = same.post("/register", good)
    assert refused.status_code == 429
    retry_after(refused)
    # From another address the same sign-up works.
    other = browser(app, "203.0.113.9").post("/register", good)
    assert took_sign_up(step, other)


# (id, body): each posted PER_USERNAME times, then once more. TOKEN becomes
# the CSRF token. Every one must still count, against one username's key.
HOSTILE = [
    ("missing-username", b"csrf_token=TOKEN&password=x"),
    ("empty-username", b"csrf_token=TOKEN&username=&password=x"),
    ("huge-username", b"csrf_token=TOKEN&password=x&username=" + b"a" * 100_000),
    ("non-utf8-username", b"csrf_token=TOKEN&username=%FF%FEalice&password=x"),
    ("nul-in-username", b"csrf_token=TOKEN&username=ali%00ce&password=x"),
    ("repeated-username", b"csrf_token=TOKEN&username=nobody&username=alice&password=x"),
    ("bad-percent-escapes", b"csrf_token=TOKEN&username=%zz%&password=%"),
]


@pytest.mark.contract("A missing, garbled or huge username still counts towards a limit, and never causes a 500")
@pytest.mark.features("login", "rate-limits")
@pytest.mark.parametrize("body", [case[1] for case in HOSTILE], ids=[case[0] for case in HOSTILE])
def test_hostile_login_bodies_are_counted(app, body):
    auth = browser(app, "198.51.100.1")
    answers = []
    for _ in range(PER_USERNAME + 1):
        body_with_token = body.replace(b"TOKEN", auth.token().encode())
        response = auth.client.post("/login", data=body_with_token, content_type=FORM)
        assert "Traceback" not in response.text
        answers.append(response.status_code)
    # Counted as failures of one username: locked after PER_USERNAME, long
    # before the address's limit. A key that came out empty would not count.
    assert answers == [200] * PER_USERNAME + [429]
    # alice, elsewhere, is not locked by any of this.
    assert logged_in(browser(app, "203.0.113.9").login("alice"))


def assert_outage_page(response, what="the answer"):
    """The answer while Redis does not answer: 503 and Retry-After, a page in the site's layout, no traceback."""
    assert response.status_code == 503, f"{what}: {response.status_code}, {text(response.text)[:200]}"
    assert response.mimetype == "text/html"
    retry_after(response)
    # The layout's header: the home link, and the way to log in (or to the profile, for someone logged in).
    shown = set(links(response.text))
    assert "/" in shown and shown & {"/login", "/profile"}, f"the 503 page lacks the site's navigation: {shown}"
    assert "try again" in text(response.text).lower()
    assert "Traceback" not in response.text


@pytest.mark.contract(
    "When the store of counts does not answer, every page answers 503 with a page, and no login goes through, "
    "never a 500 or a traceback"
)
@pytest.mark.features("login", "rate-limits")
@pytest.mark.asvs("16.5.2")
def test_a_store_that_does_not_answer_is_no_500(step, create_app, test_config):
    # A Redis URL where nothing listens: the store fails on every request.
    app = create_app(test_config | {"RATELIMIT_STORAGE_URI": f"redis://127.0.0.1:{free_port()}/0"})
    try:
        add_users(app, step)
        # Closed: no password is checked uncounted, not even the right one.
        for username, password in [("alice", "not the password"), ("alice", USERS["alice"]["password"])]:
            assert_outage_page(AuthActions(app.test_client()).login(username, password))
        assert_outage_page(app.test_client().get("/login"))  # and the form says so before it is filled in
    finally:
        close_database(app)


# Two servers sharing one Redis need a Redis: the one FLASK_REDIS_URL names,
# or a throwaway redis-server started here (Debian's `redis-server` package).
# With neither, the test is not collected at all, rather than skipped: a
# skip in this suite only ever means "this step does not teach that yet".
CAN_REACH_REDIS = bool(os.environ.get("FLASK_REDIS_URL") or redis_server())


# Simultaneous wrong passwords for one username: ten times the limit.
BURST = 10 * PER_USERNAME


@pytest.fixture
def slow_users(step, create_app, test_config):
    """alice and bob in the test's database, their passwords hashed at bcrypt cost 10: tens of ms a check.

    As on a real site (cost 12), each request spends a while checking a
    password, so that requests sent together are there together.
    """
    app = create_app(test_config | {"BCRYPT_LOG_ROUNDS": 10})
    add_users(app, step)
    yield
    close_database(app)


def burst(servers, path, wrong, right, browsers=None):
    """BURST copies of the form `wrong` POSTed to `path` at one moment, and `right` once a 429 says the limit is used.

    Each from a browser of its own (of `browsers`, or a new one), with the
    CSRF token of its own session, fetched first; in turn on each server of
    `servers`. Returns the wrong ones' (status, page text) and the right one's status.
    """
    browsers = browsers or [Browser() for _ in range(BURST + 1)]
    on = [servers[n % len(servers)] for n in range(BURST + 1)]
    forms = [dict(wrong) for _ in range(BURST)] + [dict(right)]
    for n, visitor in enumerate(browsers):
        forms[n]["csrf_token"] = csrf_token(visitor.request(on[n], path)[1])
    start = threading.Barrier(BURST + 1)
    limit_used = threading.Event()

    def post(n):
        start.wait()
        if n == BURST:
            limit_used.wait(timeout=10)  # the right password: once the wrong ones have used the limit
        status, page = browsers[n].request(on[n], path, forms[n])
        if status == 429:
            limit_used.set()
        return status, text(page)

    with ThreadPoolExecutor(BURST + 1) as pool:
        answers = list(pool.map(post, range(BURST + 1)))
    return answers[:BURST], answers[BURST][0]


def login_burst(servers, username):
    """burst() at /login: wrong passwords for `username`, then the right one."""
    wrong = {"username": username, "password": "not the password"}
    return burst(servers, "/login", wrong, wrong | {"password": USERS[username]["password"]})


def assert_at_most_the_limit_checked(wrong, right, message=INVALID):
    """At most PER_USERNAME of the burst had their password checked (the form again); the rest, and the right one, 429."""
    statuses = [status for status, _ in wrong]
    assert set(statuses) <= {200, 429}, f"answers to wrong passwords: {statuses}"
    checked = [page for status, page in wrong if status == 200]
    assert all(message in page for page in checked)
    assert len(checked) <= PER_USERNAME, f"{len(checked)} of {BURST} simultaneous wrong passwords were checked"
    assert right == 429, f"the right password, sent once the limit was used, answered {right}"


@pytest.mark.contract(
    "Simultaneous failed logins for one username check at most the limit's number of passwords, "
    "and the rest get 429, the right password too (a threaded server, counts in memory)"
)
@pytest.mark.features("login", "rate-limits")
@pytest.mark.usefixtures("slow_users")
def test_simultaneous_failed_logins_check_at_most_the_limit(step, test_config, tmp_path):
    with serving(step, server_env(test_config), tmp_path / "server.log") as server:
        assert_at_most_the_limit_checked(*login_burst([server], "alice"))


@pytest.mark.contract(
    "Simultaneous wrong current passwords at /change-password check at most the limit's number of passwords, "
    "and the rest get 429, the right one too (step 07+)"
)
@pytest.mark.features("change-password", "rate-limits")
@pytest.mark.usefixtures("slow_users")
def test_simultaneous_wrong_current_passwords_check_at_most_the_limit(step, test_config, tmp_path):
    """As at /login: alice logged in in BURST + 1 browsers, each sending a change at the same moment."""
    with serving(step, server_env(test_config), tmp_path / "server.log") as server:
        browsers = [Browser() for _ in range(BURST + 1)]
        for browser in browsers:
            assert browser.log_in(server) == (302, "/profile")  # a success each: none counts
        new = {"password": "a-brand-new-passphrase", "confirm_password": "a-brand-new-passphrase"}
        wrong = new | {"current_password": "not the password"}
        right = new | {"current_password": USERS["alice"]["password"]}
        answers = burst([server], "/change-password", wrong, right, browsers)
        assert_at_most_the_limit_checked(*answers, message="That is not your current password.")


def server_env(test_config, **more):
    """The environment of a `flask run` of the step: the database `app` made (alice and bob), the tiny limit per username."""
    env = environment_without()
    env.update(
        FLASK_SECRET_KEY="only-for-tests",
        # The database `app` made, with alice and bob: every server shares it.
        FLASK_SQLALCHEMY_DATABASE_URI=test_config["SQLALCHEMY_DATABASE_URI"],
        FLASK_BCRYPT_LOG_ROUNDS="4",
        FLASK_LOGIN_LIMIT_PER_USERNAME=LIMITS["LOGIN_LIMIT_PER_USERNAME"],
        **more,
    )
    return env


def redis_env(test_config, redis_url):
    """server_env, with sessions and counts in the Redis at `redis_url`, under keys of this test's own."""
    # A key prefix of this test's own in a Redis others may share (read as JSON).
    prefix = f'{{"key_prefix": "test-{uuid.uuid4().hex}"}}'
    return server_env(test_config, FLASK_REDIS_URL=redis_url, FLASK_RATELIMIT_STORAGE_OPTIONS=prefix)


if CAN_REACH_REDIS:

    @pytest.mark.contract("With FLASK_REDIS_URL, failed logins on two server processes count towards one limit")
    @pytest.mark.features("login", "rate-limits")
    def test_two_servers_sharing_redis_count_towards_one_limit(step, app, test_config, redis_url, tmp_path):
        """Each server alone sees fewer failures than the limit; together they reach it."""
        env = redis_env(test_config, redis_url)
        with serving(step, env, tmp_path / "one.log") as one, serving(step, env, tmp_path / "two.log") as two:
            wrong = "not the password"

            def attempt(server, username, password=None):
                """A login by a new browser: its status."""
                return Browser().log_in(server, username, password)[0]

            statuses = [attempt(one, "alice", wrong), attempt(two, "alice", wrong), attempt(one, "alice", wrong)]
            assert statuses == [200] * PER_USERNAME
            # Two failures on one, one on two: only a shared count has reached the limit.
            assert attempt(two, "alice") == 429
            assert attempt(one, "alice") == 429
            assert attempt(two, "bob") in (302, 303)

    @pytest.mark.contract(
        "With FLASK_REDIS_URL, simultaneous failed logins on two server processes check at most the limit's "
        "number of passwords, and the rest get 429, the right password too"
    )
    @pytest.mark.features("login", "rate-limits")
    @pytest.mark.usefixtures("slow_users")
    def test_simultaneous_failed_logins_on_two_servers_check_at_most_the_limit(step, test_config, redis_url, tmp_path):
        env = redis_env(test_config, redis_url)
        with serving(step, env, tmp_path / "one.log") as one, serving(step, env, tmp_path / "two.log") as two:
            assert_at_most_the_limit_checked(*login_burst([one, two], "alice"))


# The outage tests below start a redis-server of their own, and stop or
# pause it under the running app, whatever FLASK_REDIS_URL says: under
# `nox -s tests-redis` they would only repeat themselves, so they are
# collected once, in the plain run, and not at all without redis-server.
CAN_START_REDIS = bool(redis_server()) and not os.environ.get("FLASK_REDIS_URL")

# What that Redis holds: the counts alone (the sessions in the step's
# database), or the sessions and the counts, as FLASK_REDIS_URL does.
REDIS_HOLDS = {
    "counts": lambda url: {"REDIS_URL": None, "RATELIMIT_STORAGE_URI": url},
    "sessions-and-counts": lambda url: {"REDIS_URL": url},
}


@pytest.fixture
def own_redis():
    """A redis-server of this test's own, to stop or pause under the app."""
    server = RedisServer()
    server.start()
    yield server
    server.close()


@pytest.fixture(params=list(REDIS_HOLDS))
def redis_app(request, step, create_app, test_config, own_redis):
    """The step's app, alice and bob in its database, keeping the counts (and perhaps the sessions) in `own_redis`.

    TESTING is off, as on a server: an error becomes a 500 and a traceback
    in the log, as a visitor would meet it, not an exception in the test.
    """
    app = create_app(test_config | REDIS_HOLDS[request.param](own_redis.url) | {"TESTING": False})
    add_users(app, step)
    yield app
    close_database(app)


def visit(app, method, path, cookie=None, form=None):
    """One request from a browser of its own, holding the session cookie `cookie` if any: (answer, seconds)."""
    client = app.test_client()
    if cookie is not None:
        client.set_cookie(app.config["SESSION_COOKIE_NAME"], cookie)
    started = time.monotonic()
    response = client.open(path, method=method, data=form)
    return response, time.monotonic() - started


if CAN_START_REDIS:

    @pytest.mark.contract(
        "When Redis does not answer (stopped or paused), whether it holds the counts alone or the sessions too, "
        "every page answers 503 within a few seconds (each store call gives up after 1 s), never a 500; a login "
        "sent meanwhile does not go through; the next request after Redis is back works"
    )
    @pytest.mark.features("login", "profile", "registration", "server-sessions", "rate-limits")
    @pytest.mark.parametrize("outage", ["stopped", "paused"])
    @pytest.mark.asvs("16.5.2")
    def test_while_redis_does_not_answer_every_page_is_503(redis_app, own_redis, outage, caplog):
        """Paused (SIGSTOP) is the harder case: Redis takes the connection and never answers."""
        app = redis_app
        name = app.config["SESSION_COOKIE_NAME"]
        alice = app.test_client()
        assert logged_in(AuthActions(alice).login("alice"))
        # bob opens the login form before the outage, and sends it, with the right password, during it.
        bob = app.test_client()
        form = {"username": "bob", "password": USERS["bob"]["password"], "csrf_token": AuthActions(bob).token()}
        visits = [
            ("GET", path, cookie)
            for path in ("/", "/login", "/register", "/profile")
            for cookie in (None, alice.get_cookie(name).value)
        ]
        visits.append(("POST", "/login", bob.get_cookie(name).value, form))
        own_redis.stop() if outage == "stopped" else own_redis.pause()
        try:
            # All at once, each from a browser of its own: a paused Redis costs each one its timeout.
            with ThreadPoolExecutor(len(visits)) as pool:
                answers = list(pool.map(lambda one: visit(app, *one), visits))
        finally:
            own_redis.start() if outage == "stopped" else own_redis.resume()
        for (method, path, cookie, *_), (response, seconds) in zip(visits, answers, strict=True):
            what = f"{method} {path} {'with' if cookie else 'without'} a session cookie"
            assert_outage_page(response, what)
            # Under 4 s: far from what redis-py would wait unconfigured (5 s a try, and
            # more with its retries), with room for a busy machine (once 2.07 s in CI).
            assert seconds < 4, f"{what} took {seconds:.1f} s to answer"
        # One line in the log for each at most, and no traceback.
        assert not [record.getMessage() for record in caplog.records if record.exc_info]
        assert len([record for record in caplog.records if record.levelno >= logging.ERROR]) <= len(visits)
        # Redis is back: bob's login did not go through, and he can log in now...
        assert bob.get("/profile").status_code in (302, 303)
        assert logged_in(AuthActions(bob).login("bob"))
        assert bob.get("/profile").status_code == 200
        # ...and failures count again.
        fail(browser(app, "198.51.100.1"), "alice", PER_USERNAME)
        assert browser(app, "203.0.113.9").login("alice").status_code == 429

    @pytest.mark.contract(
        "When the sessions' Redis stops taking writes in the middle of a request (logging out rewrites the session), "
        "the answer is the 503 page, never a 500"
    )
    @pytest.mark.features("logout", "server-sessions", "rate-limits")
    def test_a_redis_that_stops_taking_writes_is_no_500(step, create_app, test_config, own_redis, caplog):
        """CLIENT PAUSE ... WRITE: reads answer (the session, the check before every page), writes wait."""
        import redis  # here, not on top: only steps with server sessions install it

        app = create_app(test_config | REDIS_HOLDS["sessions-and-counts"](own_redis.url) | {"TESTING": False})
        try:
            add_users(app, step)
            alice = AuthActions(app.test_client())
            assert logged_in(alice.login("alice"))
            token = alice.token()
            admin = redis.Redis.from_url(own_redis.url)
            # Longer than any timeout of the app's: every write it tries meanwhile fails.
            admin.execute_command("CLIENT", "PAUSE", 10_000, "WRITE")
            try:
                response = alice.client.post("/logout", data={"csrf_token": token})
            finally:
                admin.execute_command("CLIENT", "UNPAUSE")
                admin.close()
            assert_outage_page(response, "POST /logout")
            assert not [record.getMessage() for record in caplog.records if record.exc_info]
        finally:
            close_database(app)
