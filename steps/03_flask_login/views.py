"""The pages: home, log in, profile, log out."""

import re

from flask import Blueprint
from flask import abort
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask_login import current_user
from flask_login import login_required
from flask_login import login_user
from flask_login import logout_user
from flask_wtf.csrf import CSRFError

from .extensions import db
from .extensions import login_manager
from .forms import LoginForm
from .models import User
from .models import authenticate

bp = Blueprint("views", __name__)


@login_manager.user_loader
def load_user(user_id):
    """Return the user whose id the session holds (or None).

    Flask-Login calls this once per request that uses `current_user`, with
    what get_id() gave at login: the id as a string of digits. Anything else
    was not written by this app: it means nobody, not a server error.
    """
    if not isinstance(user_id, str) or not re.fullmatch(r"[0-9]{1,18}", user_id):
        return None
    return db.session.get(User, int(user_id))


@bp.route("/")
def index():
    """The home page: who you are, and where to go."""
    return render_template("index.html")


@bp.route("/login", methods=("GET", "POST"))
def login():
    """Show the login form; on POST, check it and log the user in."""
    if current_user.is_authenticated:
        return redirect(url_for("views.profile"))
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        user = authenticate(form.username.data, form.password.data)
        if user is not None:
            # A fresh session: nothing from before the login survives.
            session.clear()
            # Stores the user's id in the session, as step 02 did by hand.
            login_user(user, remember=form.remember.data)
            return redirect(url_for("views.profile"))
    if form.is_submitted():
        # The same words whether the user is unknown or the password wrong.
        error = "Invalid username or password."
    return render_template("login.html", form=form, error=error)


@bp.route("/profile")
@login_required
def profile():
    """A page for logged-in users only."""
    return render_template("profile.html")


@bp.route("/logout", methods=("POST",))
def logout():
    """Forget the user. POST only: a link or an <img> must not log you out."""
    # Also tells Flask-Login to delete the "remember me" cookie.
    logout_user()
    flash("You have been logged out.", "info")
    return redirect(url_for("views.index"))


@bp.before_app_request
def forms_take_form_posts():
    """A JSON body sent to a form: 415, before the view reads it.

    Flask-WTF reads a JSON body as the form's fields; JSON that is not an
    object (a list, a string, or nested deeper than Python's json reads)
    would raise there, a server error. The site's forms post form bodies.
    """
    if request.is_json:
        abort(415)


@bp.app_errorhandler(CSRFError)
def csrf_error(error):
    """A POST without a valid CSRF token: still a 400, but a page with a way back.

    It happens to honest users too, when a form was left open for longer
    than its token lives (an hour) or the session has ended meanwhile.
    """
    return render_template("csrf_error.html", reason=error.description), 400
