"""Production (step 08): settings for a server behind a TLS proxy, security headers, a health check.

The settings come from the environment, as on a real server: each test sets
FLASK_PRODUCTION or FLASK_PROXY_COUNT with monkeypatch before it makes the
app, and the refusal to start is seen from outside, in a process of its own.
"""

import os
import sys
from http.cookies import SimpleCookie

import pytest

from harness import launcher
from harness.accounts import USERS
from harness.apps import AuthActions
from harness.apps import add_users
from harness.apps import close_database
from harness.pages import inline_code
from harness.services import environment_without
from harness.services import free_port
from harness.steps import copy_app

# Referrer-Policy values that still send this site's own pages as Referer
# (Flask-WTF refuses an HTTPS POST whose Referer is not this site), and no
# full URL to other sites: at most the origin. Not "unsafe-url" nor
# "no-referrer-when-downgrade", which send another site the whole address,
# a reset link's token included.
SAFE_REFERRER_POLICIES = {
    "same-origin",
    "origin",
    "strict-origin",
    "origin-when-cross-origin",
    "strict-origin-when-cross-origin",
}


@pytest.fixture
def make_app(step, create_app, test_config, monkeypatch):
    """make_app(FLASK_NAME=value, ...): the step's app made with those environment variables, alice and bob in it."""
    made = []

    def make(**environment):
        for name in [name for name in os.environ if name.startswith(("FLASK_PRODUCTION", "FLASK_PROXY_COUNT"))]:
            monkeypatch.delenv(name)
        for name, value in environment.items():
            monkeypatch.setenv(name, value)
        config = dict(test_config)
        if "FLASK_SECRET_KEY" in environment:
            del config["SECRET_KEY"]  # the environment's key, not the tests' one
        app = create_app(config)
        made.append(app)
        add_users(app, step)
        return app

    yield make
    for app in made:
        close_database(app)


def directives(policy):
    """A Content-Security-Policy as {directive: [sources]}."""
    parsed = {}
    for part in policy.split(";"):
        name, *sources = part.split()
        if name:
            parsed.setdefault(name.lower(), [source.lower() for source in sources])
    return parsed


def sources_for(policy, directive):
    """The sources the browser allows for `directive`, falling back to default-src as browsers do."""
    return policy.get(directive, policy.get("default-src"))


def check_security_headers(response):
    policy_header = response.headers.get("Content-Security-Policy")
    assert policy_header, f"no Content-Security-Policy on a {response.status_code}"
    policy = directives(policy_header)
    assert policy.get("frame-ancestors") == ["'none'"], policy_header
    for directive in ("script-src", "style-src"):
        sources = sources_for(policy, directive)
        assert sources is not None, f"{directive} is not restricted: {policy_header}"
        assert "'unsafe-inline'" not in sources and "*" not in sources, policy_header
    # No plugins at all; no <base> that would send relative links and forms elsewhere
    # (base-uri does not fall back to default-src).
    assert sources_for(policy, "object-src") == ["'none'"], policy_header
    assert policy.get("base-uri") == ["'none'"], policy_header
    assert response.headers.get("X-Content-Type-Options") == "nosniff"
    referrer = response.headers.get("Referrer-Policy", "")
    # Of a comma-separated list, the browser uses the last value it knows.
    known = [value.strip().lower() for value in referrer.split(",") if value.strip()]
    assert known and known[-1] in SAFE_REFERRER_POLICIES, f"Referrer-Policy: {referrer!r}"


# (id, how to get the response, status): pages, redirects and errors alike.
RESPONSES = [
    ("home", lambda client, auth: client.get("/"), 200),
    ("login-page", lambda client, auth: client.get("/login"), 200),
    ("redirect-to-login", lambda client, auth: client.get("/profile"), 302),
    ("not-found", lambda client, auth: client.get("/no-such-page"), 404),
    ("method-not-allowed", lambda client, auth: client.get("/logout"), 405),
    ("no-csrf-token", lambda client, auth: client.post("/login", data={"username": "alice"}), 400),
    ("failed-login", lambda client, auth: auth.login("alice", "not the password"), 200),
    ("login-redirect", lambda client, auth: auth.login("alice"), 302),
]


@pytest.mark.contract(
    "Every response (pages, redirects, errors) carries a Content-Security-Policy with no inline script or style "
    "and frame-ancestors 'none', object-src 'none' and base-uri 'none', X-Content-Type-Options: nosniff, and a "
    "Referrer-Policy that sends same-origin referrers and no full URL to other sites"
)
@pytest.mark.features("security-headers", "login", "csrf")
@pytest.mark.parametrize(("get", "status"), [case[1:] for case in RESPONSES], ids=[case[0] for case in RESPONSES])
@pytest.mark.asvs("3.4.3", "3.4.4", "3.4.5", "3.4.6")
def test_security_headers_on_every_response(client, auth, get, status):
    response = get(client, auth)
    assert response.status_code == status
    check_security_headers(response)


@pytest.mark.contract("Pages hold no inline script or style, so the Content-Security-Policy can forbid them")
@pytest.mark.features("security-headers", "login", "profile", "registration")
@pytest.mark.parametrize("logged_in", [False, True], ids=["anonymous", "logged-in"])
@pytest.mark.asvs("3.4.3")
def test_pages_hold_no_inline_script_or_style(client, auth, logged_in):
    if logged_in:
        auth.login("alice")
    for path in ("/", "/login", "/register", "/profile"):
        response = client.get(path, follow_redirects=True)
        assert response.status_code == 200
        check_security_headers(response)
        assert inline_code(response.text) == [], (path, inline_code(response.text))


@pytest.mark.contract("The stylesheet a page links to is served, and carries the security headers too")
@pytest.mark.features("security-headers")
@pytest.mark.asvs("3.4.4")
def test_linked_stylesheets_are_served(client):
    page = client.get("/login")
    sheets = [line for line in page.text.splitlines() if 'rel="stylesheet"' in line]
    assert sheets, "no stylesheet linked"
    for line in sheets:
        href = line.split('href="', 1)[1].split('"', 1)[0]
        with client.get(href) as response:
            assert response.status_code == 200
            assert response.mimetype == "text/css"
            check_security_headers(response)


@pytest.mark.contract("Pages for a logged-in user carry Cache-Control: no-store")
@pytest.mark.features("security-headers", "login", "profile")
@pytest.mark.parametrize("path", ["/", "/profile", "/login"])
@pytest.mark.asvs("14.2.2", "14.3.1", "14.3.2")
def test_logged_in_pages_are_not_stored(client, auth, path):
    assert auth.login("alice").status_code in (302, 303)
    response = client.get(path)
    assert response.status_code in (200, 302)
    cache_control = [value.strip().lower() for value in response.headers.get("Cache-Control", "").split(",")]
    assert "no-store" in cache_control, f"Cache-Control: {response.headers.get('Cache-Control')!r}"


@pytest.mark.contract("With FLASK_PRODUCTION=1 and no FLASK_SECRET_KEY the app refuses to start, in one sentence")
@pytest.mark.features("production-settings")
@pytest.mark.asvs("9.1.3")
def test_production_without_a_secret_key_refuses_to_start(step, tmp_path):
    """Seen as `flask` shows it: a fresh copy (no key in its instance folder), in a process of its own."""
    env = environment_without()
    env["FLASK_PRODUCTION"] = "1"
    env["FLASK_SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{tmp_path / 'refused.sqlite'}"
    app = copy_app(step.path, tmp_path / "copy")
    result = launcher.run(
        [sys.executable, "-m", "flask", "--app", str(app), "routes"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    said = (result.stdout + result.stderr).strip()
    assert result.returncode != 0, f"it started:\n{said}"
    assert "Traceback" not in said
    assert "SECRET_KEY" in said
    assert len(said.splitlines()) == 1, f"more than one line:\n{said}"
    # Nothing was made for it: no key was written in its place.
    assert not list((tmp_path / "copy").rglob("secret_key"))


@pytest.mark.contract("With FLASK_PRODUCTION=1 and a FLASK_SECRET_KEY the app starts and uses that key")
@pytest.mark.features("production-settings", "login")
def test_production_with_a_secret_key_starts(make_app):
    app = make_app(FLASK_PRODUCTION="1", FLASK_SECRET_KEY="a-key-from-the-environment")
    assert app.secret_key == "a-key-from-the-environment"


def https_browser(app):
    """A test client that talks HTTPS to the app, as a TLS proxy's clients do, sending a Referer as browsers do."""
    client = app.test_client()
    client.environ_base["wsgi.url_scheme"] = "https"
    client.environ_base["HTTP_REFERER"] = "https://localhost/login"
    return client


def set_cookies(response):
    """Every cookie `response` sets: [(name, morsel)]."""
    found = []
    for header in response.headers.getlist("Set-Cookie"):
        cookie = SimpleCookie()
        cookie.load(header)
        found += list(cookie.items())
    return found


def every_cookie_of_a_visit(app):
    """The cookies set while a browser looks, logs in (remembered), looks again and logs out."""
    client = https_browser(app)
    auth = AuthActions(client)
    responses = [client.get("/"), client.get("/login")]
    responses.append(auth.login("alice", remember="y"))
    assert responses[-1].status_code in (302, 303), "the login did not succeed over HTTPS"
    responses.append(client.get("/profile"))
    assert responses[-1].status_code == 200
    responses.append(auth.logout())
    cookies = [cookie for response in responses for cookie in set_cookies(response)]
    assert cookies, "no cookie was set at all"
    return cookies


@pytest.mark.contract("With FLASK_PRODUCTION=1 every cookie the app sets is Secure")
@pytest.mark.features("production-settings", "login", "logout", "remember")
@pytest.mark.asvs("3.3.1", "3.3.4")
def test_production_cookies_are_secure(make_app):
    app = make_app(FLASK_PRODUCTION="1", FLASK_SECRET_KEY="a-key-from-the-environment")
    for name, morsel in every_cookie_of_a_visit(app):
        assert morsel["secure"], f"the cookie {name} is not Secure"
        assert morsel["httponly"], f"the cookie {name} is not HttpOnly"


@pytest.mark.contract("With FLASK_PRODUCTION=1 the session cookie has the __Host- prefix (Secure, Path=/, no Domain)")
@pytest.mark.features("production-settings", "login")
@pytest.mark.asvs("3.3.1", "3.3.3")
def test_production_session_cookie_has_the_host_prefix(make_app):
    app = make_app(FLASK_PRODUCTION="1", FLASK_SECRET_KEY="a-key-from-the-environment")
    session_cookies = [
        morsel for name, morsel in every_cookie_of_a_visit(app) if name == app.config["SESSION_COOKIE_NAME"]
    ]
    assert session_cookies
    for morsel in session_cookies:
        assert morsel.key.startswith("__Host-"), morsel.key
        assert morsel["secure"] and morsel["path"] == "/" and not morsel["domain"], morsel.OutputString()


@pytest.mark.contract("Without FLASK_PRODUCTION cookies are not Secure, so `flask run` works over plain HTTP")
@pytest.mark.features("production-settings", "login")
def test_without_production_cookies_work_over_http(make_app):
    app = make_app()
    client = app.test_client()
    assert AuthActions(client).login("alice").status_code in (302, 303)
    assert client.get("/profile").status_code == 200


def failures_from(app, forwarded_for, times, **headers):
    """POST wrong passwords (a new name each time) with this X-Forwarded-For; return the last status."""
    client = app.test_client()
    auth = AuthActions(client)
    status = None
    for n in range(times):
        response = auth.post(
            "/login",
            {"username": f"nobody{n}", "password": "not the password"},
            headers={"X-Forwarded-For": forwarded_for, **headers},
        )
        status = response.status_code
    return status


@pytest.fixture
def per_address_limit(test_config):
    """Three failures per address; a username limit nobody reaches here."""
    test_config.update(LOGIN_LIMIT_PER_ADDRESS="3 per 15 minutes", LOGIN_LIMIT_PER_USERNAME="100 per 15 minutes")


@pytest.mark.contract("Without FLASK_PROXY_COUNT, X-Forwarded-For is ignored: a guesser cannot pose as many addresses")
@pytest.mark.features("production-settings", "rate-limits", "login")
def test_forwarded_for_is_ignored_without_proxy_count(make_app, per_address_limit):
    app = make_app()
    assert failures_from(app, "198.51.100.1", 3) == 200
    # Another X-Forwarded-For is the same client: the socket's address counts.
    assert failures_from(app, "198.51.100.2", 1) == 429


@pytest.mark.contract("With FLASK_PROXY_COUNT=1 the client address is the one the proxy forwards")
@pytest.mark.features("production-settings", "rate-limits", "login")
def test_proxy_count_reads_the_forwarded_address(make_app, per_address_limit):
    app = make_app(FLASK_PROXY_COUNT="1")
    assert failures_from(app, "198.51.100.1", 3) == 200
    assert failures_from(app, "198.51.100.2", 1) == 200  # another client behind the proxy
    assert failures_from(app, "198.51.100.1", 1) == 429
    # Only the proxy's own entry counts: what the client wrote before it is not trusted.
    assert failures_from(app, "203.0.113.5, 198.51.100.1", 1) == 429


@pytest.mark.contract(
    "With FLASK_PROXY_COUNT=1 scheme and host come from the proxy's X-Forwarded-Proto and X-Forwarded-Host; "
    "without it those headers are ignored"
)
@pytest.mark.features("production-settings", "login", "csrf")
@pytest.mark.parametrize("proxy_count", [None, "1"], ids=["no-proxy", "one-proxy"])
def test_proxy_count_reads_scheme_and_host(make_app, proxy_count):
    """Seen through Flask-WTF: over HTTPS a POST must carry a Referer from this very host, over HTTP not."""
    # A deployment names its host; the test client's own is localhost.
    trusted = {"FLASK_TRUSTED_HOSTS": '["login.example", "localhost"]'}
    app = make_app(**trusted, **({"FLASK_PROXY_COUNT": proxy_count} if proxy_count else {}))
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "login.example"}

    def login(referer=None):
        client = app.test_client()
        headers = forwarded | ({"Referer": referer} if referer else {})
        token = AuthActions(client).token()
        form = {"username": "alice", "password": USERS["alice"]["password"], "csrf_token": token}
        return client.post("/login", data=form, headers=headers).status_code

    if proxy_count:
        assert login() == 400  # HTTPS: no Referer, refused
        assert login("https://localhost/login") == 400  # the Host header is not the host any more
        assert login("https://login.example/login") in (302, 303)
    else:
        assert login() in (302, 303)  # plain HTTP, whatever the headers say


def failed_logins(client, times):
    """POST a wrong password `times` times; return the last answer."""
    auth = AuthActions(client)
    for _ in range(times):
        response = auth.login("alice", "not the password")
    return response


# (id, settings, how to get the answer, status): every kind of answer.
HSTS_ANSWERS = [
    ("page", {}, lambda client: client.get("/login"), 200),
    ("redirect", {}, lambda client: client.get("/profile"), 302),
    ("not-found", {}, lambda client: client.get("/no-such-page"), 404),
    ("method-not-allowed", {}, lambda client: client.get("/logout"), 405),
    ("no-csrf-token", {}, lambda client: client.post("/login", data={"username": "alice"}), 400),
    ("over-the-limit", {"LOGIN_LIMIT_PER_ADDRESS": "2 per 15 minutes"}, lambda client: failed_logins(client, 3), 429),
    # A store of counts where nothing listens: login refused, fail closed.
    ("store-down", {"RATELIMIT_STORAGE_URI": "redis://127.0.0.1:PORT/0"}, lambda client: failed_logins(client, 1), 503),
]


def served_over_tls(app):
    """The app as a WSGI server that speaks TLS itself serves it: every request's scheme is https.

    (Werkzeug's test client sets wsgi.url_scheme from its own base URL, over
    any environ_base.)
    """
    inner = app.wsgi_app
    app.wsgi_app = lambda environ, start_response: inner(environ | {"wsgi.url_scheme": "https"}, start_response)


# (id, FLASK_PROXY_COUNT, headers the request carries, TLS at the server, whether the request is HTTPS).
SCHEMES = [
    ("https-behind-proxy", "1", {"X-Forwarded-Proto": "https"}, False, True),
    ("http-behind-proxy", "1", {"X-Forwarded-Proto": "http"}, False, False),
    ("https-direct", None, {}, True, True),
    ("http-direct", None, {}, False, False),
    # Without FLASK_PROXY_COUNT anyone can write X-Forwarded-Proto: the request is still plain HTTP.
    ("forwarded-https-without-proxy", None, {"X-Forwarded-Proto": "https"}, False, False),
]


@pytest.mark.contract(
    "Over HTTPS every answer (pages, redirects, 4xx, 429, 503) carries Strict-Transport-Security of a year or more; "
    "over plain HTTP none"
)
@pytest.mark.features("security-headers", "production-settings", "rate-limits", "login", "csrf")
@pytest.mark.parametrize(
    ("proxy_count", "headers", "tls", "secure"), [s[1:] for s in SCHEMES], ids=[s[0] for s in SCHEMES]
)
@pytest.mark.parametrize(("settings", "get", "status"), [a[1:] for a in HSTS_ANSWERS], ids=[a[0] for a in HSTS_ANSWERS])
@pytest.mark.asvs("3.4.1")
def test_hsts_on_every_https_answer(make_app, test_config, proxy_count, headers, tls, secure, settings, get, status):
    test_config.update({name: value.replace("PORT", str(free_port())) for name, value in settings.items()})
    app = make_app(**({"FLASK_PROXY_COUNT": proxy_count} if proxy_count else {}))
    if tls:
        served_over_tls(app)
    client = app.test_client()
    for name, value in headers.items():
        client.environ_base["HTTP_" + name.upper().replace("-", "_")] = value
    # A browser sends a Referer, which Flask-WTF requires on HTTPS POSTs.
    client.environ_base["HTTP_REFERER"] = "https://localhost/login"
    response = get(client)
    assert response.status_code == status
    hsts = response.headers.getlist("Strict-Transport-Security")
    if not secure:
        assert hsts == [], "Strict-Transport-Security over plain HTTP"
        return
    assert len(hsts) == 1, hsts
    directives = [part.strip().lower() for part in hsts[0].split(";")]
    ages = [int(part.split("=", 1)[1].strip('"')) for part in directives if part.startswith("max-age=")]
    assert len(ages) == 1 and ages[0] >= 365 * 24 * 3600, hsts[0]


@pytest.mark.contract("GET /healthz answers 200 with the body ok when the database (and Redis) answer")
@pytest.mark.features("healthz")
def test_healthz_is_ok(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.text.strip() == "ok"
    check_security_headers(response)


@pytest.mark.contract("GET /healthz sets no cookie and stores no session")
@pytest.mark.features("healthz", "server-sessions")
def test_healthz_stores_nothing(client):
    for _ in range(3):
        response = client.get("/healthz")
        assert response.status_code == 200
        assert not response.headers.getlist("Set-Cookie")
