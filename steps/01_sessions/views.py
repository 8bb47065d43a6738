"""The pages: home, log in, profile, log out."""

from flask import Blueprint
from flask import g
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for

from .models import USERS
from .models import find_user
from .models import get_user

bp = Blueprint("views", __name__)


@bp.before_app_request
def load_logged_in_user():
    """Put the user whose id the session holds into `g.user` (or None).

    `g` lives for one request, so this runs before every request.
    """
    user_id = session.get("user_id")
    g.user = get_user(user_id) if user_id is not None else None


@bp.route("/")
def index():
    """The home page: who you are, and where to go."""
    return render_template("index.html")


@bp.route("/login", methods=("GET", "POST"))
def login():
    """Show the login form; on POST, check it and log the user in."""
    error = None
    if request.method == "POST":
        user = find_user(request.form.get("username", ""))
        if user is not None and user.check_password(request.form.get("password", "")):
            # A fresh session: nothing from before the login survives.
            session.clear()
            # Only the id: the cookie is signed, not encrypted, so the
            # browser (and anyone holding it) can read what is inside.
            session["user_id"] = user.id
            return redirect(url_for("views.profile"))
        # The same words whether the user is unknown or the password wrong.
        error = "Invalid username or password."
    return render_template("login.html", error=error, demo_users=USERS)


@bp.route("/profile")
def profile():
    """A page for logged-in users only."""
    if g.user is None:
        return redirect(url_for("views.login"))
    return render_template("profile.html")


@bp.route("/logout", methods=("POST",))
def logout():
    """Forget the user. POST only: a link or an <img> must not log you out."""
    session.clear()
    return redirect(url_for("views.index"))
