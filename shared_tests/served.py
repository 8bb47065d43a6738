"""A step served over real HTTP by `flask run` in a process of its own, and a browser for it.

For what only a real server shows: two processes sharing one store, or a
page answered before the work it starts in the background is done.
"""

import contextlib
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from http.cookies import SimpleCookie

from conftest import USERS
from pages import csrf_token
from pages import words
from services import free_port
from services import stop_process


class Server:
    """One `flask run` process of the step, on a free loopback port."""

    def __init__(self, step, env, log):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        command = [sys.executable, "-m", "flask", "--app", str(step.path), "run", "--port", str(self.port)]
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                [*command, "--host", "127.0.0.1"], env=env, cwd=log.parent, stdout=out, stderr=out
            )

    def wait(self, timeout=30):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server stopped at start-up:\n{self.log.read_text()}")
            with contextlib.suppress(OSError), urllib.request.urlopen(self.url + "/", timeout=2):
                return
            time.sleep(0.1)
        raise RuntimeError(f"the server did not answer on {self.url} in {timeout} s:\n{self.log.read_text()}")

    def stop(self):
        stop_process(self.process)

    def errors(self):
        lines = self.log.read_text(errors="replace").splitlines()
        return [line for line in lines if '" 500 ' in line or line.startswith("Traceback")]


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):
        return None  # answer the 302 itself, as the tests want to see it


class Browser:
    """Keeps cookies by name and sends them to whichever server it asks: both are 127.0.0.1, one site."""

    opener = urllib.request.build_opener(_NoRedirects)

    def __init__(self):
        self.cookies = {}

    def request(self, server, path, form=None):
        """GET (or POST `form`) and return (status, Location or page text)."""
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        request = urllib.request.Request(server.url + path, data=data)
        if self.cookies:
            request.add_header("Cookie", "; ".join(f"{name}={value}" for name, value in self.cookies.items()))
        try:
            response = self.opener.open(request, timeout=10)
        except urllib.error.HTTPError as error:  # 3xx and 4xx, with no redirect followed
            response = error
        with response:
            for header in response.headers.get_all("Set-Cookie") or []:
                cookie = SimpleCookie()
                cookie.load(header)
                for name, morsel in cookie.items():
                    if morsel.value and morsel["max-age"] != "0":
                        self.cookies[name] = morsel.value
                    else:  # a deletion
                        self.cookies.pop(name, None)
            body = response.read().decode(errors="replace")
            return response.status, response.headers.get("Location") or body

    def post(self, server, path, fields=None):
        """POST a form with a CSRF token from this server's page, as the browser would."""
        status, page = self.request(server, "/login")
        if status != 200:
            status, page = self.request(server, "/")
        return self.request(server, path, {**(fields or {}), "csrf_token": csrf_token(page) or ""})

    def log_in(self, server, username="alice", remember=False):
        fields = {"username": username, "password": USERS[username]["password"]}
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
        assert status == 200
        return next(name for name in USERS if name in words(page))
