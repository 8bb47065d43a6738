"""Two-factor authentication: a login in two stages, and the pages that turn it on and off.

After the right password, an account with two-factor on is not logged in:
this browser's session notes only who gave the password, and when. The
second stage, /login/two-factor, asks for a code from the authenticator
app (TOTP, RFC 6238) or a recovery code, and only then calls login_user().
Until then every page sees an anonymous visitor: a password that leaked
from another site opens nothing here by itself.
"""

import io
import logging
import re
import time

import segno
from flask import Blueprint
from flask import abort
from flask import current_app
from flask import flash
from flask import g
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask_login import current_user
from flask_login import login_required
from flask_login import login_user

from .emails import send_email
from .extensions import db
from .extensions import limiter
from .forms import EnableTwoFactorForm
from .forms import TwoFactorCodeForm
from .forms import TwoFactorPasswordCodeForm
from .models import check_totp
from .models import disable_two_factor
from .models import enable_two_factor
from .models import new_recovery_codes
from .models import new_totp_secret
from .models import record_login
from .models import recovery_codes_left
from .models import totp_step
from .models import totp_uri
from .models import use_recovery_code
from .views import current_username_key
from .views import give_back_unless_failed
from .views import is_safe_next
from .views import load_user
from .views import log_event
from .views import new_session_id

bp = Blueprint("two_factor", __name__)
# The limits here count failures only, as at /login: this blueprint's
# requests give back their count the same way (views.FAILURES_ONLY).
bp.after_request(give_back_unless_failed)

# What this browser's session holds between the password and the code.
HALF_WAY = ("two_factor_user", "two_factor_since", "two_factor_remember", "two_factor_next")


def ask_for_code(user, remember, next_page=None):
    """The right password, for an account with two-factor on (views.login calls this): no login yet, a code first.

    The session holds who gave the password (get_id(): the id and the
    session version, so that "log out everywhere" or a new password voids
    this too), when, and what the login will do once the code is given.
    `next_page`: where to go then, if not the login page's `next` (the
    provider's sign-in kept its own).
    """
    if next_page is None:
        next_page = request.args.get("next", "")
    session.clear()
    session["two_factor_user"] = user.get_id()
    session["two_factor_since"] = time.time()
    session["two_factor_remember"] = remember
    if is_safe_next(next_page):
        session["two_factor_next"] = next_page
    # Half-way is worth something now (the password is proven): not under
    # an id from before, which someone may have planted in this browser.
    new_session_id()
    log_event("password ok, second factor asked", user)
    return redirect(url_for("two_factor.login_code"))


def half_way_user():
    """The user who gave the right password in this browser and owes a code; None if nobody, or too late."""
    since = session.get("two_factor_since")
    if not isinstance(since, (int, float)) or time.time() - since > current_app.config["TWO_FACTOR_TIMEOUT"]:
        return None
    # None, too, if the account's sessions have been ended since (a new version).
    return load_user(session.get("two_factor_user"))


def half_way_key():
    """The key for wrong codes: the id of the user half-way in this session.

    The id alone, not the version: a new password must not start a new count.
    """
    user_id = str(session.get("two_factor_user", "")).partition(":")[0]
    return f"two-factor:{user_id[:20]}"


def check_code(user, code):
    """Which second factor `code` is for the user: "totp" (from the app), "recovery code", or None (neither).

    A code that works is used up. Six digits (spaces allowed: some apps
    show "123 456") are a TOTP code; anything else may be a recovery code.
    """
    digits = "".join(code.split())
    if re.fullmatch(r"[0-9]{6}", digits):
        return "totp" if check_totp(user, digits) else None
    return "recovery code" if use_recovery_code(user, code) else None


@bp.route("/login/two-factor", methods=("GET", "POST"))
# Wrong codes are limited per user, whatever the address: counted before
# the code is checked, and given back unless it was wrong, as passwords
# are at /login. Without it, a million codes would be a quick search.
@limiter.limit(lambda: current_app.config["TWO_FACTOR_LIMIT"], key_func=half_way_key, methods=["POST"])
def login_code():
    """The second stage of a login: a code from the app, or a recovery code; then, and only then, logged in."""
    if current_user.is_authenticated:
        return redirect(url_for("views.profile"))
    user = half_way_user()
    if user is None:
        for key in HALF_WAY:
            session.pop(key, None)
        flash("Please log in again.", "info")
        return redirect(url_for("views.login"))
    form = TwoFactorCodeForm()
    error = None
    if form.validate_on_submit():
        used = check_code(user, form.code.data)
        if used is not None:
            remember = session.get("two_factor_remember") is True
            next_page = session.get("two_factor_next") or url_for("views.profile")
            # As views.login does for an account without two-factor.
            session.clear()
            login_user(user)
            session.permanent = remember
            new_session_id()
            record_login(user)
            if used == "totp":
                log_event("login", user)
            else:
                log_event("login with a recovery code", user)
                flash(f"You used a recovery code: {recovery_codes_left(user)} left.", "info")
            return redirect(next_page)
    if form.is_submitted():
        error = "Invalid code."
        log_event("two-factor code wrong", user, level=logging.WARNING)
    return render_template("login_two_factor.html", form=form, error=error)


@bp.route("/two-factor")
@login_required
def settings():
    """Whether two-factor is on, and the ways to change that."""
    codes_left = recovery_codes_left(current_user) if current_user.totp_secret else None
    return render_template("two_factor.html", codes_left=codes_left)


@bp.route("/two-factor/setup", methods=("POST",))
@login_required
def setup():
    """Start turning two-factor on: a new secret, shown as text and as a QR code. POST: each one is new."""
    if current_user.totp_secret is not None:
        return redirect(url_for("two_factor.settings"))
    # Kept in the session (on the server) until a code proves that the app
    # has it: only then does it go into the account.
    session["two_factor_pending"] = new_totp_secret()
    return render_setup(EnableTwoFactorForm(formdata=None))


def render_setup(form):
    """The page with the secret being set up, and the form that confirms it."""
    secret = session["two_factor_pending"]
    # In groups of four, for typing it into the app by hand.
    grouped = " ".join(secret[i : i + 4] for i in range(0, len(secret), 4))
    return render_template("two_factor_setup.html", form=form, secret=grouped)


@bp.route("/two-factor/qr.svg")
@login_required
def qr_code():
    """The QR code of the secret being set up, an SVG image for the phone's camera.

    Drawn here, not by an online QR service: the secret never leaves the
    site. Like every page, it is sent with Cache-Control: no-store
    (production.security_headers), so no cache keeps a copy.
    """
    secret = session.get("two_factor_pending")
    if secret is None:
        abort(404)
    # A full QR code (not a Micro QR, which the apps cannot read); error="m"
    # still reads with 15% of it blurred.
    qr = segno.make_qr(totp_uri(current_user, secret), error="m")
    buffer = io.BytesIO()
    qr.save(buffer, kind="svg", scale=4)
    return current_app.response_class(buffer.getvalue(), mimetype="image/svg+xml")


@bp.route("/two-factor/enable", methods=("POST",))
@login_required
# Wrong passwords are limited as at /change-password.
@limiter.limit(lambda: current_app.config["LOGIN_LIMIT_PER_USERNAME"], key_func=current_username_key, methods=["POST"])
def enable():
    """Finish turning two-factor on: the password, and a code that proves the app has the secret."""
    secret = session.get("two_factor_pending")
    if current_user.totp_secret is not None or secret is None:
        return redirect(url_for("two_factor.settings"))
    form = EnableTwoFactorForm()
    if form.validate_on_submit():
        step = totp_step(secret, "".join(form.code.data.split()))
        if step is None:
            form.code.errors.append("Invalid code. Is the phone's clock right?")
        else:
            user = current_user._get_current_object()
            codes = enable_two_factor(user, secret, step)
            end_other_sessions(user)
            notify(user, "on")
            log_event("two-factor turned on", user)
            flash("Two-factor authentication is on.", "success")
            g.right_password = True  # no failure: its count goes back (views.failed_login)
            return render_template("recovery_codes.html", codes=codes)
    return render_setup(form)


def password_and_code(form):
    """True when the form came with the right password and a code that works (now used up); else its errors."""
    if not form.validate_on_submit():
        return False
    if check_code(current_user, form.code.data) is None:
        form.code.errors.append("Invalid code.")
        log_event("two-factor code wrong", current_user, level=logging.WARNING)
        return False
    return True


@bp.route("/two-factor/disable", methods=("GET", "POST"))
@login_required
# The password and the code: someone at a computer left logged in has neither.
@limiter.limit(lambda: current_app.config["LOGIN_LIMIT_PER_USERNAME"], key_func=current_username_key, methods=["POST"])
def disable():
    """Turn two-factor off, with the password and a code."""
    if current_user.totp_secret is None:
        return redirect(url_for("two_factor.settings"))
    form = TwoFactorPasswordCodeForm()
    if password_and_code(form):
        user = current_user._get_current_object()
        disable_two_factor(user)
        end_other_sessions(user)
        notify(user, "off")
        log_event("two-factor turned off", user)
        flash("Two-factor authentication is off.", "info")
        return redirect(url_for("two_factor.settings"))
    return render_template("two_factor_change.html", form=form, action="disable")


@bp.route("/two-factor/recovery-codes", methods=("GET", "POST"))
@login_required
@limiter.limit(lambda: current_app.config["LOGIN_LIMIT_PER_USERNAME"], key_func=current_username_key, methods=["POST"])
def recovery_codes():
    """Make ten new recovery codes, with the password and a code; the old ones stop working."""
    if current_user.totp_secret is None:
        return redirect(url_for("two_factor.settings"))
    form = TwoFactorPasswordCodeForm()
    if password_and_code(form):
        user = current_user._get_current_object()
        codes = new_recovery_codes(user)
        end_other_sessions(user)
        notify(user, "codes")
        log_event("recovery codes renewed", user)
        g.right_password = True  # no failure: its count goes back (views.failed_login)
        return render_template("recovery_codes.html", codes=codes)
    return render_template("two_factor_change.html", form=form, action="codes")


def end_other_sessions(user):
    """End every session of the user but this one, which goes on with a new id: as views.change_password does."""
    # A new session version ends every session of the user, this one too...
    user.session_version += 1
    db.session.commit()
    # ...so log this browser in again, remembered as before.
    remember = session.permanent
    session.clear()
    login_user(user)
    session.permanent = remember
    new_session_id()


# The subject of each notice (email/two_factor_changed.txt says the rest).
NOTICES = {
    "on": "Two-factor authentication was turned on",
    "off": "Two-factor authentication was turned off",
    "codes": "New recovery codes for your account",
}


def notify(user, change):
    """Email the owner about the change: if it was not them, they learn it, and what to do."""
    send_email(
        user.email,
        NOTICES[change],
        "email/two_factor_changed.txt",
        username=user.username,
        change=change,
        link=url_for("views.reset_request", _external=True),
    )
