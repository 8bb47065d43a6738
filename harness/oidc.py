"""A real OpenID Connect provider on a free loopback port, and a user who walks its pages (step 12+).

The provider is panva's `oidc-provider` (OpenID Certified) from the npm
registry, run by the machine's Node.js: `harness/oidc_provider.mjs`
configures it, this module installs the package into a cache folder once
per machine and starts and stops it, as `harness.services` does
PostgreSQL and Redis. `ProviderUser` is a browser on the provider's
development login and consent pages: what a person does there, over HTTP.

Standard library only, as `harness.services`: the noxfile starts a provider
for `nox -s oidc-provider` before any virtualenv exists.
"""

import contextlib
import fcntl
import json
import os
import secrets
import shutil
import subprocess
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path

from harness.accounts import USERS
from harness.served import NoRedirects
from harness.services import free_port
from harness.services import stop_process
from harness.services import wait_for_port

# 8.x, not 9.x: 9 wants Node.js 22, and Debian's Node.js here is 20 (9 runs,
# with a warning at every start that its runtime is unsupported).
VERSION = "8.8.1"
SCRIPT = Path(__file__).with_name("oidc_provider.mjs")
# What the development pages are given as the password: they take any.
ANY_PASSWORD = "any password: the development pages take any"


def cache_folder() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "flask-login-steps" / f"oidc-provider-{VERSION}"


def installed() -> Path:
    """oidc-provider's entry module, installed with npm into the cache folder on first use.

    Installed once per machine, never per test: a lock keeps two test
    workers from installing it at the same time.
    """
    folder = cache_folder()
    module = folder / "node_modules" / "oidc-provider" / "lib" / "index.js"
    if module.exists():
        return module
    if shutil.which("node") is None or shutil.which("npm") is None:
        raise RuntimeError("Node.js and npm are not installed: `apt-get install nodejs` (Debian, Ubuntu)")
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not module.exists():
            command = ["npm", "install", "--prefix", str(folder), "--no-audit", "--no-fund", "--silent"]
            subprocess.run([*command, f"oidc-provider@{VERSION}"], check=True, stdout=subprocess.DEVNULL)
    return module


class OidcProvider:
    """oidc-provider on a free loopback port, knowing `clients` and the claims of `accounts` ({login: claims}).

    `clients`: [{"client_id", "client_secret", "redirect_uris"}]. Any login
    not in `accounts` is an account of its own, with a verified address at
    provider.example.
    """

    def __init__(self, clients: list[dict], accounts: dict | None = None):
        self.port = free_port()
        self.issuer = f"http://127.0.0.1:{self.port}"
        self.clients = clients
        self.accounts = accounts or {}
        self.folder = Path(tempfile.mkdtemp(prefix="flask-login-steps-oidc-"))
        self.log = self.folder / "provider.log"
        self.process = None

    def start(self) -> "OidcProvider":
        env = dict(
            os.environ,
            OIDC_PROVIDER_MODULE=str(installed()),
            OIDC_ISSUER=self.issuer,
            OIDC_PORT=str(self.port),
            OIDC_CLIENTS=json.dumps(self.clients),
            OIDC_ACCOUNTS=json.dumps(self.accounts),
            # oidc-provider's warnings about the development pages, once each.
            NODE_ENV="development",
        )
        with self.log.open("wb") as out:
            self.process = subprocess.Popen(["node", str(SCRIPT)], env=env, stdout=out, stderr=out)
        try:
            wait_for_port(self.port, self.process, "oidc-provider")
        except RuntimeError:
            raise RuntimeError(f"oidc-provider did not start:\n{self.log.read_text()}") from None
        return self

    def config(self, name: str = "Example ID", client_index: int = 0) -> dict:
        """The app settings (FLASK_OIDC_... without the prefix) for signing in here as the client `clients[client_index]`."""
        chosen = self.clients[client_index]
        return {
            "OIDC_ISSUER": self.issuer,
            "OIDC_CLIENT_ID": chosen["client_id"],
            "OIDC_CLIENT_SECRET": chosen["client_secret"],
            "OIDC_NAME": name,
        }

    def close(self) -> None:
        if self.process is not None:
            stop_process(self.process)
        shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def oidc_provider(clients: list[dict], accounts: dict | None = None):
    """A started OidcProvider, stopped (and its folder removed) when the block ends."""
    provider = OidcProvider(clients, accounts)
    try:
        yield provider.start()
    finally:
        provider.close()


# The accounts of the provider the tests and the docs use: alice's address
# here, verified; an address the provider never verified; anyone else by name.
ACCOUNTS = {
    "alice": {"email": USERS["alice"]["email"], "email_verified": True},
    "eve": {"email": "eve@provider.example", "email_verified": False},
    # Claims no site should take as they come: alice's address in capitals, no address, one far too long.
    "alice-shouting": {"email": USERS["alice"]["email"].upper(), "email_verified": True},
    "no-address": {"email": "not an address", "email_verified": True},
    "long-address": {"email": "a" * 300 + "@provider.example", "email_verified": True},
}


@contextlib.contextmanager
def test_provider(callbacks: tuple[str, ...] = ("http://localhost/login/oidc/callback",), accounts: dict | None = None):
    """A provider with ACCOUNTS (and `accounts`) and two clients sending users back to `callbacks`: `.ours`, `.theirs`."""
    ours, theirs = client(list(callbacks)), client(list(callbacks), client_id="another-site")
    with oidc_provider([ours, theirs], ACCOUNTS | (accounts or {})) as started:
        started.ours, started.theirs = ours, theirs
        yield started


def client(redirect_uris: list[str], client_id: str = "flask-login-steps") -> dict:
    """A client registration for the provider: an id, a new secret, where it may send users back."""
    return {"client_id": client_id, "client_secret": secrets.token_urlsafe(24), "redirect_uris": redirect_uris}


class ProviderUser:
    """A person at the provider's pages, in a browser of their own (its cookies): logs in there and consents.

    `sign_in(authorize_url)` follows the provider's redirects from the URL
    that the app sent the browser to, through the login and consent pages,
    and returns the URL the provider sends the browser back to: the app's
    callback, with a code and the state (or an error). It does not follow
    that one: the app's own client does.
    """

    def __init__(self, login: str, trace: list | None = None):
        self.login = login
        # (method, URL, status, Location) of each request, when given a list to keep them in.
        self.trace = trace
        self.jar = CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar), NoRedirects)

    def request(self, url: str, form: dict | None = None) -> tuple[int, str, str]:
        """One request: (status, Location or "", body)."""
        data = urllib.parse.urlencode(form).encode() if form is not None else None
        try:
            response = self.opener.open(urllib.request.Request(url, data=data), timeout=20)
        except urllib.error.HTTPError as error:  # redirects (none followed) and 4xx
            response = error
        with response:
            body = response.read().decode(errors="replace")
            location = response.headers.get("Location") or ""
            if self.trace is not None:
                self.trace.append(("POST" if form is not None else "GET", url, response.status, location))
            return response.status, urllib.parse.urljoin(url, location) if location else "", body

    def sign_in(self, authorize_url: str, consent: bool = True) -> str:
        """Walk the provider from `authorize_url` to the redirect back to the app; `consent=False` cancels."""
        url, provider = authorize_url, self.origin(authorize_url)
        for _ in range(12):
            if not url.startswith(provider):
                return url  # back to the app
            status, location, body = self.request(url)
            if location:
                url = location
                continue
            if status != 200:
                raise AssertionError(f"the provider answered {status} at {url}: {body[:300]}")
            url = self.answer(url, body, consent)
        raise AssertionError("the provider kept redirecting")

    def answer(self, url: str, body: str, consent: bool) -> str:
        """Fill the page at `url` (login or consent) as the person would; where the provider then sends them."""
        from harness.pages import forms  # here: this module's top needs the standard library only
        from harness.pages import links

        [form] = forms(body)
        action = urllib.parse.urljoin(url, form["action"])
        fields = {name: attributes.get("value", "") for name, attributes in form["inputs"].items()}
        if "login" in fields:
            fields |= {"login": self.login, "password": ANY_PASSWORD}
        elif not consent:
            [abort] = [link for link in links(body) if link.endswith("/abort")]
            status, location, _ = self.request(urllib.parse.urljoin(url, abort))
            return location
        status, location, page = self.request(action, fields)
        if not location:
            raise AssertionError(f"the provider answered {status} to {action}: {page[:300]}")
        return location

    @staticmethod
    def origin(url: str) -> str:
        parts = urllib.parse.urlsplit(url)
        return f"{parts.scheme}://{parts.netloc}"


def start_sign_in(auth, path: str = "/login/oidc", data: dict | None = None) -> str:
    """Press the app's "Sign in with ..." (or "Link") button in `auth` (an AuthActions): the provider URL it redirects to."""
    response = auth.post(path, data)
    location = response.headers.get("Location", "")
    assert response.status_code in (302, 303) and not location.startswith("/"), (response.status_code, location)
    return location


def back_at_the_app(auth, callback_url: str):
    """Follow the provider's redirect back to the app, in `auth`'s browser: the app's answer."""
    parts = urllib.parse.urlsplit(callback_url)
    return auth.client.get(f"{parts.path}?{parts.query}")


def sign_in(auth, login: str, path: str = "/login/oidc", data: dict | None = None, consent: bool = True):
    """The whole round trip: the app's button, the provider's pages as `login`, back to the app. (answer, callback URL)."""
    callback = ProviderUser(login).sign_in(start_sign_in(auth, path, data), consent=consent)
    return back_at_the_app(auth, callback), callback
