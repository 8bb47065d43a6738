"""Roles, and the admin area: a list of every account, and an operator's buttons to stop one at once.

Who may see a page is a question of roles now, not only of being logged
in: role_required is written by hand, as step 02 wrote login_required.
Every admin action also needs a fresh login, Flask-Login's
fresh_login_required: a session that a thief copied, or a computer left
logged in, must give the password again before it can disable anyone.
"""

import functools
import logging
import time
from urllib.parse import urlsplit

from flask import Blueprint
from flask import abort
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask_login import confirm_login
from flask_login import current_user
from flask_login import fresh_login_required
from flask_login import login_fresh
from flask_login import login_required
from flask_login import login_user
from sqlalchemy import select

from .extensions import db
from .extensions import limiter
from .extensions import login_manager
from .forms import ReauthenticateForm
from .models import User
from .models import disable_account
from .models import enable_account
from .models import end_sessions
from .models import roles_of_everyone
from .sessions import LOGGED_IN_AT
from .views import current_username_key
from .views import give_back_unless_failed
from .views import is_safe_next
from .views import log_event
from .views import new_session_id

bp = Blueprint("admin", __name__)
# Right passwords at /reauthenticate give back their count (views.FAILURES_ONLY).
bp.after_request(give_back_unless_failed)


def role_required(role):
    """Let only users who hold `role` reach the view: login_required by hand (step 02), one level up.

    Anonymous visitors go to the login page, as login_required sends them
    (login_manager.unauthorized() is how it does that): logging in may
    help them. A user who is logged in without the role gets 403 Forbidden:
    logging in again would not help, and a redirect to the login page would
    only send them round in circles. (401 Unauthorized means "who are you?",
    and asks the browser for a password of its own: not what a form login wants.)
    """

    def decorator(view):
        @functools.wraps(view)
        def wrapped_view(**kwargs):
            if not current_user.is_authenticated:
                return login_manager.unauthorized()
            if not current_user.has_role(role):
                log_event(f"refused at {request.path}: not {role}", current_user, level=logging.WARNING)
                abort(403)
            return view(**kwargs)

        return wrapped_view

    return decorator


@bp.before_app_request
def stale_after_a_while():
    """Mark a login no longer fresh once FRESH_LOGIN_LIFETIME has passed since it was made.

    "Fresh" is Flask-Login's word for a login whose password was given in
    this session. Flask-Login marks a login stale when it comes back from
    its remember cookie, or when the browser's address or user agent
    change (its session protection). This course's "remember me" is a long
    session instead (step 05), which would stay fresh for all of its days:
    so here a login goes stale with age too, by login_user(fresh=False),
    Flask-Login's public way to mark it. Only a session marked fresh is
    looked at, and it costs no query until its time is up.
    """
    # The time sessions.py notes at every login (a session with none is as old as can be).
    age = time.time() - session.get(LOGGED_IN_AT, 0)
    if login_fresh() and age > current_app.config["FRESH_LOGIN_LIFETIME"] and current_user.is_authenticated:
        login_user(current_user._get_current_object(), fresh=False)


@login_manager.needs_refresh_handler
def password_again():
    """What fresh_login_required does with a stale login: off to Flask-Login's refresh_view, then back.

    Back to this page, for a GET. For a POST, back to the page whose form
    sent it, which the browser names (Referrer-Policy: same-origin): a
    redirect to the POST's own address would come back as a GET.
    """
    flash(login_manager.needs_refresh_message, login_manager.needs_refresh_message_category)
    if request.method == "GET":
        back = request.full_path.removesuffix("?")
    else:
        referrer = urlsplit(request.referrer or "")
        back = referrer.path + (f"?{referrer.query}" if referrer.query else "")
        if referrer.netloc != request.host:
            back = url_for("views.profile")
    return redirect(url_for(login_manager.refresh_view, next=back))


@bp.route("/reauthenticate", methods=("GET", "POST"))
@login_required
# Wrong passwords are limited as at /change-password (views.FAILURES_ONLY).
@limiter.limit(lambda: current_app.config["LOGIN_LIMIT_PER_USERNAME"], key_func=current_username_key, methods=["POST"])
def reauthenticate():
    """Flask-Login's refresh_view: the password again, and the login is fresh once more."""
    form = ReauthenticateForm()
    if form.validate_on_submit():
        confirm_login()
        # A new session id, as at login: the fresh session is under an id
        # that nobody has seen (and from now its age counts again).
        new_session_id()
        log_event("login confirmed with the password", current_user)
        next_page = request.args.get("next", "")
        return redirect(next_page if is_safe_next(next_page) else url_for("views.profile"))
    return render_template("reauthenticate.html", form=form)


@bp.route("/admin/users")
@role_required("admin")
def users():
    """Every account, 50 to a page, with what an admin needs to know of it and the buttons."""
    number = request.args.get("page", 1, type=int)  # not a number: the first page
    # Flask-SQLAlchemy answers 404 past the last page; a number too large
    # for the database's integers would fail in the database first.
    if not 1 <= number <= 1_000_000:
        abort(404)
    page = db.paginate(select(User).order_by(User.id), page=number, per_page=50)
    return render_template("admin_users.html", page=page, roles=roles_of_everyone())


def account(user_id):
    """The account an admin action is for, or 404."""
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    return user


# Each action is a POST (a link or an <img> must not disable anyone), by
# an admin (role_required) whose login is fresh (fresh_login_required),
# in that order: a non-admin gets 403 however fresh, an admin whose login
# is stale gives the password again. An id is at most what the database's
# integer holds: a larger one is a 404, not a database error.


@bp.route("/admin/users/<int(max=2147483647):user_id>/disable", methods=("POST",))
@role_required("admin")
@fresh_login_required
def disable(user_id):
    """Disable the account: it cannot log in, and every session of it ends now."""
    user = account(user_id)
    if user.id == current_user.id:
        # Else the last admin could lock everyone out of the admin area.
        flash("You cannot disable your own account.", "error")
        return redirect(url_for(".users"))
    disable_account(user)
    log_event("disabled by an admin", user, admin=current_user)
    flash(f"{user.username} is disabled: every session of theirs has ended.", "success")
    return redirect(url_for(".users"))


@bp.route("/admin/users/<int(max=2147483647):user_id>/enable", methods=("POST",))
@role_required("admin")
@fresh_login_required
def enable(user_id):
    """Let the account log in again (its old sessions stay ended)."""
    user = account(user_id)
    enable_account(user)
    log_event("enabled by an admin", user, admin=current_user)
    flash(f"{user.username} can log in again.", "success")
    return redirect(url_for(".users"))


@bp.route("/admin/users/<int(max=2147483647):user_id>/end-sessions", methods=("POST",))
@role_required("admin")
@fresh_login_required
def end_user_sessions(user_id):
    """End every session of the account, in every browser: its owner logs in again."""
    user = account(user_id)
    end_sessions(user)
    log_event("sessions ended by an admin", user, admin=current_user)
    flash(f"Every session of {user.username} has ended.", "success")
    return redirect(url_for(".users"))


@bp.app_errorhandler(403)
def forbidden(error):
    """Logged in, but not allowed: a page in the site's layout, saying so."""
    return render_template("403.html"), 403
