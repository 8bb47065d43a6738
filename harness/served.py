"""A step served over real HTTP in a process of its own, and a browser for it.

For what only a real server shows: two processes sharing one store, a page
answered before the work it starts in the background is done, simultaneous
requests, gunicorn's workers. One `Server` starts `flask run` (or gunicorn)
for every such test; one `Browser` keeps the cookies.
"""

import contextlib
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from http.cookies import SimpleCookie

from harness import launcher
from harness.accounts import USERS
from harness.pages import csrf_token
from harness.pages import words
from harness.services import free_port
from harness.services import gunicorn_command
from harness.services import stop_process


class Server:
    """One process serving the step on a free loopback port: `flask run`, or gunicorn with `workers`.

    `path` is the step's folder, or a copy of it; the process runs in the
    folder of `log`, where it writes what it prints. `port`: a free one
    unless given.
    """

    def __init__(self, step, env, log, workers=None, path=None, port=None):
        path = path or step.path
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        if workers:
            command = gunicorn_command(path, self.port, workers)
        else:
            command = [sys.executable, "-m", "flask", "--app", str(path), "run", "--host", "127.0.0.1"]
            command += ["--port", str(self.port)]
        with log.open("wb") as out:
            self.process = launcher.Popen(command, env=env, cwd=log.parent, stdout=out, stderr=out)

    def wait(self, path="/", timeout=60):
        """Return once `path` answers 200; fail if the process stops first or `timeout` passes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server stopped at start-up:\n{self.log.read_text()}")
            with contextlib.suppress(OSError), urllib.request.urlopen(self.url + path, timeout=2):
                return
            time.sleep(0.1)
        raise RuntimeError(f"the server did not answer on {self.url} in {timeout} s:\n{self.log.read_text()}")

    def stop(self):
        # gunicorn gives its workers time to finish their requests.
        stop_process(self.process, timeout=20)

    def errors(self):
        """Lines of the log that tell of a 500 or a traceback."""
        lines = self.log.read_text(errors="replace").splitlines()
        return [line for line in lines if '" 500 ' in line or line.startswith("Traceback")]


@contextlib.contextmanager
def serving(step, env, log, **options):
    """A Server (see there for `options`), answering; stopped after, and failing if it logged an error."""
    server = Server(step, env, log, **options)
    try:
        server.wait()
        yield server
        assert server.errors() == [], f"the server logged errors; see {log}"
    finally:
        server.stop()


class NoRedirects(urllib.request.HTTPRedirectHandler):
    """For urllib's openers: a redirect comes back as the answer, not followed (the tests look at each 302)."""

    def redirect_request(self, *args, **kwargs):
        return None


class Browser:
    """Keeps cookies by name and sends them to whichever server it asks: both are 127.0.0.1, one site.

    `headers` go with every request (a proxy's, say). After each request,
    `answer_headers` and `set_cookies` hold what the last answer sent, and
    `statuses` every status seen.
    """

    opener = urllib.request.build_opener(NoRedirects)

    def __init__(self, headers=None):
        self.cookies = {}
        self.headers = dict(headers or {})
        self.statuses = []
        self.answer_headers = None
        self.set_cookies = {}

    def request(self, server, path, form=None):
        """GET (or POST `form`) and return (status, Location or page text)."""
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        request = urllib.request.Request(server.url + path, data=data, headers=self.headers)
        if self.cookies:
            request.add_header("Cookie", "; ".join(f"{name}={value}" for name, value in self.cookies.items()))
        try:
            response = self.opener.open(request, timeout=20)
        except urllib.error.HTTPError as error:  # 3xx and 4xx, with no redirect followed
            response = error
        with response:
            self.set_cookies = {}
            for header in response.headers.get_all("Set-Cookie") or []:
                cookie = SimpleCookie()
                cookie.load(header)
                for name, morsel in cookie.items():
                    self.set_cookies[name] = morsel
                    if morsel.value and morsel["max-age"] != "0":
                        self.cookies[name] = morsel.value
                    else:  # a deletion
                        self.cookies.pop(name, None)
            body = response.read().decode(errors="replace")
            self.statuses.append(response.status)
            self.answer_headers = response.headers
            return response.status, response.headers.get("Location") or body

    def post(self, server, path, fields=None):
        """POST a form with a CSRF token from this server's page, as the browser would."""
        status, page = self.request(server, "/login")
        if status != 200:
            status, page = self.request(server, "/")
        return self.request(server, path, {**(fields or {}), "csrf_token": csrf_token(page) or ""})

    def log_in(self, server, username="alice", password=None, remember=False):
        """POST the login form: `username`'s own password unless another is given."""
        fields = {"username": username, "password": USERS[username]["password"] if password is None else password}
        if remember:
            fields["remember"] = "y"
        return self.post(server, "/login", fields)

    def logged_in_as(self, server):
        """The username /profile shows, or None when it sends us to log in."""
        status, page = self.request(server, "/profile")
        assert status < 500, page
        if status in (302, 303):
            assert page.startswith("/login"), page
            return None
        assert status == 200, (status, page)
        return next(name for name in USERS if name in words(page))


def assert_one_site(one, two, browser=Browser):
    """Two servers of one site: a login on one is valid on the other, a logout on either ends it on both.

    `browser` makes each visitor. alice logs in on `one`, bob (remembered)
    on `two`; each is seen on both, twice (a server may hand each request
    to another worker); then alice logs out on `two`, and she, and a copy of
    her cookies, are logged out on both while bob is not.
    """
    alice, bob = browser(), browser()
    assert alice.log_in(one) == (302, "/profile")
    assert bob.log_in(two, "bob", remember=True) == (302, "/profile")
    for server in (one, two, one, two):
        assert alice.logged_in_as(server) == "alice"
        assert bob.logged_in_as(server) == "bob"
    thief = browser()
    thief.cookies = dict(alice.cookies)
    assert alice.post(two, "/logout")[0] in (302, 303)
    for server in (one, two):
        assert alice.logged_in_as(server) is None
        assert thief.logged_in_as(server) is None
        assert bob.logged_in_as(server) == "bob"
