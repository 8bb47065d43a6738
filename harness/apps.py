"""Drive a step's app in this process: its test client and CLI, its database and its sessions.

For the shared suite and the checker (pytest fixtures live in
shared_tests/conftest.py). Everything here reaches the app through public
Flask APIs: create_app(), the test client, the CLI runner, the session
interface.
"""

from http.cookies import SimpleCookie

import flask
import pytest
from flask.testing import FlaskClient
from flask.testing import FlaskCliRunner

from harness.accounts import USERS
from harness.pages import csrf_token
from harness.pages import forms
from harness.pages import inline_code
from harness.pages import links


def require(step, *features):
    """Skip, inside a test, when one case of a table needs features the step lacks."""
    missing = step.missing(features)
    if missing:
        pytest.skip(f"{step.name} does not teach {', '.join(missing)} yet")


class ServerLikeClient(FlaskClient):
    """Flask's test client, closing each response once it is read, as a WSGI server does.

    Work that an app leaves until its answer has gone (`response.call_on_close`,
    as step 07 sends its mail) then runs, as it would behind a real server.
    """

    def open(self, *args, buffered=True, **kwargs):
        return super().open(*args, buffered=buffered, **kwargs)


class CliRunner(FlaskCliRunner):
    """Runs the app's commands as `flask` does: inside an app context.

    `flask` pushes one for every command since Flask 2.2, so a step's
    commands need no @with_appcontext; Flask's test runner alone does not.
    """

    def invoke(self, cli=None, args=None, **kwargs):
        with self.app.app_context():
            return super().invoke(cli, args, **kwargs)


def grant(app, username="alice", role="admin"):
    """`flask roles grant USERNAME ROLE` (step 13+), as the operator runs it: its output; it must succeed."""
    result = CliRunner(app).invoke(args=["roles", "grant", username, role])
    assert result.exit_code == 0, result.output
    return result.output


def create_user(runner, step, username, password, confirm=None, email=None):
    """`flask create-user USERNAME`, typing `password` at its two prompts (`confirm` at the second, if given).

    With `--email` (default USERNAME@example.com) where the step's accounts
    have an address (its "email" feature, step 04+). `runner`: a CliRunner.
    """
    args = ["create-user", username]
    if "email" in step.features:
        args += ["--email", email or f"{username}@example.com"]
    confirm = password if confirm is None else confirm
    return runner.invoke(args=args, input=f"{password}\n{confirm}\n")


def add_users(app, step):
    """Give a step with a database the same two users steps 01-02 ship."""
    if "database" not in step.features:
        return
    runner = CliRunner(app)
    for name, user in USERS.items():
        result = create_user(runner, step, name, user["password"], email=user["email"])
        assert result.exit_code == 0, result.output


def server_like(factory):
    """`factory`, giving each app it makes the ServerLikeClient as its test client."""

    def make(*args, **kwargs):
        app = factory(*args, **kwargs)
        # Flask's documented hook, set on this app alone: Flask.test_client_class.
        app.test_client_class = ServerLikeClient
        return app

    return make


def close_database(app):
    """Close pooled database (and Redis) connections now, not whenever they are collected."""
    if "sqlalchemy" in app.extensions:
        with app.app_context():
            for engine in app.extensions["sqlalchemy"].engines.values():
                engine.dispose()
    # A session store's Redis client (Flask-Session keeps it as `client`).
    store = getattr(app.session_interface, "client", None)
    if type(store).__module__.startswith("redis"):
        store.close()


def stored_strings(database_url, skip=(), binary=False):
    """Every string in every table of the database (but those in `skip`), read from outside the app.

    With `binary`, byte values too (a session store's pickled or packed
    sessions), each read as Latin-1, so that any text inside them shows.
    """
    import sqlalchemy as sa  # here, not on top: steps 01-02 have no SQLAlchemy

    engine = sa.create_engine(database_url)
    quote = engine.dialect.identifier_preparer.quote
    try:
        with engine.connect() as connection:
            return [
                value.decode("latin-1") if isinstance(value, bytes) else value
                for table in sa.inspect(connection).get_table_names()
                if table not in skip
                for row in connection.execute(sa.text(f"SELECT * FROM {quote(table)}"))
                for value in row
                if isinstance(value, str) or (binary and isinstance(value, bytes))
            ]
    finally:
        engine.dispose()


def session_tables(app):
    """The table a server-side session store keeps in the app's database (Flask-Session's), if any."""
    model = getattr(app.session_interface, "sql_session_model", None)
    return (model.__tablename__,) if model is not None else ()


def session_cookie_from(app, response):
    """The value of the session cookie `response` sets, or None."""
    cookies = SimpleCookie()
    for header in response.headers.getlist("Set-Cookie"):
        cookies.load(header)
    cookie = cookies.get(app.config["SESSION_COOKIE_NAME"])
    return cookie.value if cookie is not None else None


def session_cookie(app, client):
    """The value of the session cookie that `client`, a test client, holds now, or None."""
    cookie = client.get_cookie(app.config["SESSION_COOKIE_NAME"])
    return cookie.value if cookie is not None else None


def travel(seconds, tick=True):
    """Move this process's clocks (time.time, datetime.now) `seconds` on, and let them tick from there.

    The app runs in this process, so it sees them too: a code's next 30
    seconds, or a challenge's lapse, without waiting (time-machine). With
    `tick=False` they stand still there instead, until the block ends.
    """
    import time

    import time_machine  # here, not on top: only the test environments install it

    return time_machine.travel(time.time() + seconds, tick=tick)


def plant_session(app, data):
    """A session cookie holding `data`, made by the app's own session interface.

    As if an earlier visit had put it there: in a signed cookie (steps 01-04)
    or in the store, under a new id (step 05+).
    """
    with app.test_request_context():
        session = app.session_interface.open_session(app, flask.request)
        session.update(data)
        response = app.response_class()
        app.session_interface.save_session(app, session, response)
    return session_cookie_from(app, response)


def rewrite_session(app, cookie, change):
    """Change what the session named by this cookie value holds, in the store (`change(session)`), as malware might.

    For a step with server-side sessions: the id stays, the record changes.
    """
    name = app.config["SESSION_COOKIE_NAME"]
    with app.test_request_context(headers={"Cookie": f"{name}={cookie}"}):
        session = app.session_interface.open_session(app, flask.request)
        change(session)
        session.modified = True
        app.session_interface.save_session(app, session, app.response_class())


def session_data(app, cookie):
    """What the session named by this cookie value holds, read by the app's own session interface."""
    name = app.config["SESSION_COOKIE_NAME"]
    with app.test_request_context(headers={"Cookie": f"{name}={cookie}"}):
        return dict(app.session_interface.open_session(app, flask.request) or {})


def remember_cookie_name(app):
    return app.config.get("REMEMBER_COOKIE_NAME", "remember_token")


def lasting_cookies(app, client):
    """The session and remember cookies `client` holds that have an expiry date: {name: value}."""
    kept = {}
    for name in (app.config["SESSION_COOKIE_NAME"], remember_cookie_name(app)):
        cookie = client.get_cookie(name)
        if cookie is not None and (cookie.expires is not None or cookie.max_age):
            kept[name] = cookie.value
    return kept


def reopened_browser(app, client):
    """The browser `client` is, closed and opened again: only cookies with an expiry date survive."""
    browser = app.test_client()
    for name, value in lasting_cookies(app, client).items():
        browser.set_cookie(name, value)
    return browser


class AuthActions:
    """Log in and out the way the browser does: through the forms of `client`, a test client."""

    def __init__(self, client):
        self.client = client

    def token(self):
        """A CSRF token for this client's session, where the step has them."""
        page = self.client.get("/login")
        if page.status_code != 200:  # logged in: /login redirects away
            page = self.client.get("/")
        return csrf_token(page.text)

    def post(self, path, data=None, **kwargs):
        """POST a form with the session's CSRF token added (if any)."""
        data = dict(data or {})
        token = self.token()
        if token is not None:
            data.setdefault("csrf_token", token)
        return self.client.post(path, data=data, **kwargs)

    def login(self, username="alice", password=None, path="/login", **fields):
        if password is None:
            password = USERS[username]["password"]
        return self.post(path, {"username": username, "password": password, **fields})

    def logout(self):
        return self.post("/logout")


def browser(app, address="198.51.100.1", user_agent=None):
    """A browser of its own (cookies, CSRF token) at client address `address`, driven through AuthActions.

    `user_agent`: the User-Agent header it sends (Werkzeug's own otherwise).
    """
    client = app.test_client()
    client.environ_base["REMOTE_ADDR"] = address
    if user_agent is not None:
        client.environ_base["HTTP_USER_AGENT"] = user_agent
    return AuthActions(client)


def logged_in_browser(app, username="alice", address="198.51.100.1", user_agent=None, password=None, **fields):
    """A new browser (an AuthActions, see `browser`), logged in through the form: the user's own password unless given.

    `fields`: more of the login form, as remember="y".
    """
    auth = browser(app, address, user_agent)
    response = auth.login(username, password, **fields)
    assert response.status_code in (302, 303) and response.headers["Location"] == "/profile", f"{username} not in"
    return auth


# The headers every answer of the site carries (test_production.py checks what they say).
SITE_HEADERS = ("Content-Security-Policy", "X-Content-Type-Options", "Referrer-Policy")


def layout(html):
    """What the site's layout puts on every page: its stylesheets, and the link home."""
    return [line.strip() for line in html.splitlines() if 'rel="stylesheet"' in line], "/" in links(html)


def house_rule_problems(app, pages):
    """How the answers break the site's house rules, as the login page keeps them: [] if they keep them all.

    `pages`: (id, answer, whether a user is logged in) for each answer. The
    rules: no error status; the site's security headers; `no-store` for a
    logged-in user; and on a page, the site's layout, no inline script or
    style, and every form a POST with a CSRF token.
    """
    site = app.test_client().get("/login")
    problems = []
    for name, response, logged_in_user in pages:
        if response.status_code >= 400:
            problems.append(f"{name}: status {response.status_code}")
        problems += [
            f"{name}: {header} {response.headers.get(header)!r}"
            for header in SITE_HEADERS
            if response.headers.get(header) != site.headers.get(header)
        ]
        if logged_in_user and "no-store" not in response.headers.get("Cache-Control", ""):
            problems.append(f"{name}: no Cache-Control: no-store")
        if response.status_code == 200:
            if layout(response.text) != layout(site.text):
                problems.append(f"{name}: not the site's layout")
            problems += [f"{name}: {found}" for found in inline_code(response.text)]
            problems += [
                f"{name}: form {form}"
                for form in forms(response.text)
                if form["method"] != "post" or "csrf_token" not in form["inputs"]
            ]
    return problems


def is_anonymous(client):
    """Whether this browser is logged out: /profile sends it to the login page (and is never a 500)."""
    response = client.get("/profile")
    assert response.status_code < 500
    return response.status_code in (302, 303) and response.headers["Location"].startswith("/login")


def can_log_in(app, username, password=None):
    """Whether the login form, in a new browser, lets this user in (password: theirs from USERS, unless given)."""
    return AuthActions(app.test_client()).login(username, password).status_code in (302, 303)
