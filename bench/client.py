"""A small bounded HTTP client for loopback benchmarks: cookies by hand, no deps."""

import http.client
import re
import time
import urllib.parse


class Client:
    """One browser-like visitor: keeps cookies, sends a fixed number of requests.

    `headers` go with every request (a proxy's X-Forwarded-For, say);
    `location` is the last answer's Location header, or None.
    """

    def __init__(self, port, headers=None):
        self.port = port
        self.cookies = {}
        self.headers = dict(headers or {})
        self.location = None

    def request(self, method, path, form=None):
        """Send one request; return (status, body). The server closes each connection."""
        headers = dict(self.headers)
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers)
            response = conn.getresponse()
            data = response.read()
            self.location = response.headers.get("Location")
            for header in response.headers.get_all("Set-Cookie") or ():
                name, _, rest = header.partition("=")
                self.cookies[name.strip()] = rest.split(";", 1)[0]
            return response.status, data
        finally:
            conn.close()

    def csrf_token(self):
        """A CSRF token from the login form, or None where the step has none."""
        _, body = self.request("GET", "/login")
        found = re.search(rb'name="csrf_token"[^>]*value="([^"]+)"', body)
        return found.group(1).decode() if found else None

    def login_form(self, username, password, field="username"):
        """The login form's fields; `field` names the one that says who logs in (Flask-Security-Too: email)."""
        form = {field: username, "password": password}
        token = self.csrf_token()
        if token:
            form["csrf_token"] = token
        return form

    def login(self, username, password, field="username"):
        status, _ = self.request("POST", "/login", self.login_form(username, password, field))
        if status != 302:
            raise RuntimeError(f"login as {username} gave {status}, not a redirect")

    def rate(self, path, count):
        """Requests per second over `count` GETs of `path`, each checked for 200."""
        start = time.perf_counter()
        for _ in range(count):
            status, _ = self.request("GET", path)
            if status != 200:
                raise RuntimeError(f"GET {path} gave {status}")
        return count / (time.perf_counter() - start)

    def form(self, path, **fields):
        """The fields, with a CSRF token from the form at `path` where the step has them."""
        _, body = self.request("GET", path)
        found = re.search(rb'name="csrf_token"[^>]*value="([^"]+)"', body)
        return fields | ({"csrf_token": found.group(1).decode()} if found else {})

    def timed_post(self, path, form, expect=b"Invalid username or password."):
        """Seconds for one POST (the form, with its CSRF token, is fetched beforehand); its answer is checked."""
        start = time.perf_counter()
        status, body = self.request("POST", path, form)
        elapsed = time.perf_counter() - start
        if status != 200 or expect not in body:
            raise RuntimeError(f"POST {path} gave {status} without {expect!r}")
        return elapsed
