"""One step, served for the benchmark: the step's own app plus a bare twin.

gunicorn calls `create_app()` here, with BENCH_STEP naming the step.
`/...` is the step's create_app() app, untouched. `/bare/profile` is a
second create_app() instance whose profile view is swapped for one that
renders the same profile.html for a fixed user: it has no before_request
functions and a session that never reads or writes a cookie. Both share one
process, so the only difference between `/profile` and `/bare/profile` is
the session and user loading the step does. The bench checks that both
pages are the same before it times them. The steps are never edited.
"""

import os
import sys
from pathlib import Path

from flask import g
from flask import render_template
from flask.sessions import SecureCookieSession
from flask.sessions import SessionInterface

from harness.accounts import USERS
from harness.apps import add_users
from harness.steps import discover
from harness.steps import load_module
from harness.steps import select

ROOT = Path(__file__).resolve().parent.parent

# The user both routes show; steps 03+ get alice (and bob) in their database.
USER = {"username": "alice", **USERS["alice"]}


def build(step_name):
    """The step's app and its bare twin, for the step named `step_name`."""
    [step] = select(discover(), [step_name])
    package = load_module(step.path, f"bench_{step.name}")
    app = package.create_app()
    # alice and bob, with the step's own create-user command (steps 03+).
    add_users(app, step)
    bare = package.create_app()
    # No session reading, no user loading: what is left is the template.
    bare.before_request_funcs.clear()
    bare.session_interface = NoCookieSession()
    fixed = fixed_user(package, step)

    def bare_profile():
        """profile.html for a fixed user, with nothing loaded per request."""
        if "database" in step.features:
            g._login_user = fixed  # Flask-Login's current_user reads this
        else:
            g.user = fixed
        return render_template("profile.html")

    # The same endpoint, so every url_for() in the templates still works.
    bare.view_functions["views.profile"] = bare_profile
    return app, bare


class NoCookieSession(SessionInterface):
    """A session made fresh in memory per request: no cookie decoded, none sent.

    It holds a fixed raw CSRF secret, so a form's csrf_token() signs a token
    as it does in the real app, without touching a cookie.
    """

    def open_session(self, app, request):
        return SecureCookieSession({"csrf_token": "bench-fixed-raw-token"})

    def save_session(self, app, session, response):
        pass


def fixed_user(package, step):
    """A user object of the step's own class, never stored anywhere."""
    models = sys.modules[f"{package.__name__}.models"]
    if "database" not in step.features:
        return models.User(USER["id"], USER["username"], USER["password"])
    fields = {"id": USER["id"], "username": USER["username"]}
    if "email" in step.features:
        fields["email"] = USER["email"]
    return models.User(**fields)


def dispatch(app, bare):
    """One WSGI app: /bare/profile goes to the twin as /profile, all else to the step.

    Unlike a prefix mount, this leaves SCRIPT_NAME alone, so both pages link
    to the same URLs and come out byte for byte alike.
    """

    def application(environ, start_response):
        if environ.get("PATH_INFO") == "/bare/profile":
            environ["PATH_INFO"] = "/profile"
            return bare(environ, start_response)
        return app(environ, start_response)

    return application


def create_app():
    """The step named by BENCH_STEP and its twin, as one WSGI app: what gunicorn serves."""
    return dispatch(*build(os.environ["BENCH_STEP"]))
