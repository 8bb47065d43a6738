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
- `signup-probe STEP`: mallory signs up with an address that has an account
  and with addresses that have none, and times the answers; then she signs
  up with carol's address, and carol tries to. A real SMTP server (the
  tests' own) shows who got an email. `:times: differ` or `:times: match`
  states what the page says of the times, and the build checks it.
- `leaked-password STEP`: mallory has alice's password from a breach list
  and logs in with it from a browser and an address of her own; where the
  step has two-factor authentication, alice has turned it on first, and
  mallory guesses codes. The build warns when the answers no longer match
  the page: mallory in on a step without two-factor, stopped on one with.
- `relay-phish STEP` (`:victim-uses: password` or `passkey`): mallory's
  look-alike site relays every request to the step (harness/relay.py),
  alice logs in there, and mallory replays the cookies it kept. The build
  warns unless a password and code get mallory in, and a passkey does not.
"""

import contextlib
import html
import http.client
import io
import json
import logging
import re
import statistics
import tempfile
import threading
import time
from http.cookies import SimpleCookie
from pathlib import Path
from types import SimpleNamespace
from urllib.parse import urlencode

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util import logging as sphinx_logging
from sphinx.util.docutils import SphinxDirective
from werkzeug.serving import WSGIRequestHandler
from werkzeug.serving import make_server

from harness import pages
from harness import passkeys
from harness import steps as stepkit
from harness import two_factor
from harness.apps import add_users
from harness.relay import relay_to
from harness.smtp import smtp_server

ROOT = Path(__file__).resolve().parents[2]
logger = sphinx_logging.getLogger(__name__)


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

    def request(self, method, path, cookies, form=None, host=None, headers=None, port=None, json_body=None):
        """One HTTP request; returns (status, reason, headers, body) and keeps cookies the server sets.

        `port`: another server's to send it to (a relay in front of this
        one); `json_body`: a JSON POST, as a page's script sends.
        """
        connection = http.client.HTTPConnection("127.0.0.1", port or self.server.port, timeout=30)
        headers = dict(headers or {})
        if cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
        if host is not None:
            headers["Host"] = host  # what the request claims; http.client would send the real one
        body = None
        if form is not None:
            body = urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        if json_body is not None:
            body = json.dumps(json_body)
            headers["Content-Type"] = "application/json"
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

    def post_form(self, path, cookies, fields, token_page="/", headers=None, port=None):
        """POST a form the way a browser does: with the CSRF token of a page it just loaded."""
        _, _, _, page = self.request("GET", token_page, cookies, headers=headers, port=port)
        token = self.pages.csrf_token(page)
        fields = fields | ({"csrf_token": token} if token else {})
        return self.request("POST", path, cookies, fields, headers=headers, port=port)


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
    # Files of the repository, besides this one and the step's, that the attack runs: a change reruns it.
    sources = ()

    def run(self):
        return self.show(type(self).attack(*self.arguments))

    def show(self, lines):
        """The transcript as a text block; the page is rebuilt when the step, or what drives it, changes."""
        self.note_sources()
        text = "\n".join(lines)
        block = nodes.literal_block(text, text)
        block["language"] = "text"
        return [block]

    def note_sources(self):
        """Rebuild the page when the step's code, this module or `sources` change."""
        for path in ("docs/_ext/attacks.py", *self.sources):
            self.env.note_dependency(str(ROOT / path))
        for path in sorted((ROOT / "steps").glob(f"{self.arguments[0]}*/*.py")):
            self.env.note_dependency(str(path))

    def came_to(self, outcome, wanted, says):
        """Warn when the attack came to another `outcome` than the one the page `says` (in words) it does."""
        if outcome != wanted:
            logger.warning(
                "%s %s: the page says %s, but the attack came to %r",
                self.name,
                self.arguments[0],
                says,
                outcome,
                location=self.get_location(),
            )


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


# The sign-up form's fields, in the order the page shows them (and the button after them).
SIGNUP_FIELDS = ("username", "email", "password", "confirm_password", "submit")
SIGNUP_TRIES = 11  # of each kind, for the times: medians of fewer strayed past 1.5 on a busy build


def signup_messages(page):
    """What a sign-up answer says: its flashed messages, and each field's message, by field."""
    said = [f'"{html.unescape(m)}"' for m in re.findall(r'<p class="flash-\w+" role="status">(.*?)</p>', page, re.S)]
    for name, next_name in zip(SIGNUP_FIELDS, SIGNUP_FIELDS[1:], strict=False):
        start, end = page.find(f'name="{name}"'), page.find(f'name="{next_name}"')
        if start == -1 or end == -1:
            continue
        for error in re.findall(r'<p class="error">(.*?)</p>', page[start:end], re.S):
            said.append(f'at the {name} field: "{html.unescape(error)}"')
    return said


def signup_probe(step_dir):
    """Sign-ups with a taken address and with free ones: the words, the times, and whose address it may be."""
    return probe_signups(step_dir)[0]


def probe_signups(step_dir):
    """signup_probe's lines, and the median seconds of the taken and the free sign-ups."""
    lines = []
    # The step's own cost of bcrypt (12, as in production), not the docs' quick 4:
    # the time of one hash is what the probe looks for.
    # Behind one proxy, each request from an address of its own (203.0.113.x), as
    # for an attacker with many addresses: the limit per address does not come in.
    config = {"BCRYPT_LOG_ROUNDS": 12, "PROXY_COUNT": 1}
    addresses = (f"203.0.113.{n}" for n in range(1, 255))
    # aiosmtpd logs every SMTP conversation; the transcript counts the emails already.
    logging.getLogger("mail.log").setLevel(logging.WARNING)
    with (
        tempfile.TemporaryDirectory() as folder,
        smtp_server() as inbox,
        Served(step_dir, folder, config | inbox.config()) as served,
    ):
        # alice and bob were made by create-user: their emails are not the probe's.
        inbox.settle(0.2)
        before = len(inbox.messages)

        def sign_up(username, email, password="a-long-passphrase"):
            """One sign-up from a new browser: (what it answered and said, seconds the POST took)."""
            browser, headers = {}, {"X-Forwarded-For": next(addresses)}
            _, _, _, form_page = served.request("GET", "/register", browser, headers=headers)
            fields = {"username": username, "email": email, "password": password, "confirm_password": password}
            token = served.pages.csrf_token(form_page)
            started = time.perf_counter()
            status, reason, response_headers, page = served.request(
                "POST", "/register", browser, fields | ({"csrf_token": token} if token else {}), headers=headers
            )
            took = time.perf_counter() - started
            said = f"{status} {reason}"
            location = response_headers.get("Location")
            if location:
                said += f" -> {location}"
                _, _, _, page = served.request("GET", location, browser, headers=headers)
            messages = signup_messages(page)
            return said + "".join(f"\n    {message}" for message in messages), took

        lines.append("# mallory signs up with an address that has an account, and with one that has none:")
        for username, email in (("mallory", "alice@example.com"), ("mallory", "nobody@example.com")):
            said, _ = sign_up(username, email)
            lines.append(f"POST /register username={username} email={email}: {said}")

        times = {"taken": [], "free": []}
        for n in range(1, SIGNUP_TRIES + 1):  # one of each in turn, so that a slow moment hits both
            times["taken"].append(sign_up(f"mallory-t{n}", "alice@example.com")[1])
            times["free"].append(sign_up(f"mallory-f{n}", f"free{n}@example.com")[1])
        lines.append(f"# The time each POST took, {SIGNUP_TRIES} tries each, a new username every time:")
        for kind, email in (("taken", "alice@example.com"), ("free", f"free1 ... free{SIGNUP_TRIES}@example.com")):
            each = " ".join(f"{1000 * t:.0f}" for t in times[kind])
            median = 1000 * statistics.median(times[kind])
            lines.append(f"{kind} ({email}): {each} ms; median {median:.0f} ms")

        lines.append("# mallory signs up with carol's address; carol has no account here, and does not know:")
        said, _ = sign_up("carol", "carol@example.com", "mallorys-own-password")
        lines.append(f"POST /register username=carol email=carol@example.com: {said}")
        lines.append("# mallory logs in to it, in a new browser:")
        browser = {}
        status, reason, headers, page = served.post_form(
            "/login", browser, {"username": "carol", "password": "mallorys-own-password"}, "/login"
        )
        said = answer(served, status, reason, headers, page)
        if status == 200:
            said += "".join(f'\n    "{m}"' for m in login_messages(page))
        lines.append(f"POST /login username=carol: {said}")
        lines.append("# Later, carol, the owner of the address, signs up:")
        said, _ = sign_up("carol-real", "carol@example.com", "carols-own-password")
        lines.append(f"POST /register username=carol-real email=carol@example.com: {said}")
        received = inbox.settle()[before:]
    lines.append(f"# Emails the SMTP server received during all this: {len(received) or 'none'}")
    counts = {}
    for message in received:
        # The free addresses of the timed tries, one email each, on one line.
        to = re.sub(r"^free\d+@", f"free1 ... free{SIGNUP_TRIES}@", ", ".join(message.envelope_to))
        counts[to, message["Subject"]] = counts.get((to, message["Subject"]), 0) + 1
    lines += [f"#   {count} to {to}: {subject!r}" for (to, subject), count in counts.items()]
    return lines, {kind: statistics.median(seconds) for kind, seconds in times.items()}


def login_messages(page):
    """The messages on a login form answered again: its error and its flashes."""
    found = re.findall(r'<p class="(?:error|flash-\w+)"[^>]*>(.*?)</p>', page, re.S)
    # A link in a message shows where it leads: "text (-> /path)".
    linked = [re.sub(r'<a href="([^"]*)">(.*?)</a>', r"\2 (-> \1)", message, flags=re.S) for message in found]
    messages = [" ".join(html.unescape(re.sub(r"<[^>]+>", "", message)).split()) for message in linked]
    return [message for message in messages if message]  # not the passkey button's place for its errors


class SignupProbe(Attack):
    """`signup-probe STEP`, and with `:times: differ` or `:times: match`, what the page says of the times.

    differ: a free address takes over three times as long as the taken one
    (step 08 hashes for the one and not the other). match: the two medians
    are within half of each other (both hash; the rest is noise on a busy
    machine). Otherwise the build warns: the page's words no longer hold.
    """

    option_spec = {"times": lambda value: directives.choice(value, ("differ", "match"))}

    def run(self):
        lines, medians = probe_signups(self.arguments[0])
        slower, faster = max(medians.values()), min(medians.values())
        said = self.options.get("times")
        if said == "differ" and not medians["free"] > 3 * medians["taken"]:
            self.warn_times("a free address is not clearly slower than a taken one", medians)
        if said == "match" and not slower < 1.5 * faster:
            self.warn_times("the taken and the free addresses do not take about the same time", medians)
        return self.show(lines)

    def warn_times(self, problem, medians):
        times = ", ".join(f"{kind} {1000 * seconds:.0f} ms" for kind, seconds in medians.items())
        logger.warning(
            "signup-probe %s: %s (medians: %s)", self.arguments[0], problem, times, location=self.get_location()
        )


class Browser:
    """One browser on a served step, with its own cookies and client address.

    `post()` has the shape of the shared suite's AuthActions.post (a form,
    its CSRF token added; a response with `status_code`, `headers` and
    `text`), so harness.two_factor can drive it as it drives a test client.
    """

    def __init__(self, served, address, port=None):
        self.served = served
        self.cookies = {}
        self.headers = {"X-Forwarded-For": address}  # what the proxy says of the visitor
        self.port = port  # another server's in front of the step (a relay), if given

    def get(self, path):
        return self.answer(*self.served.request("GET", path, self.cookies, headers=self.headers, port=self.port))

    def post(self, path, data=None):
        # The token of the login form, or once logged in (it redirects away) of the home page.
        token_page = "/login" if self.get("/login").status_code == 200 else "/"
        fields = dict(data or {})
        return self.answer(*self.served.post_form(path, self.cookies, fields, token_page, self.headers, self.port))

    def post_json(self, path, body, token):
        """A JSON POST with the CSRF token in a header, as passkeys.js sends it."""
        headers = self.headers | {"X-CSRFToken": token}
        return self.answer(
            *self.served.request("POST", path, self.cookies, headers=headers, port=self.port, json_body=body)
        )

    def answer(self, status, reason, headers, body):
        return SimpleNamespace(status_code=status, reason=reason, headers=headers, text=body)

    def whose_profile(self):
        """Whose profile /profile shows this browser, in words: "200 OK: the profile of bob", or where it is sent."""
        response = self.get("/profile")
        if response.status_code != 200:
            return self.said(response)
        words = pages.text(response.text).split()
        return f"200 OK: the profile of {words[words.index('Username') + 1]}"

    def said(self, response):
        """What a response said, in a few words (see `answer`): a page's messages, or else its heading."""
        line = answer(self.served, response.status_code, response.reason, response.headers, response.text)
        if response.status_code in (200, 429) and "Location" not in response.headers and ": " not in line:
            messages = login_messages(response.text)
            heading = re.search(r"<h1>(.*?)</h1>", response.text, re.S)
            if messages:
                line += ": " + ", ".join(f'"{message}"' for message in messages)
            elif heading:
                line += f': the page "{html.unescape(heading.group(1)).strip()}"'
        return line


# Not a code from alice's app: a few that people try first.
GUESSED_CODES = ["000000", "123456", "111111", "654321", "999999", "424242"]


def leaked_password(step_dir):
    """mallory logs in as alice with her leaked password; on a step with two-factor, alice has turned it on.

    Returns the transcript's lines and what it came to: "in" (mallory saw
    alice's profile), "stopped" (she was held at the second stage, her
    guesses refused and then limited) or "other".
    """
    lines = []
    printed = io.StringIO()
    # Behind one proxy, as in step 08's deployment: each visitor's own address in X-Forwarded-For.
    with (
        tempfile.TemporaryDirectory() as folder,
        Served(step_dir, folder, {"PROXY_COUNT": 1}) as served,
        contextlib.redirect_stdout(printed),  # no mail server: the step prints the notice to alice
    ):
        has_two_factor = "two-factor" in served.step.features
        if has_two_factor:
            alice = Browser(served, ALICE_AT_HOME)
            alice.post("/login", {"username": "alice", "password": "wonderland"})
            turned_on = two_factor.turn_on(alice, "wonderland")
            lines.append(f"# alice ({ALICE_AT_HOME}) has turned two-factor on: her phone's app holds the secret,")
            lines.append(f"# and she has put away her {len(turned_on.recovery_codes)} recovery codes.")
        lines.append("# Her password, wonderland, is on a breach list from another site where she used it too.")
        lines.append(f"# mallory ({MALLORY}), in a browser of her own, logs in with it:")
        mallory = Browser(served, MALLORY)
        login = mallory.post("/login", {"username": "alice", "password": "wonderland"})
        lines.append(f"POST /login username=alice: {mallory.said(login)}")
        location = login.headers.get("Location")
        if location and location != "/profile":
            lines.append(f"GET {location}: {mallory.said(mallory.get(location))}")
        profile = mallory.get("/profile")
        lines.append(f"GET /profile: {mallory.said(profile)}")
        outcome = "in" if profile.status_code == 200 and "alice" in served.pages.text(profile.text) else "other"
        if has_two_factor and location == "/login/two-factor":
            lines.append("# She guesses codes:")
            answers = []
            for guess in GUESSED_CODES:
                response = two_factor.second_stage(mallory, guess)
                answers.append(response.status_code)
                lines.append(f"POST /login/two-factor code={guess}: {mallory.said(response)}")
            profile = mallory.get("/profile")
            lines.append(f"GET /profile: {mallory.said(profile)}")
            held = profile.status_code != 200 and outcome == "other"
            if held and answers[:-1] == [200] * (len(answers) - 1) and answers[-1] == 429:
                outcome = "stopped"
            lines.append("# Then alice, at home, logs in with her password and the code her phone shows:")
            alice = Browser(served, ALICE_AT_HOME)
            login = alice.post("/login", {"username": "alice", "password": "wonderland"})
            lines.append(f"POST /login username=alice: {alice.said(login)}")
            response = two_factor.second_stage(alice, turned_on.next_code())
            lines.append(f"POST /login/two-factor code=<her app's>: {alice.said(response)}")
    return lines, outcome


class LeakedPassword(Attack):
    """`leaked-password STEP`: the build warns when the outcome is not what the page says of the step.

    Without two-factor, mallory must get in; with it, she must be held at
    /login/two-factor, her wrong codes answered with the form and then 429.
    """

    sources = ("harness/two_factor.py",)

    def run(self):
        lines, outcome = leaked_password(self.arguments[0])
        [step] = stepkit.select(stepkit.discover(), [self.arguments[0]])
        if "two-factor" in step.features:
            self.came_to(outcome, "stopped", "mallory is stopped at the second stage")
        else:
            self.came_to(outcome, "in", "mallory gets in")
        return self.show(lines)


def relay_phish(step_dir, victim_uses):
    """alice logs in through mallory's relay (harness/relay.py), with her password and code or with her passkey.

    Returns the transcript's lines and what it came to: "in" (mallory,
    replaying what the relay kept, saw alice's profile), "refused" (the
    step refused what alice's authenticator signed on the relay's origin,
    and mallory got nothing) or "other".
    """
    lines = []
    printed = io.StringIO()
    with (
        tempfile.TemporaryDirectory() as folder,
        Served(step_dir, folder) as served,
        contextlib.redirect_stdout(printed),  # no mail server: the step prints its notices
    ):
        site = f"http://localhost:{served.server.port}"
        # The origin a browser is on at the real site (WebAuthn needs a domain: localhost).
        served.app.config["WEBAUTHN_ORIGIN"] = site
        alice = Browser(served, ALICE_AT_HOME)
        alice.post("/login", {"username": "alice", "password": "wonderland"})
        if victim_uses == "passkey":
            authenticator = passkeys.SoftAuthenticator(site)
            found = passkeys.registration_options(
                alice.post("/passkeys/add", {"name": "laptop", "current_password": "wonderland"}).text
            )
            alice.post_json(found["verify"], authenticator.create(found["options"]), found["csrf"])
            lines.append(f"# alice has added a passkey at the real site, {site}.")
        else:
            turned_on = two_factor.turn_on(alice, "wonderland")
            lines.append(f"# alice has turned two-factor on at the real site, {site}.")
        with relay_to(f"http://127.0.0.1:{served.server.port}") as relay:
            lines.append(f"# mallory's look-alike site, {relay.url}, relays every request to the real one.")
            victim = Browser(served, ALICE_AT_HOME, port=relay.server.server_address[1])
            if victim_uses == "passkey":
                lines.append('# alice follows mallory\'s link and presses "Sign in with a passkey" there:')
                button = passkeys.login_button(victim.get("/login").text)
                response = victim.post_json(button["options"], {}, button["csrf"])
                options = json.loads(response.text)
                lines.append(
                    f"POST {button['options']} (via the relay): {victim.said(response)}, rpId {options['rpId']!r}"
                )
                # The browser offers her passkey (the relay is on localhost too) and writes the
                # origin it is on into what the authenticator signs.
                answer = authenticator.get(options, origin=relay.url)
                lines.append(f"# Her browser signs, with her passkey, client data naming the origin {relay.url}.")
                response = victim.post_json(button["verify"], answer, button["csrf"])
                said = json.loads(response.text).get("error") or json.loads(response.text).get("redirect")
                lines.append(
                    f"POST {button['verify']} (via the relay): {response.status_code} {response.reason}: {said!r}"
                )
            else:
                lines.append("# alice follows mallory's link and logs in there, with her password and her app's code:")
                response = victim.post("/login", {"username": "alice", "password": "wonderland"})
                lines.append(f"POST /login username=alice (via the relay): {victim.said(response)}")
                response = two_factor.second_stage(victim, turned_on.next_code())
                lines.append(f"POST /login/two-factor code=<her app's> (via the relay): {victim.said(response)}")
            stolen = dict(relay.stolen)
        kept = ", ".join(f"{name}={shorten(value, 12)}" for name, value in stolen.items())
        lines.append(f"# The relay kept the cookies the real site set: {kept}")
        lines.append(f"# mallory ({MALLORY}) sends them to the real site, from her own browser:")
        mallory = Browser(served, MALLORY)
        mallory.cookies.update(stolen)
        profile = mallory.get("/profile")
        lines.append(f"GET /profile: {mallory.said(profile)}")
        outcome = "in" if profile.status_code == 200 and "alice" in served.pages.text(profile.text) else "other"
        if victim_uses == "passkey":
            lines.append("# At the real site, the same passkey signs alice in:")
            at_home = Browser(served, ALICE_AT_HOME)
            button = passkeys.login_button(at_home.get("/login").text)
            options = json.loads(at_home.post_json(button["options"], {}, button["csrf"]).text)
            response = at_home.post_json(button["verify"], authenticator.get(options), button["csrf"])
            lines.append(
                f"POST {button['verify']}: {response.status_code} {response.reason}: {json.loads(response.text)!r}"
            )
            if outcome == "other" and response.status_code == 200 and profile.status_code in (302, 303):
                outcome = "refused"
    return lines, outcome


class RelayPhish(Attack):
    """`relay-phish STEP`, `:victim-uses: password` (and a code) or `passkey`: the build warns unless a password gets mallory in and a passkey does not."""

    option_spec = {"victim-uses": lambda value: directives.choice(value, ("password", "passkey"))}
    sources = ("harness/relay.py", "harness/passkeys.py", "harness/two_factor.py")

    def run(self):
        victim_uses = self.options.get("victim-uses", "password")
        lines, outcome = relay_phish(self.arguments[0], victim_uses)
        if victim_uses == "passkey":
            self.came_to(outcome, "refused", "the relay gets mallory nothing from a passkey")
        else:
            self.came_to(outcome, "in", "the relay logs mallory in")
        return self.show(lines)


def setup(app):
    app.add_directive("cookie-replay", CookieReplay)
    app.add_directive("guessing-loop", GuessingLoop)
    app.add_directive("login-headers", LoginHeaders)
    app.add_directive("reset-probe", ResetProbe)
    app.add_directive("proxy-lockout", ProxyLockout)
    app.add_directive("signup-probe", SignupProbe)
    app.add_directive("leaked-password", LeakedPassword)
    app.add_directive("relay-phish", RelayPhish)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
