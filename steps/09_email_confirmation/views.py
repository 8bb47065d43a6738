"""The pages: home, register and confirm, log in, profile, log out (here, or everywhere), reset and change a password or address."""

import logging
import re
import time

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
from flask_login import logout_user
from flask_wtf.csrf import CSRFError
from limits import parse
from limits.errors import StorageError
from redis.exceptions import RedisError
from sqlalchemy.exc import IntegrityError
from werkzeug.exceptions import InternalServerError

from .emails import send_email
from .extensions import db
from .extensions import limiter
from .extensions import login_manager
from .forms import ChangeEmailForm
from .forms import ChangePasswordForm
from .forms import ConfirmRequestForm
from .forms import LoginForm
from .forms import RegistrationForm
from .forms import ResetPasswordForm
from .forms import ResetRequestForm
from .models import User
from .models import authenticate
from .models import change_email_for_token
from .models import confirm_email
from .models import find_user_by_email
from .models import replace_email
from .models import replace_password
from .models import user_for_confirm_token
from .models import user_for_reset_token

bp = Blueprint("views", __name__)


def is_safe_next(target):
    r"""True if `target` is a path on this site, safe to redirect to.

    Only a path that starts with one slash passes: "/profile?tab=1".
    Everything else could send the user to another site after they typed
    their password there: "https://evil.example", "javascript:...", and
    "//evil.example", which browsers read as "same scheme, other host" --
    as they do "/\evil.example" (a backslash counts as a slash) and "/"
    then a tab then "/evil.example" (browsers drop tabs and newlines).
    So: printable ASCII only, a leading "/" not followed by another slash,
    and no backslash.
    """
    return (
        target.isascii()
        and target.isprintable()
        and target.startswith("/")
        and not target.startswith("//")
        and "\\" not in target
    )


@login_manager.user_loader
def load_user(user_id):
    """Return the user whose id the session holds (or None).

    Flask-Login calls this once per request that uses `current_user`, with
    what get_id() gave at login: "1:0", the id and the session version.
    Anything else was not written by this app: it means nobody, not a
    server error. A session from before the user's last "log out
    everywhere" names an old version, and so loads nobody; so does an id
    without a version, such as step 04's remember cookie holds.
    """
    if not isinstance(user_id, str) or not re.fullmatch(r"[0-9]{1,18}:[0-9]{1,18}", user_id):
        return None
    user = db.session.get(User, int(user_id.partition(":")[0]))
    if user is not None and user.get_id() == user_id:
        return user
    return None


def log_event(event, user=None, username=None, level=logging.INFO):
    """One line on the app's log for an authentication event: what, who, from which address.

    Who: the user's id and name, or the name typed (cut short, quoted by
    repr so that a newline in it cannot forge a second line). Never a
    password, a token or a session id: whoever reads the logs must not be
    able to log in with them. Behind a proxy (FLASK_PROXY_COUNT), ProxyFix
    has put the client's own address in remote_addr.
    """
    if user is not None:
        who = f"user {user.id} {user.username!r}"
    elif username is not None:
        who = f"username {username[:64]!r}"
    else:
        who = "no known user"
    current_app.logger.log(level, "%s: %s from %s", event, who, request.remote_addr)


def new_session_id():
    """Move this browser's session to a new, random id; the old id is deleted from the store.

    Whoever knew the old id (from a shared computer, or one planted in the
    browser before login: session fixation) now holds nothing.
    """
    current_app.session_interface.regenerate(session)


def end_session():
    """Log out here: forget the user, delete this session on the server, start an empty one."""
    logout_user()
    session.clear()
    session.permanent = False  # clear() keeps it: the next session is not "remembered"
    new_session_id()


@bp.route("/")
def index():
    """The home page: who you are, and where to go."""
    return render_template("index.html")


@bp.route("/register", methods=("GET", "POST"))
# Every sign-up POST counts, failed or not: a failed one still tells whether
# a name is taken, and any other sends an email. (A limit read from config
# needs a callable.)
@limiter.limit(lambda: current_app.config["REGISTER_LIMIT_PER_ADDRESS"], methods=["POST"])
def register():
    """Show the sign-up form; on POST, make an account not yet confirmed, and email a link to confirm it.

    Whether an account already uses the address, the answer never says:
    the same page and words, in about the same time. Its owner hears of
    it by email instead, which only the owner reads.
    """
    if current_user.is_authenticated:
        return redirect(url_for("views.profile"))
    form = RegistrationForm()
    if form.validate_on_submit():
        user = User(username=form.username.data, email=form.email.data)
        # Hashed even when the address turns out to be taken and the hash is
        # thrown away: the answer then takes as long as for a new address.
        user.set_password(form.password.data)
        # Counted for every address, new or taken: the same work either way.
        allowed = may_email(user.email, "CONFIRM_LIMIT_PER_RECIPIENT", "sign-up-email")
        db.session.add(user)
        try:
            db.session.commit()
        except IntegrityError:
            # The unique indexes refuse a taken name or address, even when
            # two sign-ups race. Validating again finds a taken username,
            # which is said at its field (usernames are public)...
            db.session.rollback()
            if not form.validate():
                return render_template("register.html", form=form)
            # ...and a taken address, which is not: its owner gets an email.
            owner = find_user_by_email(user.email)
            if owner is not None and allowed:
                notify_address_taken(owner)
        else:
            if allowed:
                send_confirmation(user)
        return render_template("register.html", form=form, sent=True)
    return render_template("register.html", form=form)


def send_confirmation(user):
    """Email the user a link that confirms their address."""
    # _external: a whole URL, for an email; its host is the Host header, which TRUSTED_HOSTS has checked.
    link = url_for("views.confirm", token=user.confirm_token(), _external=True)
    send_email(user.email, "Confirm your email address", "email/confirm.txt", username=user.username, link=link)


def notify_address_taken(owner, change=False):
    """Tell the owner of an address that someone tried to sign up with it (or, `change`, to move an account to it)."""
    send_email(
        owner.email,
        "Someone tried to use your email address",
        "email/address_taken.txt",
        username=owner.username,
        change=change,
        login=url_for("views.login", _external=True),
        reset=url_for("views.reset_request", _external=True),
    )


@bp.route("/confirm/<token>")
def confirm(token):
    """Confirm the address with the link from the email. A GET, as a link in an email can only be.

    It never logs in: whoever sees the link (a forwarded email, a mail
    filter that opens links) would otherwise be in the account. The
    password stays the key.
    """
    user = user_for_confirm_token(token)
    # confirm_email() is False when another request with this link was first.
    if user is None or not confirm_email(user):
        flash("That confirmation link is invalid or has expired.", "error")
        return redirect(url_for("views.confirm_request"))
    log_event("email confirmed", user)
    flash("Your email address is confirmed. Please log in.", "success")
    return redirect(url_for("views.login"))


@bp.route("/confirm", methods=("GET", "POST"))
# Every request counts, as for reset links: each may send an email.
@limiter.limit(lambda: current_app.config["CONFIRM_LIMIT_PER_ADDRESS"], methods=["POST"])
def confirm_request():
    """Ask for a new confirmation link. The answer never tells whether the address has an account."""
    form = ConfirmRequestForm()
    sent = False
    if form.validate_on_submit():
        allowed = may_email(form.email.data, "CONFIRM_LIMIT_PER_RECIPIENT", "confirm-email")
        user = find_user_by_email(form.email.data)
        # A confirmed account gets nothing: there is nothing left to confirm.
        if user is not None and user.confirmed_at is None and allowed:
            send_confirmation(user)
        log_event("confirmation requested", user)
        sent = True
    return render_template("confirm_request.html", form=form, sent=sent)


def username_key():
    """The key for limits per username: the name typed, as login compares it.

    Read from the raw form, whatever the body holds: a missing name is "",
    a garbled one whatever the decoder made of it. Lower-cased, as login
    ignores letter case (so ALICE and alice share a count), and cut short,
    as no username is over 32 characters: a 100 kB name must not make a
    100 kB key. The prefix keeps the key non-empty (Flask-Limiter skips the
    limit for "", with only an error in the log) and apart from the
    addresses' keys.
    """
    return "username:" + request.form.get("username", "").lower()[:64]


def failed_login(response):
    """Whether this answer keeps its count: a failure, the form again with its message.

    A redirect (logged in) gives it back, and so does a 429: no password
    was checked. So does a 400 for a missing CSRF token, which never gets
    as far as the count. An error page (5xx) keeps it: the store may be
    what failed, and a count kept is the safe side. The form again after
    the right password (an account not yet confirmed) gives it back too:
    that was no guess.
    """
    if g.get("right_password"):
        return False
    return response.status_code == 200 or response.status_code >= 500


# The views whose limits keep the counts of failures only.
FAILURES_ONLY = ("views.login", "views.change_password", "views.change_email")


@bp.after_request
def give_back_unless_failed(response):
    """Give back what a request to a FAILURES_ONLY view took from its counts, unless it failed.

    Those limits count every POST, before the view, so that the password
    is checked only after the count is taken: of a hundred guesses sent at
    once, only the first few find the count under the limit (the store
    adds one and answers the new count in one step), and the rest get 429.
    """
    if request.endpoint in FAILURES_ONLY and not failed_login(response):
        for limit in limiter.current_limits:
            # Flask-Limiter's fixed window is a number in the store, under
            # the key it counted: giving one back is adding -1.
            limiter.storage.incr(limit.key, limit.limit.get_expiry(), amount=-1)
    return response


@bp.route("/login", methods=("GET", "POST"))
# Two limits, because each alone falls short. Per username (by default 5
# failures in 15 minutes): however many addresses a guesser has, alice's
# password gets only so many tries -- but a stranger can use them up and
# lock her out for the window: that is the price. Per address (30): one
# machine cannot try a few passwords on each of thousands of names -- but
# alone it is beaten by a guesser with many addresses.
# Both count only POSTs, before the view, so over a limit even the right
# password gets a 429; all but failures give their count back afterwards
# (give_back_unless_failed).
@limiter.limit(lambda: current_app.config["LOGIN_LIMIT_PER_USERNAME"], key_func=username_key, methods=["POST"])
@limiter.limit(lambda: current_app.config["LOGIN_LIMIT_PER_ADDRESS"], methods=["POST"])
def login():
    """Show the login form; on POST, check it and log the user in."""
    if current_user.is_authenticated:
        return redirect(url_for("views.profile"))
    form = LoginForm()
    error = None
    if form.validate_on_submit():
        user = authenticate(form.username.data, form.password.data)
        if user is not None and user.confirmed_at is None:
            return unconfirmed_login(form, user)
        if user is not None:
            # A fresh session: nothing from before the login survives.
            session.clear()
            # Stores the user's id in the session, as step 02 did by hand.
            login_user(user)
            # "Remember me" is a long-lived session, not Flask-Login's second
            # cookie: that one stays valid until the key changes, logout or not.
            session.permanent = form.remember.data
            # After login_user wrote to it: a new id for the logged-in session.
            new_session_id()
            log_event("login", user)
            # Back to the page that sent the visitor here, if it is ours.
            next_page = request.args.get("next", "")
            return redirect(next_page if is_safe_next(next_page) else url_for("views.profile"))
    if form.is_submitted():
        # The same words whether the user is unknown or the password wrong.
        error = "Invalid username or password."
        log_event("login failed", username=request.form.get("username", ""), level=logging.WARNING)
    return render_template("login.html", form=form, error=error)


def unconfirmed_login(form, user):
    """The right password, for an account whose address is not confirmed yet: no login, and the way to a new link.

    Telling this only to someone who typed the right password gives
    strangers nothing; until the link is followed, anyone could have
    signed up with someone else's address.
    """
    g.right_password = True  # its count goes back (failed_login)
    log_event("login refused, email not confirmed", user, level=logging.WARNING)
    return render_template("login.html", form=form, error="Please confirm your email address first.", unconfirmed=True)


@bp.route("/profile")
@login_required
def profile():
    """A page for logged-in users only."""
    return render_template("profile.html")


@bp.route("/logout", methods=("POST",))
def logout():
    """Forget the user. POST only: a link or an <img> must not log you out."""
    if current_user.is_authenticated:
        log_event("logout", current_user)
    # Deletes the session on the server: a copy of the cookie is worth nothing now.
    end_session()
    flash("You have been logged out.", "info")
    return redirect(url_for("views.index"))


@bp.route("/logout-everywhere", methods=("POST",))
@login_required
def logout_everywhere():
    """End every session of this user, in every browser, remembered ones included."""
    # Every stored session of the user names the old version: none loads the user any more.
    current_user.session_version += 1
    db.session.commit()
    log_event("logout everywhere", current_user)
    end_session()
    flash("You have been logged out everywhere.", "info")
    return redirect(url_for("views.login"))


def may_email(address, setting="RESET_LIMIT_PER_RECIPIENT", purpose="reset-email"):
    """Count one email of this purpose to `address`; False once that address has had its share."""
    limit = parse(current_app.config[setting])
    # The limiter's own store (memory, or Redis), under a key of this limit's own.
    return limiter.limiter.hit(limit, purpose, address.lower())


@bp.route("/reset-password", methods=("GET", "POST"))
# Every request counts: each may send an email, and costs a look-up.
@limiter.limit(lambda: current_app.config["RESET_LIMIT_PER_ADDRESS"], methods=["POST"])
def reset_request():
    """Ask for a reset link by email. The answer never tells whether the address has an account."""
    form = ResetRequestForm()
    sent = False
    if form.validate_on_submit():
        # Counted for every address, with an account or without: the same
        # work, and the same answer, either way.
        allowed = may_email(form.email.data)
        user = find_user_by_email(form.email.data)
        if user is not None and allowed:
            # _external: a whole URL, for an email. Its host is this request's
            # Host header, which TRUSTED_HOSTS has already checked.
            link = url_for("views.reset_password", token=user.reset_token(), _external=True)
            send_email(user.email, "Reset your password", "email/reset_password.txt", username=user.username, link=link)
        log_event("reset requested", user)
        sent = True
    return render_template("reset_request.html", form=form, sent=sent)


def notify_password_changed(user, reset=False):
    """Email the owner that the password changed: if it was not them, they learn it, and how to take it back.

    `reset`: set with a link, which ended every session of the user, not all but this one.
    """
    link = url_for("views.reset_request", _external=True)
    send_email(
        user.email,
        "Your password has been changed",
        "email/password_changed.txt",
        username=user.username,
        link=link,
        reset=reset,
    )


@bp.route("/reset-password/<token>", methods=("GET", "POST"))
def reset_password(token):
    """Set a new password with the link from the email; then every session of the user ends."""
    user = user_for_reset_token(token)
    if user is None:
        flash("That reset link is invalid or has expired.", "error")
        return redirect(url_for("views.reset_request"))
    form = ResetPasswordForm()
    if form.validate_on_submit():
        if not replace_password(user, form.password.data):
            # Another request with this same link got there first.
            flash("That reset link is invalid or has expired.", "error")
            return redirect(url_for("views.reset_request"))
        # The email reached its owner, who followed the link: proof enough.
        confirm_email(user)
        # This browser's session ends too, whoever was logged in here.
        end_session()
        notify_password_changed(user, reset=True)
        log_event("password reset", user)
        flash("Your password has been changed. Please log in.", "success")
        return redirect(url_for("views.login"))
    return render_template("reset_password.html", form=form)


def current_username_key():
    """The key for wrong current passwords: the logged-in user's name, as for failed logins."""
    return "username:" + getattr(current_user, "username", "").lower()[:64]


@bp.route("/change-password", methods=("GET", "POST"))
@login_required
# Wrong current passwords are limited per user, as failed logins are (a
# count of this page's own): someone at a computer left logged in gets no
# more guesses here than at the login form. Counted before the password
# is checked, and given back unless it failed, as at /login (FAILURES_ONLY).
@limiter.limit(lambda: current_app.config["LOGIN_LIMIT_PER_USERNAME"], key_func=current_username_key, methods=["POST"])
def change_password():
    """Change the password, knowing the current one; every other session of the user ends."""
    form = ChangePasswordForm()
    if form.validate_on_submit():
        user = current_user._get_current_object()
        if replace_password(user, form.password.data):
            # The new session version ended every session, this one too:
            # log this browser in again, remembered as before, with a new id.
            remember = session.permanent
            session.clear()
            login_user(user)
            session.permanent = remember
            new_session_id()
            notify_password_changed(user)
            log_event("password changed", user)
            flash("Your password has been changed.", "success")
            return redirect(url_for("views.profile"))
        # The password changed (by a reset link) since this page checked it.
        end_session()
        return redirect(url_for("views.login"))
    return render_template("change_password.html", form=form)


@bp.route("/change-email", methods=("GET", "POST"))
@login_required
# Wrong current passwords are limited as at /change-password.
@limiter.limit(lambda: current_app.config["LOGIN_LIMIT_PER_USERNAME"], key_func=current_username_key, methods=["POST"])
def change_email():
    """Ask to move the account to a new address: a link goes there, and nothing changes until it is followed.

    Until then, logins and resets use the old address. The answer is the
    same whether or not the new address is in use, as at sign-up.
    """
    form = ChangeEmailForm()
    if form.validate_on_submit():
        user = current_user._get_current_object()
        new_email = form.email.data
        # The old address hears of it at once: if it was not its owner,
        # a password reset cancels the change (change_email_token).
        send_email(
            user.email,
            "A new email address for your account",
            "email/email_change_asked.txt",
            username=user.username,
            new_email=new_email,
            reset=url_for("views.reset_request", _external=True),
        )
        owner = find_user_by_email(new_email)
        if may_email(new_email, "CONFIRM_LIMIT_PER_RECIPIENT", "change-email"):
            if owner is None:
                link = url_for("views.change_email_confirm", token=user.change_email_token(new_email), _external=True)
                send_email(
                    new_email,
                    "Confirm your new email address",
                    "email/change_email.txt",
                    username=user.username,
                    link=link,
                )
            else:
                notify_address_taken(owner, change=True)
        log_event("email change asked", user)
        flash("We have sent a link to the new address: follow it to make it yours.", "info")
        return redirect(url_for("views.profile"))
    return render_template("change_email.html", form=form)


@bp.route("/change-email/<token>")
def change_email_confirm(token):
    """GET /change-email/<token>, the link sent to the new address: the account moves to it.

    No login needed: the link proves the new address, and it names the
    account and its state when the change was asked for. Single-use: once
    the address has moved, the token no longer matches the account.
    """
    user, new_email = change_email_for_token(token)
    try:
        changed = user is not None and replace_email(user, new_email)
    except IntegrityError:  # someone signed up with that address since
        db.session.rollback()
        changed = False
    if not changed:
        flash("That link is invalid or has expired.", "error")
        return redirect(url_for("views.profile"))
    log_event("email changed", user)
    flash("Your email address has been changed.", "success")
    return redirect(url_for("views.profile"))


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


def seconds_to_wait():
    """Seconds until every limit this request broke lets go: at least 1."""
    resets = [limit.reset_at for limit in limiter.current_limits if limit.breached]
    return max(1, max(resets, default=0) - int(time.time()))


def in_words(seconds):
    """A wait for people to read: "40 seconds", "15 minutes"."""
    if seconds < 120:
        return f"{seconds} second{'s' if seconds > 1 else ''}"
    return f"{round(seconds / 60)} minutes"


@bp.app_errorhandler(429)
def too_many_requests(error):
    """Over a limit: a page saying when to try again, and Retry-After saying it to programs."""
    seconds = seconds_to_wait()
    # A lockout: the name typed (at login, sign-up), or the user logged in (changing a password).
    user = current_user if current_user.is_authenticated else None
    log_event(f"over a limit at {request.path}", user, request.form.get("username"), level=logging.WARNING)
    return render_template("429.html", wait=in_words(seconds)), 429, {"Retry-After": str(seconds)}


def stores_answer():
    """Before anything else: when the session store or the store of counts does not answer, the 503 page.

    On every page, not only when logging in: a form that cannot be sent is
    not worth showing, and the site says the same whatever Redis holds.
    create_app() runs this before every other before_request function: the
    CSRF check would otherwise answer 400, with no session to go by.
    """
    if request.endpoint in ("static", "production.healthz"):
        return None  # the 503 page's stylesheet; /healthz says itself what is away
    if getattr(session, "unavailable", False):  # sessions.py could not read it (and logged why)
        return outage_page(), 503, {"Retry-After": "30"}
    # A round trip to Redis; with the counts in memory, nothing to ask.
    if not limiter.storage.check():
        current_app.logger.error("rate-limit store unavailable")
        return outage_page(), 503, {"Retry-After": "30"}
    return None


@bp.app_errorhandler(StorageError)
def limits_unavailable(error):
    """The store of counts (Redis) does not answer: refuse the request, with a page.

    This fails closed. With no counts there is no limit, and failing open
    would give unlimited guesses to anyone who can overload the store. The
    price: the site answers 503 until the store is back (no restart
    needed).
    """
    current_app.logger.error("rate-limit store unavailable: %r", error.storage_error)
    return outage_page(), 503, {"Retry-After": "30"}


@bp.app_errorhandler(RedisError)
def sessions_unavailable(error):
    """The sessions' Redis went away during a view (logging in or out rewrites the session): the same page."""
    current_app.logger.error("session store unavailable: %s", error.__class__.__name__)
    return outage_page(), 503, {"Retry-After": "30"}


@bp.app_errorhandler(InternalServerError)
def server_error(error):
    """A store error after the check (counting a failure, say) arrives here: the same page."""
    if isinstance(error.original_exception, StorageError):
        return limits_unavailable(error.original_exception)
    return error


@bp.app_context_processor
def user_for_templates():
    """`current_user` in every template, looked up only when a template reads it.

    Flask-Login's own context processor (turned off in create_app()) looks
    the user up before drawing any template, even the 503 page drawn
    because the database is away.
    """
    return {"current_user": current_user}


def outage_page():
    """The 503 page, in the site's layout, drawn without asking the database anything.

    The layout asks who is logged in; with the database gone that would fail
    again, so for this page everyone is anonymous. (What render_template is
    given wins over what context processors give.)
    """
    return render_template("503.html", current_user=login_manager.anonymous_user())
