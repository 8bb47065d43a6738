"""Stopping an abused account, run while the docs are built (step 13's page).

- `abuse-stop STEP`: mallory is logged in as bob and has kept a copy of
  his session cookie; the operator stops the account with what the step
  offers. Without an admin area (step 12) that is SQL on the database,
  and the copied cookie still opens bob's profile. With one (step 13) it
  is `flask roles grant` once, then the Disable button; the copy opens
  nothing, and bob's password is told that the account is disabled. The
  build warns unless the copy works on a step without the admin area and
  fails on a step with it.

The step is served over HTTP on a loopback port (attacks.Served), its
database a SQLite file in a temporary folder.
"""

import contextlib
import io
import tempfile

import sqlalchemy as sa
from attacks import Attack
from attacks import Browser
from attacks import Served

from harness import steps as stepkit
from harness.apps import CliRunner

# What the operator of step 12 types: no password matches an empty hash (step 12's accounts without one).
LOCK_OUT = "UPDATE \"user\" SET password_hash = '' WHERE username = 'bob'"


def abuse_stop(step_dir):
    """The transcript, and what it came to: "still in" (the copy opens the profile after the stop) or "out"."""
    lines = []
    with (
        tempfile.TemporaryDirectory() as folder,
        Served(step_dir, folder, {"PROXY_COUNT": 1}) as served,
        contextlib.redirect_stdout(io.StringIO()),  # no mail server: the step prints its notices
    ):
        mallory = Browser(served, "203.0.113.66")
        login = mallory.post("/login", {"username": "bob", "password": "can-we-fix-it"})
        lines.append("# mallory has bob's password, and logs in as him to send spam:")
        lines.append(f"POST /login username=bob: {mallory.said(login)}")
        copy = Browser(served, "203.0.113.67")
        copy.cookies = dict(mallory.cookies)
        lines.append("# She keeps a copy of the session cookie in a second browser.")
        lines.append("# The operator stops the account:")
        if "admin-area" in served.step.features:
            granted = CliRunner(served.app).invoke(args=["roles", "grant", "alice", "admin"])
            lines.append(f"$ flask --app steps/{step_dir} roles grant alice admin")
            lines.append(granted.output.strip())
            alice = Browser(served, "198.51.100.7")
            alice.post("/login", {"username": "alice", "password": "wonderland"})
            response = alice.post("/admin/users/2/disable")
            lines.append("# alice logs in, and presses Disable on bob's row of /admin/users:")
            lines.append(f"POST /admin/users/2/disable: {alice.said(response)}")
        else:
            engine = sa.create_engine(served.app.config["SQLALCHEMY_DATABASE_URI"])
            with engine.begin() as connection:
                changed = connection.execute(sa.text(LOCK_OUT)).rowcount
            engine.dispose()
            lines.append(f"sqlite> {LOCK_OUT};")
            lines.append(f"# ({changed} row changed: no password opens bob's account now)")
        lines.append("# mallory, in both browsers:")
        lines.append(f"GET /profile: {mallory.whose_profile()}")
        after = copy.whose_profile()
        lines.append(f"GET /profile with the copy: {after}")
        again = Browser(served, "203.0.113.66")
        login = again.post("/login", {"username": "bob", "password": "can-we-fix-it"})
        lines.append(f"POST /login username=bob: {again.said(login)}")
    return lines, "still in" if "the profile of bob" in after else "out"


class AbuseStop(Attack):
    """`abuse-stop STEP`: the build warns unless the copied cookie outlives the stop without an admin area only."""

    sources = ("docs/_ext/adminarea.py",)

    def run(self):
        lines, outcome = abuse_stop(self.arguments[0])
        [step] = stepkit.select(stepkit.discover(), [self.arguments[0]])
        if "admin-area" in step.features:
            self.came_to(outcome, "out", "disabling the account ends mallory's copied session")
        else:
            self.came_to(outcome, "still in", "the copied cookie still opens bob's profile")
        return self.show(lines)


def setup(app):
    app.add_directive("abuse-stop", AbuseStop)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
