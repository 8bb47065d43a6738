"""Attacks against the real steps, run while the docs are built.

Each part-two page opens with an attack that works on the step before it.
These directives run that attack against a step served over real HTTP
(Werkzeug's server, on a free loopback port, in a thread) and show what the
server answered, so a page cannot claim what the code no longer does.

- `cookie-replay STEP`: alice logs in with "remember me", someone copies her
  cookies, alice logs out, and the copies are sent again.
- `login-headers STEP`: the headers of the step's login page, as
  `curl -sI` shows them (less Date, Server and Content-Length).
- `guessing-loop STEP`: a list of passwords tried for alice, one after the
  other, each with a fresh CSRF token, as the loop on step 06's page does.
- `reset-probe STEP`: reset links asked for a known and an unknown address,
  with a forged Host header, and one link followed twice.
- `proxy-lockout STEP [PROXY_COUNT]`: behind one proxy, mallory fails to log
  in under 30 names, then alice logs in from her own address with her right
  password; with PROXY_COUNT the step is told that the proxy is there.
"""

import contextlib
import http.client
import io
import logging
import re
import tempfile
import threading
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

from docutils import nodes
from sphinx.util.docutils import SphinxDirective
from werkzeug.serving import WSGIRequestHandler
from werkzeug.serving import make_server

from harness import pages
from harness import steps as stepkit
from harness.apps import add_users

ROOT = Path(__file__).resolve().parents[2]


class QuietHandler(WSGIRequestHandler):
    """No request log on the build's output."""

    def log_request(self, *args, **kwargs):
        pass


class Served:
    """A step's app with alice and bob, served over HTTP on a free loopback port."""

    def __init__(self, step_dir, folder, config=None):
        self.pages = pages
        # Step 08 applies its migrations at start; Alembic tells of each one.
        logging.getLogger("alembic").setLevel(logging.WARNING)
        [self.step] = stepkit.select(stepkit.discover(), [step_dir])
        module = stepkit.load_module(self.step.path, f"attack_{self.step.name}")
        self.app = stepkit.app_factory(module)(
            {
                "SECRET_KEY": "a-key-for-the-docs-only",
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder}/attack.sqlite",
                "BCRYPT_LOG_ROUNDS": 4,
            }
            | (config or {})
        )
        # Step 08 logs every login and failure; the transcript shows them already.
        self.app.logger.setLevel(logging.ERROR)
        add_users(self.app, self.step)  # alice and bob, by the step's own create-user
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True, request_handler=QuietHandler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self):
        # Flask-Limiter logs every refusal; the transcript says it already.
        logging.getLogger("flask-limiter").setLevel(logging.WARNING)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    def request(self, method, path, cookies, form=None, host=None, headers=None):
        """One HTTP request; returns (status, reason, headers, body) and keeps cookies the server sets."""
        connection = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
        headers = dict(headers or {})
        if cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        if host is not None:
            headers["Host"] = host  # what the request claims; http.client would send the real one
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        text = response.read().decode()
        for header in response.headers.get_all("Set-Cookie") or []:
            jar = SimpleCookie()
            jar.load(header)
            for name, morsel in jar.items():
                if morsel.value and morsel["max-age"] != "0":
                    cookies[name] = morsel.value
                else:
                    cookies.pop(name, None)
        connection.close()
        return response.status, response.reason, response.headers, text

    def post_form(self, path, cookies, fields, token_page="/", headers=None):
        """POST a form the way a browser does: with the CSRF token of a page it just loaded."""
        _, _, _, page = self.request("GET", token_page, cookies, headers=headers)
        token = self.pages.csrf_token(page)
        return self.request("POST", path, cookies, fields | ({"csrf_token": token} if token else {}), headers=headers)


def answer(served, status, reason, headers, body):
    """What a response said, in a few words: the status, where it sends you, who it shows."""
    line = f"{status} {reason}"
    if headers.get("Location"):
        line += f" -> {headers['Location']}"
    elif status == 200 and "alice" in served.pages.text(body):
        line += ": the profile page of alice"
    return line


def shorten(value, keep=24):
    return value if len(value) <= keep else value[:keep] + "…"


def cookie_replay(step_dir):
    """The transcript of the replay attack against one step, as lines of text."""
    lines = []
    with tempfile.TemporaryDirectory() as folder, Served(step_dir, folder) as served:
        browser = {}
        served.request("GET", "/login", browser)
        served.post_form("/login", browser, {"username": "alice", "password": "wonderland", "remember": "y"}, "/login")
        lines.append("# alice logs in, ticking 'Remember me'. Her browser now holds:")
        for name, value in browser.items():
            lines.append(f"#   {name}={shorten(value)}")
        copied = dict(browser)
        lines.append("# Someone copies those cookies (a shared computer, a stolen backup, malware).")
        attempts = [("POST /logout from alice's browser", "POST", "/logout", browser, "/profile")]
        attempts.append(("GET /profile from alice's browser", "GET", "/profile", browser, None))
        attempts.append(("GET /profile with the copied cookies", "GET", "/profile", copied, None))
        for name in copied:
            attempts.append(
                (f"GET /profile with only the copied {name}", "GET", "/profile", {name: copied[name]}, None)
            )
        width = max(len(label) for label, *_ in attempts) + 2
        for label, method, path, cookies, token_page in attempts:
            if method == "POST":
                response = served.post_form(path, cookies, {}, token_page)
            else:
                response = served.request(method, path, dict(cookies))
            lines.append(f"{label + ':':<{width}}{answer(served, *response)}")
    return lines


GUESSES = ["123456", "password", "qwerty", "letmein", "dragon", "alice", "wonder", "wonderland"]


def guessing_loop(step_dir):
    """The status code each guess got, and the guess: "200 123456", one line each."""
    lines = []
    with tempfile.TemporaryDirectory() as folder, Served(step_dir, folder) as served:
        jar = {}
        for password in GUESSES:
            status, *_ = served.post_form("/login", jar, {"username": "alice", "password": password}, "/login")
            lines.append(f"{status} {password}")
    return lines


class Attack(SphinxDirective):
    """Run an attack against a step, and show what its server answered."""

    required_arguments = 1
    attack = None

    def run(self):
        step_dir = self.arguments[0]
        self.env.note_dependency(str(ROOT / "docs" / "_ext" / "attacks.py"))
        for path in sorted((ROOT / "steps").glob(f"{step_dir}*/*.py")):
            self.env.note_dependency(str(path))
        text = "\n".join(type(self).attack(*self.arguments))
        block = nodes.literal_block(text, text)
        block["language"] = "text"
        return [block]


class GuessingLoop(Attack):
    attack = guessing_loop


class CookieReplay(Attack):
    attack = cookie_replay


RESET_LINK = re.compile(r"https?://\S+/reset-password/\S+")


def reset_probe(step_dir):
    """The transcript of asking for reset links, and of using one twice, against one step."""
    lines = []
    # A browser pointed at http://127.0.0.1:5000, as `flask run` serves: the
    # port is not checked against TRUSTED_HOSTS, and the link shows the usual one.
    host = "127.0.0.1:5000"
    printed = io.StringIO()
    with tempfile.TemporaryDirectory() as folder, Served(step_dir, folder) as served:

        def ask(address, claimed=host):
            browser = {}
            _, _, _, page = served.request("GET", "/reset-password", browser, host=claimed)
            token = served.pages.csrf_token(page)
            form = {"email": address} | ({"csrf_token": token} if token else {})
            status, reason, _, body = served.request("POST", "/reset-password", browser, form, host=claimed)
            said = served.pages.text(body)
            found = re.search(r"If an account uses that address[^.]*\.", said)
            return f"{status} {reason}" + (f': "{found.group(0)}"' if found else "")

        with contextlib.redirect_stdout(printed):  # no mail server: the step prints each email
            answers = [(f"POST /reset-password email={a}", ask(a)) for a in ("alice@example.com", "nobody@example.com")]
            forged = [("POST /reset-password with Host: evil.example", ask("alice@example.com", "evil.example"))]
        links = RESET_LINK.findall(printed.getvalue())
        recipients = re.findall(r"^To: (.+)$", printed.getvalue(), re.MULTILINE)
        used = []
        if links:
            path = "/reset-password/" + links[0].rsplit("/", 1)[1]
            new = {"password": "a-new-passphrase", "confirm_password": "a-new-passphrase"}
            for who in ("alice", "someone"):
                browser = {}
                served.request("GET", path, browser)
                status, reason, headers, _ = served.post_form(path, browser, new, token_page="/reset-password")
                used.append((f"POST {shorten(path, 30)} ({who})", f"{status} {reason} -> {headers.get('Location')}"))
    width = max(len(label) for label, _ in [*answers, *forged, *used]) + 2
    lines.append("# Reset links asked for an address with an account, and for one without:")
    lines += [f"{label + ':':<{width}}{said}" for label, said in answers]
    lines.append(f"# Emails the server printed: {len(recipients)}, to {', '.join(recipients) or 'nobody'}; the links:")
    lines += [f"#   {shorten(link, 60)}" for link in links]
    lines.append("# The same request, claiming another host:")
    lines += [f"{label + ':':<{width}}{said}" for label, said in forged]
    if used:
        lines.append("# alice follows her link and sets a new password; later, someone else follows it:")
        lines += [f"{label + ':':<{width}}{said}" for label, said in used]
    return lines


class ResetProbe(Attack):
    attack = reset_probe


def login_headers(step_dir):
    """The status line and headers of HEAD /login, as `curl -sI` prints them."""
    with tempfile.TemporaryDirectory() as folder, Served(step_dir, folder) as served:
        status, reason, headers, _ = served.request("HEAD", "/login", {})
    skip = {"date", "server", "content-length", "connection"}
    return [f"HTTP/1.1 {status} {reason}"] + [f"{k}: {v}" for k, v in headers.items() if k.lower() not in skip]


class LoginHeaders(Attack):
    attack = login_headers


# What the proxy writes in X-Forwarded-For: each visitor's own address.
MALLORY = "203.0.113.66"
ALICE_AT_HOME = "198.51.100.7"
LOGIN_LIMIT_PER_ADDRESS = 30  # the steps' default, "30 per 15 minutes"


def proxy_lockout(step_dir, proxy_count=None):
    """Behind one proxy: mallory fails 30 logins under other names, then alice logs in, each from their own address."""
    config = {"PROXY_COUNT": int(proxy_count)} if proxy_count else {}
    lines = []
    with tempfile.TemporaryDirectory() as folder, Served(step_dir, folder, config) as served:
        # Every request reaches the app from one socket address, the proxy's
        # (here 127.0.0.1); the proxy names the visitor in X-Forwarded-For.
        mallory = {"X-Forwarded-For": MALLORY}
        answers = {}
        for n in range(1, LOGIN_LIMIT_PER_ADDRESS + 1):
            fields = {"username": f"user{n:02}", "password": "123456"}
            status, reason, *_ = served.post_form("/login", {}, fields, "/login", headers=mallory)
            answers[f"{status} {reason}"] = answers.get(f"{status} {reason}", 0) + 1
        alice = {"X-Forwarded-For": ALICE_AT_HOME}
        response = served.post_form("/login", {}, {"username": "alice", "password": "wonderland"}, "/login", alice)
        again = served.post_form("/login", {}, {"username": "user31", "password": "123456"}, "/login", mallory)
    told = f"FLASK_PROXY_COUNT={proxy_count}" if proxy_count else "no FLASK_PROXY_COUNT"
    lines.append(f"# Step {step_dir} behind one proxy ({told}): every request comes from the proxy's address.")
    lines.append(f"# mallory ({MALLORY}) tries password 123456 for user01 ... user{LOGIN_LIMIT_PER_ADDRESS:02}:")
    lines += [f"POST /login, {count} times: {said}" for said, count in answers.items()]
    lines.append(f"# Then alice ({ALICE_AT_HOME}), from her own home, with her right password:")
    lines.append(f"POST /login username=alice: {answer(served, *response)}")
    lines.append("# And mallory's next guess:")
    lines.append(f"POST /login username=user31: {answer(served, *again)}")
    return lines


class ProxyLockout(Attack):
    required_arguments = 1
    optional_arguments = 1
    attack = proxy_lockout


def setup(app):
    app.add_directive("cookie-replay", CookieReplay)
    app.add_directive("guessing-loop", GuessingLoop)
    app.add_directive("login-headers", LoginHeaders)
    app.add_directive("reset-probe", ResetProbe)
    app.add_directive("proxy-lockout", ProxyLockout)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
