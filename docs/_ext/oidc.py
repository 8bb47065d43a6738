"""Signing in with an OpenID provider, run while the docs are built, against a real one (harness/oidc.py).

- `oidc-flow STEP`: one sign-in, start to end, as the list of every request
  made: by the browser to the site and to the provider, and by the site to
  the provider (discovery, the token, the keys). Drawn from what happened,
  so the page cannot show a flow the code no longer runs.
- `oidc-mistakes STEP`: the three mistakes of tutorial OAuth code, each
  tried against the step: a login CSRF (no `state` check), a stolen code
  (no PKCE), an account taken over through an address the provider never
  verified. The build warns unless the step refuses all three.

The step runs in this process (Flask's test client, its database in a
temporary folder); the provider runs in Node.js on a loopback port.
"""

import contextlib
import logging
import re
import tempfile
import urllib.parse

from attacks import Attack
from docutils import nodes
from flask.logging import default_handler

from harness import steps as stepkit
from harness.apps import AuthActions
from harness.apps import add_users
from harness.apps import close_database
from harness.oidc import ProviderUser
from harness.oidc import back_at_the_app
from harness.oidc import start_sign_in
from harness.oidc import test_provider
from harness.pages import text

NAME = "Example ID"
# A provider account that mallory made with alice's address, which the provider never checked.
MALLORY_AS_ALICE = {"mallory": {"email": "alice@example.com", "email_verified": False}}


@contextlib.contextmanager
def step_and_provider(step_dir, folder):
    """The step's app (alice and bob in it) configured for a provider of its own: (app, provider)."""
    logging.getLogger("alembic").setLevel(logging.WARNING)
    [step] = stepkit.select(stepkit.discover(), [step_dir])
    with test_provider(accounts=MALLORY_AS_ALICE) as provider:
        module = stepkit.load_module(step.path, f"oidc_docs_{step.name}")
        config = {"SECRET_KEY": "docs-only", "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder}/site.sqlite"}
        app = stepkit.app_factory(module)(config | {"BCRYPT_LOG_ROUNDS": 4} | provider.config(NAME))
        app.logger.setLevel(logging.ERROR)
        try:
            add_users(app, step)
            yield app, provider
        finally:
            close_database(app)


class Requests(logging.Handler):
    """The site's own requests to the provider, as urllib3 (under requests, under Authlib) logs them."""

    LINE = re.compile(r'"(GET|POST) (\S+) HTTP/[\d.]+" (\d+)')

    def __init__(self, hops):
        super().__init__(logging.DEBUG)
        self.hops = hops

    def emit(self, record):
        found = self.LINE.search(record.getMessage())
        if found:
            method, path, status = found.groups()
            self.hops.append(("site", "provider", method, path, int(status), ""))


@contextlib.contextmanager
def site_requests(hops):
    log = logging.getLogger("urllib3.connectionpool")
    handler, level = Requests(hops), log.level
    log.addHandler(handler)
    log.setLevel(logging.DEBUG)
    log.propagate = False  # here only, not on the build's output too
    try:
        yield
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
        log.propagate = True


# The query parameters worth showing: the random ones (cut short) and what the site asks for (whole).
RANDOM = ("state", "nonce", "code_challenge", "code")
ASKED = ("response_type", "client_id", "scope", "code_challenge_method", "redirect_uri")


def short(url):
    """A URL's path and its telling query parameters, the random values cut short."""
    parts = urllib.parse.urlsplit(url)
    query = urllib.parse.parse_qsl(parts.query)
    shown = [
        f"{name}={value[:8] + '…' if name in RANDOM else value}" for name, value in query if name in RANDOM + ASKED
    ]
    return parts.path + ("?" + "&".join(shown) if shown else "")


def flow(step_dir):
    """One first sign-in as newton, every request in order: [(who, to whom, method, path, status, where to)]."""
    hops = []
    with tempfile.TemporaryDirectory() as folder, step_and_provider(step_dir, folder) as (app, provider):
        auth = AuthActions(app.test_client())
        with site_requests(hops):
            authorize = start_sign_in(auth)
        hops.insert(0, ("browser", "site", "POST", "/login/oidc", 302, short(authorize)))
        trace = []
        callback = ProviderUser("newton", trace).sign_in(authorize)
        for method, url, status, location in trace:
            hops.append(("browser", "provider", method, short(url), status, short(location) if location else ""))
        with site_requests(hops):
            before = len(hops)
            response = back_at_the_app(auth, callback)
        hops.insert(
            before, ("browser", "site", "GET", short(callback), response.status_code, response.headers["Location"])
        )
    return hops


@contextlib.contextmanager
def logged(app):
    """The warnings the app logs meanwhile (its auth log: why a sign-in failed), as a list filled in as they come."""
    lines = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: lines.append(record.getMessage())
    level = app.logger.level
    # Here only, not also on the build's output, as Flask's own handler and the root logger's would print it.
    app.logger.removeHandler(default_handler)
    app.logger.addHandler(handler)
    app.logger.setLevel(logging.WARNING)
    app.logger.propagate = False
    try:
        yield lines
    finally:
        app.logger.removeHandler(handler)
        app.logger.addHandler(default_handler)
        app.logger.setLevel(level)
        app.logger.propagate = True


def mistakes(step_dir):
    """The three attacks, each a few lines; and whether the step refused each: {name: refused}."""
    lines, refused = [], {}
    with tempfile.TemporaryDirectory() as folder, step_and_provider(step_dir, folder) as (app, provider):

        def profile_of(auth):
            page = auth.client.get("/profile")
            return text(page.text).split("Username")[1].split()[0] if page.status_code == 200 else None

        def said(auth, response):
            messages = re.findall(r'<p class="flash-\w+"[^>]*>(.*?)</p>', auth.client.get("/login").text, re.S)
            return f"{response.status_code} -> {response.headers.get('Location')}: " + " ".join(messages)

        lines.append("# 1. Login CSRF. mallory signs in at the provider as herself, and stops before coming back:")
        mallory = AuthActions(app.test_client())
        callback = ProviderUser("mallory-herself").sign_in(start_sign_in(mallory))
        lines.append(f"#    her way back, {short(callback)}, goes into a link on her page; alice's browser follows it:")
        alice = AuthActions(app.test_client())
        response = back_at_the_app(alice, callback)
        lines.append(f"GET /login/oidc/callback (alice's browser): {said(alice, response)}")
        lines.append(
            f"GET /profile (alice's browser): {'logged in as ' + profile_of(alice) if profile_of(alice) else 'not logged in'}"
        )
        refused["login CSRF"] = profile_of(alice) is None

        lines.append("")
        lines.append("# 2. A stolen code. alice signs in; mallory gets the URL her browser is sent back to")
        lines.append("#    (from a log, a history, an app on the phone), before alice's browser uses it:")
        alice = AuthActions(app.test_client())
        stolen = ProviderUser("alice-elsewhere").sign_in(start_sign_in(alice))
        code = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(stolen).query))["code"]
        lines.append(
            f"#    code={code[:8]}…; mallory starts a sign-in of her own and puts alice's code in its way back:"
        )
        mallory = AuthActions(app.test_client())
        own = ProviderUser("mallory-herself").sign_in(start_sign_in(mallory))
        swapped = urllib.parse.urlsplit(own)._replace(
            query=urllib.parse.urlencode(
                {**dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(own).query)), "code": code}
            )
        )
        with logged(app) as log:
            response = back_at_the_app(mallory, swapped.geturl())
        lines.append(f"GET /login/oidc/callback (mallory's browser, alice's code): {said(mallory, response)}")
        lines += [f"#    the site's log: {line}" for line in log]
        lines.append(
            f"GET /profile (mallory's browser): {'logged in as ' + profile_of(mallory) if profile_of(mallory) else 'not logged in'}"
        )
        # The page says why: the provider refused the code (the log shows invalid_grant).
        refused["stolen code"] = profile_of(mallory) is None and any("invalid_grant" in line for line in log)

        lines.append("")
        lines.append("# 3. An address nobody checked. mallory makes an account at the provider with alice's")
        lines.append("#    address, alice@example.com, which the provider never verified, and signs in here with it:")
        mallory = AuthActions(app.test_client())
        response = back_at_the_app(mallory, ProviderUser("mallory").sign_in(start_sign_in(mallory)))
        lines.append(f"GET /login/oidc/callback: {said(mallory, response)}")
        lines.append(
            f"GET /profile: {'logged in as ' + profile_of(mallory) if profile_of(mallory) else 'not logged in'}"
        )
        refused["unverified address"] = profile_of(mallory) is None
    return lines, refused


class OidcFlow(Attack):
    """`oidc-flow STEP`: the requests of one sign-in, as a table."""

    sources = ("docs/_ext/oidc.py", "harness/oidc.py", "harness/oidc_provider.mjs")

    def run(self):
        self.note_sources()
        rows = [["#", "from", "to", "request", "answer"]]
        for number, (who, to, method, path, status, where) in enumerate(flow(self.arguments[0]), 1):
            rows.append([str(number), who, to, f"{method} {path}", f"{status}" + (f" → {where}" if where else "")])
        return [table(rows)]


class OidcMistakes(Attack):
    """`oidc-mistakes STEP`: the build warns unless the step refuses all three."""

    sources = OidcFlow.sources

    def run(self):
        lines, refused = mistakes(self.arguments[0])
        for name, ok in refused.items():
            self.came_to("refused" if ok else "let through", "refused", f"the step refuses the {name}")
        return self.show(lines)


def table(rows):
    """A docutils table: the first row is the header."""
    tgroup = nodes.tgroup(cols=len(rows[0]))
    for _ in rows[0]:
        tgroup += nodes.colspec(colwidth=1)
    head, body = nodes.thead(), nodes.tbody()
    for index, cells in enumerate(rows):
        row = nodes.row()
        for cell in cells:
            entry = nodes.entry()
            entry += nodes.paragraph(text=cell) if index == 0 else nodes.paragraph("", "", nodes.literal(text=cell))
            row += entry
        (head if index == 0 else body).append(row)
    tgroup += head
    tgroup += body
    return nodes.table("", tgroup)


def setup(app):
    app.add_directive("oidc-flow", OidcFlow)
    app.add_directive("oidc-mistakes", OidcMistakes)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
