"""Serve a step for real, as a learner would: `flask run` in its own process.

Each server runs a copy of the step in a temporary folder, so its instance
folder (secret key, database) is a fresh one and the step's own is never
touched; the secret key and the database come from FLASK_ variables. A step
that sends email (step 07+) sends it to a real SMTP server of its own, whose
inbox the tests read; one that signs in with an OpenID provider (step 12+)
gets a real provider of its own.
"""

import contextlib
import secrets
import shutil
import sys

from harness import launcher
from harness.apps import add_users
from harness.apps import close_database
from harness.oidc import test_provider
from harness.served import Server
from harness.services import environment_without
from harness.services import free_port
from harness.smtp import smtp_server
from harness.steps import app_factory
from harness.steps import load_module


class LiveServer:
    """One step served by `flask run` on a free loopback port."""

    def __init__(self, step, folder):
        self.step = step
        self.folder = folder
        self.app = folder / step.name
        self.port = free_port()
        # Passkeys need a domain (their relying party id) and a secure
        # context: http://localhost is both, and 127.0.0.1 neither.
        host = "localhost" if "passkeys" in step.features else "127.0.0.1"
        self.base_url = f"http://{host}:{self.port}"
        self.log = folder / "server.log"
        self.server = None
        self.inbox = None  # the SMTP server's inbox, for a step that sends email
        self.provider = None  # the OpenID provider (harness/oidc.py), for a step that signs in with one
        self._services = contextlib.ExitStack()  # its SMTP server and OpenID provider
        self.created = set()  # the users that tests made with create_user
        self.env = environment_without()
        self.env.update(
            FLASK_SECRET_KEY=secrets.token_hex(32),
            FLASK_SQLALCHEMY_DATABASE_URI=f"sqlite:///{folder / 'users.sqlite'}",
            # bcrypt's cheapest cost (the value is read as JSON, so a number):
            # the tests log in often, and the cost is not what they check.
            FLASK_BCRYPT_LOG_ROUNDS="4",
        )
        if "passkeys" in step.features:
            # The origin the browser will be on, which what it signs must name.
            self.env["FLASK_WEBAUTHN_ORIGIN"] = self.base_url

    def url(self, path="/"):
        return self.base_url + path

    def flask(self, *args, **kwargs):
        """Run `flask --app <copy> ARGS...` with this server's configuration."""
        command = [sys.executable, "-m", "flask", "--app", str(self.app), *args]
        return launcher.run(command, env=self.env, cwd=self.folder, capture_output=True, text=True, **kwargs)

    def create_user(self, username, password):
        """A user of a test's own, by `flask create-user` as a learner would (address: USERNAME@example.com).

        The server lives for the whole run: a test that changes its user's
        password or login must not change alice's or bob's for the others.
        """
        # Two tests that made one name would share its password, two-factor, passkeys, sessions.
        assert username not in self.created, f"another test has made {username!r} already: choose a name of its own"
        self.created.add(username)
        typed = f"{password}\n" * 2
        result = self.flask("create-user", username, "--email", f"{username}@example.com", input=typed, timeout=60)
        assert result.returncode == 0, result.stdout + result.stderr

    def add_users(self):
        """Create alice and bob through the step's `create-user` command, run in this process.

        On an app made from the copy with this server's settings: one start
        for both users, where a `flask` process each costs a second or more.
        """
        module = load_module(self.app, f"e2e_users_{self.step.name}")
        app = app_factory(module)(
            {
                "SECRET_KEY": self.env["FLASK_SECRET_KEY"],
                "SQLALCHEMY_DATABASE_URI": self.env["FLASK_SQLALCHEMY_DATABASE_URI"],
                "BCRYPT_LOG_ROUNDS": int(self.env["FLASK_BCRYPT_LOG_ROUNDS"]),
            }
        )
        try:
            add_users(app, self.step)
        finally:
            close_database(app)

    def start(self, timeout=30):
        if "password-reset" in self.step.features:
            self.inbox = self._services.enter_context(smtp_server())
            self.env.update({f"FLASK_{name}": str(value) for name, value in self.inbox.config().items()})
        if "openid-connect" in self.step.features:
            # A real OpenID provider of this server's own, sending users back here.
            self.provider = self._services.enter_context(test_provider((self.url("/login/oidc/callback"),)))
            self.env.update({f"FLASK_{name}": value for name, value in self.provider.config().items()})
        shutil.copytree(self.step.path, self.app, ignore=shutil.ignore_patterns("instance", "__pycache__"))
        if "database" in self.step.features:
            self.add_users()
        self.server = Server(self.step, self.env, self.log, path=self.app, port=self.port)
        try:
            self.server.wait(timeout=timeout)
        except RuntimeError:
            self.stop()
            raise
        return self

    def stop(self):
        if self.server is not None:
            self.server.stop()
        self._services.close()

    def errors(self):
        """Lines of the server's log that tell of a 500 or a traceback."""
        return self.server.errors()


@contextlib.contextmanager
def serve(step, folder):
    """Serve `step` from a copy in `folder` (which must exist); yield the LiveServer."""
    server = LiveServer(step, folder)
    try:
        yield server.start()
    finally:
        server.stop()
