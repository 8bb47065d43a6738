"""The `session-cookie` directive: a real Flask session cookie, made at build time.

`session-cookie` logs in to a step with Flask's test client and shows the
session cookie it got, decoded; or, with `:show: forgery`, the cookie
rewritten to claim another user's id, and what the step answers to it.
"""

import base64
import json
import sys
import tempfile
import zlib

from docutils import nodes
from docutils.parsers.rst import directives
from repofiles import ROOT
from sphinx.util import logging
from stepinfo import StepDirective

from harness import steps as stepkit

logger = logging.getLogger(__name__)


def decode_cookie(cookie):
    """Read a Flask session cookie without the secret key: it is signed, not encrypted.

    The cookie is three parts joined by dots: the data, a timestamp and a
    signature. The data is JSON in URL-safe base64; a leading dot means it
    was also compressed with zlib, which Flask does when that is shorter.
    """
    compressed = cookie.startswith(".")
    payload, timestamp, signature = cookie.lstrip(".").split(".")
    data = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    if compressed:
        data = zlib.decompress(data)
    return json.loads(data)


class SessionCookie(StepDirective):
    """Log in to a step and show its session cookie: raw and decoded, or forged.

    The step's own create_app() runs with a fixed, public test key and a
    throwaway database; from step 03, alice and bob are added with the
    step's `create-user` command (steps 01-02 ship them). Then alice logs
    in through the login form, CSRF token and all when the form has one. `:keys:` lists the keys the text explains: if the cookie
    ever holds others, the build warns, so the page cannot quietly go
    stale. `:show: forgery` instead rewrites the cookie's data to claim
    bob's id, keeps alice's signature, and shows what the step answers.
    """

    option_spec = {
        "keys": directives.unchanged_required,
        "show": lambda value: directives.choice(value, ("cookie", "forgery")),
    }

    def run(self):
        found = self.find_step()
        if found is None:
            return []
        step = found.path
        for path in step.rglob("*"):
            if path.suffix in (".py", ".html", ".toml"):
                self.env.note_dependency(str(path))
        try:
            visit = log_in(step)
        except Exception as error:  # any failure here is a broken docs build
            logger.warning("could not log in to %s: %r", step.name, error, location=self.get_location())
            return []
        if self.options.get("show") == "forgery":
            blocks = self.forgery(visit)
        else:
            blocks = self.cookie(visit["cookie"], step.name)
        for block in blocks:
            self.set_source_info(block)
        return blocks

    def cookie(self, cookie, step_name):
        data = decode_cookie(cookie)
        expected = set(self.options.get("keys", "").split())
        if expected and set(data) != expected:
            logger.warning(
                "the session cookie of %s holds %s, but the page explains %s",
                step_name,
                sorted(data),
                sorted(expected),
                location=self.get_location(),
            )
        # The three parts one under the other: the dots are the point.
        raw_text = f"session={cookie}\n\n" + "\n".join(f"{name:<10} {part}" for name, part in split_cookie(cookie))
        decoded_text = json.dumps(data, indent=2, sort_keys=True)
        return [
            nodes.literal_block(raw_text, raw_text, language="text"),
            nodes.literal_block(decoded_text, decoded_text, language="json"),
        ]

    def forgery(self, visit):
        if visit["forged_status"] == 200:
            logger.warning("the step accepted a forged session cookie", location=self.get_location())
        text = (
            f"session={visit['forged']}\n\n"
            + "\n".join(f"{name:<10} {part}" for name, part in split_cookie(visit["forged"]))
            + "\n\nGET /profile\n"
            + f"  with alice's cookie:    {visit['real_answer']}\n"
            + f"  with the forged cookie: {visit['forged_answer']}"
        )
        return [nodes.literal_block(text, text, language="text")]


def split_cookie(cookie):
    """The cookie's three parts, named; a leading dot stays with the data."""
    names = ("data", "timestamp", "signature")
    parts = list(zip(names, cookie.lstrip(".").split("."), strict=True))
    if cookie.startswith("."):
        parts[0] = ("data", "." + parts[0][1])
    return parts


def encode_cookie_data(data, compressed):
    """The reverse of decode_cookie()'s first part: anyone can do it, no key needed."""
    payload = json.dumps(data, separators=(",", ":")).encode()
    if compressed:
        payload = zlib.compress(payload)
    return ("." if compressed else "") + base64.urlsafe_b64encode(payload).decode().rstrip("=")


def answer(response):
    """What a response said, in one line: "200 OK" or "302 FOUND -> /login?next=..."."""
    location = response.headers.get("Location")
    return response.status + (f" -> {location}" if location else "")


def log_in(step_dir):
    """Start the step with a test key, add alice and bob, log alice in, then forge her cookie."""
    sys.path.insert(0, str(ROOT / "shared_tests"))
    try:
        from harness.pages import csrf_token
    finally:
        sys.path.remove(str(ROOT / "shared_tests"))

    module = stepkit.load_module(step_dir, f"docs_{step_dir.name}")
    with tempfile.TemporaryDirectory() as folder:
        app = stepkit.app_factory(module)(
            {
                "TESTING": True,
                "SECRET_KEY": "a-key-for-the-docs-only",
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder}/docs.sqlite",
                "BCRYPT_LOG_ROUNDS": 4,
            }
        )
        # Steps 01-02 ship alice and bob; later steps make them with create-user.
        if "create-user" in app.cli.commands:
            for name, password in (("alice", "wonderland"), ("bob", "can-we-fix-it")):
                args = ["create-user", name]
                if "email" in {param.name for param in app.cli.commands["create-user"].params}:
                    args += ["--email", f"{name}@example.com"]
                with app.app_context():  # as `flask` runs every command
                    result = app.test_cli_runner().invoke(args=args, input=f"{password}\n{password}\n")
                if result.exit_code != 0:
                    raise RuntimeError(result.output)
        client = app.test_client()
        form = {"username": "alice", "password": "wonderland"}
        token = csrf_token(client.get("/login").text)
        if token is not None:
            form["csrf_token"] = token
        response = client.post("/login", data=form)
        if response.status_code not in (302, 303):
            raise RuntimeError(f"logging in answered {response.status_code}")
        # Follow the redirect, as a browser would: the profile page adds to the session.
        real = client.get(response.headers["Location"])
        if real.status_code != 200:
            raise RuntimeError("the profile page did not answer 200")
        cookie = client.get_cookie("session").value

        # Claim to be bob (id 2), keeping alice's timestamp and signature.
        # Step 01 stores the id as a number under "user_id"; Flask-Login as
        # a string under "_user_id".
        data = decode_cookie(cookie)
        key = "_user_id" if "_user_id" in data else "user_id"
        data[key] = "2" if isinstance(data[key], str) else 2
        _, timestamp, signature = cookie.lstrip(".").split(".")
        forged = f"{encode_cookie_data(data, cookie.startswith('.'))}.{timestamp}.{signature}"
        attacker = app.test_client()
        attacker.set_cookie("session", forged)
        forged_response = attacker.get("/profile")
        return {
            "cookie": cookie,
            "real_answer": answer(real),
            "forged": forged,
            "forged_status": forged_response.status_code,
            "forged_answer": answer(forged_response),
        }


def setup(app):
    app.add_directive("session-cookie", SessionCookie)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
