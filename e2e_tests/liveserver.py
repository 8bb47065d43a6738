"""Serve a step for real, as a learner would: `flask run` in its own process.

Each server runs a copy of the step in a temporary folder, so its instance
folder (secret key, database) is a fresh one and the step's own is never
touched; the secret key and the database come from FLASK_ variables. A step
that sends email (step 07+) sends it to a real SMTP server of its own, whose
inbox the tests read.
"""

import contextlib
import secrets
import shutil
import subprocess
import sys
import time
import urllib.request

from harness.accounts import USERS
from harness.accounts import create_user_command
from harness.services import environment_without
from harness.services import free_port
from harness.services import stop_process
from harness.smtp import smtp_server


class LiveServer:
    """One step served by `flask run` on a free loopback port."""

    def __init__(self, step, folder):
        self.step = step
        self.folder = folder
        self.app = folder / step.name
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.log = folder / "server.log"
        self.process = None
        self.inbox = None  # the SMTP server's inbox, for a step that sends email
        self._mail = contextlib.ExitStack()
        self.env = environment_without()
        self.env.update(
            FLASK_SECRET_KEY=secrets.token_hex(32),
            FLASK_SQLALCHEMY_DATABASE_URI=f"sqlite:///{folder / 'users.sqlite'}",
            # bcrypt's cheapest cost (the value is read as JSON, so a number):
            # the tests log in often, and the cost is not what they check.
            FLASK_BCRYPT_LOG_ROUNDS="4",
        )

    def url(self, path="/"):
        return self.base_url + path

    def flask(self, *args, **kwargs):
        """Run `flask --app <copy> ARGS...` with this server's configuration."""
        command = [sys.executable, "-m", "flask", "--app", str(self.app), *args]
        return subprocess.run(command, env=self.env, cwd=self.folder, capture_output=True, text=True, **kwargs)

    def add_users(self):
        """Create alice and bob through the step's `create-user` command."""
        for name in USERS:
            args, typed = create_user_command(self.step, name)
            result = self.flask(*args, input=typed, timeout=60)
            if result.returncode != 0:
                raise RuntimeError(f"create-user {name} failed:\n{result.stdout}{result.stderr}")

    def start(self, timeout=30):
        if "password-reset" in self.step.features:
            self.inbox = self._mail.enter_context(smtp_server())
            self.env.update({f"FLASK_{name}": str(value) for name, value in self.inbox.config().items()})
        shutil.copytree(self.step.path, self.app, ignore=shutil.ignore_patterns("instance", "__pycache__"))
        if "database" in self.step.features:
            self.add_users()
        command = [sys.executable, "-m", "flask", "--app", str(self.app), "run", "--host", "127.0.0.1"]
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                [*command, "--port", str(self.port)], env=self.env, cwd=self.folder, stdout=log, stderr=log
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.step.name} stopped at start-up:\n{self.log.read_text()}")
            with contextlib.suppress(OSError), urllib.request.urlopen(self.url("/"), timeout=2) as response:
                if response.status == 200:
                    return self
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"{self.step.name} did not answer on {self.base_url} in {timeout} s:\n{self.log.read_text()}"
        )

    def stop(self):
        if self.process is not None:
            stop_process(self.process)
        self._mail.close()

    def errors(self):
        """Lines of the server's log that tell of a 500 or a traceback."""
        lines = self.log.read_text(errors="replace").splitlines()
        return [line for line in lines if '" 500 ' in line or line.startswith("Traceback")]


@contextlib.contextmanager
def serve(step, folder):
    """Serve `step` from a copy in `folder` (which must exist); yield the LiveServer."""
    server = LiveServer(step, folder)
    try:
        yield server.start()
    finally:
        server.stop()
