"""Attacks against the real steps, run while the docs are built.

Each part-two page opens with an attack that works on the step before it.
These directives run that attack against a step served over real HTTP
(Werkzeug's server, on a free loopback port, in a thread) and show what the
server answered, so a page cannot claim what the code no longer does.

- `cookie-replay STEP`: alice logs in with "remember me", someone copies her
  cookies, alice logs out, and the copies are sent again.
- `guessing-loop STEP`: a list of passwords tried for alice, one after the
  other, each with a fresh CSRF token, as the loop on step 06's page does.
"""

import http.client
import logging
import sys
import tempfile
import threading
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlencode

from docutils import nodes
from sphinx.util.docutils import SphinxDirective
from werkzeug.serving import WSGIRequestHandler
from werkzeug.serving import make_server

ROOT = Path(__file__).resolve().parents[2]
USERS = {"alice": ("wonderland", "alice@example.com"), "bob": ("can-we-fix-it", "bob@example.com")}


def shared_tests():
    """stepkit and pages from shared_tests/, the same code the suite uses."""
    sys.path.insert(0, str(ROOT / "shared_tests"))
    try:
        import pages
        import stepkit
    finally:
        sys.path.remove(str(ROOT / "shared_tests"))
    return stepkit, pages


class QuietHandler(WSGIRequestHandler):
    """No request log on the build's output."""

    def log_request(self, *args, **kwargs):
        pass


class Served:
    """A step's app with alice and bob, served over HTTP on a free loopback port."""

    def __init__(self, step_dir, folder):
        stepkit, self.pages = shared_tests()
        [self.step] = stepkit.select(stepkit.discover(), [step_dir])
        module = stepkit.load_module(self.step.path, f"attack_{self.step.name}")
        self.app = stepkit.app_factory(module)(
            {
                "SECRET_KEY": "a-key-for-the-docs-only",
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder}/attack.sqlite",
                "BCRYPT_LOG_ROUNDS": 4,
            }
        )
        for name, (password, email) in USERS.items() if "database" in self.step.features else ():
            args = ["create-user", name] + (["--email", email] if "email" in self.step.features else [])
            with self.app.app_context():  # as `flask` runs every command
                result = self.app.test_cli_runner().invoke(args=args, input=f"{password}\n{password}\n")
            if result.exit_code != 0:
                raise RuntimeError(result.output)
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

    def request(self, method, path, cookies, form=None):
        """One HTTP request; returns (status, reason, headers, body) and keeps cookies the server sets."""
        connection = http.client.HTTPConnection("127.0.0.1", self.server.port, timeout=30)
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())} if cookies else {}
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

    def post_form(self, path, cookies, fields, token_page="/"):
        """POST a form the way a browser does: with the CSRF token of a page it just loaded."""
        _, _, _, page = self.request("GET", token_page, cookies)
        token = self.pages.csrf_token(page)
        return self.request("POST", path, cookies, fields | ({"csrf_token": token} if token else {}))


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
        text = "\n".join(type(self).attack(step_dir))
        block = nodes.literal_block(text, text)
        block["language"] = "text"
        return [block]


class GuessingLoop(Attack):
    attack = guessing_loop


class CookieReplay(Attack):
    attack = cookie_replay


def setup(app):
    app.add_directive("cookie-replay", CookieReplay)
    app.add_directive("guessing-loop", GuessingLoop)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
