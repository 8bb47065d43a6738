"""Signing in with an account at an OpenID Connect provider, and linking one from the profile.

The authorization-code flow, by Authlib's Flask client. POST /login/oidc
sends the browser to the provider with a random `state` (kept in this
browser's session: a callback that does not bring it back was not started
here), a `nonce` (which must come back inside the ID token) and a PKCE
challenge (the code it brings back is worth nothing without the verifier,
which never leaves this server). The provider sends the browser back to
GET /login/oidc/callback with a code; the server trades it, with its
client secret and the verifier, for an ID token, whose signature, issuer,
audience, nonce and expiry Authlib checks. The person is then the pair
(issuer, `sub`) from that token, never the address it also holds.
"""

import logging

import requests
from authlib.common.errors import AuthlibBaseError
from authlib.integrations.flask_client import OAuth
from email_validator import EmailNotValidError
from email_validator import validate_email
from flask import Blueprint
from flask import abort
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask_login import current_user
from flask_login import login_required
from flask_login import login_user
from joserfc.errors import JoseError

from .emails import send_email
from .extensions import db
from .extensions import limiter
from .forms import LinkProviderForm
from .models import Identity
from .models import User
from .models import account_from_claims
from .models import find_identity
from .models import find_user_by_email
from .models import identities_of
from .models import link_identity
from .models import record_login
from .models import unlink_identity
from .models import ways_in
from .two_factor import ask_for_code
from .views import DISABLED
from .views import current_username_key
from .views import give_back_unless_failed
from .views import is_safe_next
from .views import log_event
from .views import new_session_id
from .views import send_confirmation

bp = Blueprint("oidc", __name__)
# Wrong passwords at /link/oidc count as at /change-password.
bp.after_request(give_back_unless_failed)

# What this browser's session holds while it is at the provider: why it went, and where to go after.
PURPOSE, NEXT = "oidc_purpose", "oidc_next"


def configured(app):
    """Whether the issuer, the client id and its secret are all set (config.py)."""
    return all(app.config.get(name) for name in ("OIDC_ISSUER", "OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET"))


def init_app(app):
    """Register the provider with an Authlib client of this app's own, when it is configured."""
    if not configured(app):
        return
    oauth = OAuth(app)
    app.extensions["oidc"] = oauth.register(
        "provider",
        client_id=app.config["OIDC_CLIENT_ID"],
        client_secret=app.config["OIDC_CLIENT_SECRET"],
        # Discovery: the provider's endpoints and keys, read from its own document.
        server_metadata_url=app.config["OIDC_ISSUER"].rstrip("/") + "/.well-known/openid-configuration",
        # openid: an ID token; email, profile: its address and a name in it.
        # S256: Authlib makes a PKCE verifier for every sign-in and sends its hash.
        client_kwargs={"scope": "openid email profile", "code_challenge_method": "S256", "timeout": 10},
    )


@bp.before_request
def only_when_configured():
    """No provider configured: every route here is a 404, as if it did not exist."""
    if not configured(current_app):
        abort(404)


@bp.app_context_processor
def provider_for_templates():
    """The templates show the provider's button only when there is one."""
    return {"oidc_name": current_app.config["OIDC_NAME"] if configured(current_app) else None}


def go_to_provider(purpose):
    """Send the browser to the provider; `state`, `nonce` and the PKCE verifier stay in its session (Authlib).

    The first time, Authlib reads the provider's settings (discovery): a
    provider that does not answer is a message, not a server error.
    """
    session[PURPOSE] = purpose
    redirect_uri = url_for("oidc.callback", _external=True)
    try:
        return current_app.extensions["oidc"].authorize_redirect(redirect_uri)
    except (requests.RequestException, ValueError) as error:
        return failed(f"{current_app.config['OIDC_NAME']} did not answer. Please try again later.", error)


@bp.route("/login/oidc", methods=("POST",))
def login():
    """Start a sign-in at the provider. A POST with a CSRF token: no other site can start one in this browser."""
    if current_user.is_authenticated:
        return redirect(url_for("views.profile"))
    next_page = request.args.get("next", "")
    session[NEXT] = next_page if is_safe_next(next_page) else ""
    return go_to_provider("login")


def failed(message, error=None):
    """The flow ends on /login with a message, and nobody logged in (the half-done state is gone)."""
    if error is not None:
        # repr, cut short: the provider's error_description comes in the URL, written by whoever sent it.
        reason = f"{type(error).__name__}: {str(error)[:200]!r}"
        log_event(f"sign-in with the provider failed: {reason}", level=logging.WARNING)
    session.pop(PURPOSE, None)
    session.pop(NEXT, None)
    flash(message, "error")
    return redirect(url_for("views.login"))


@bp.route("/login/oidc/callback")
def callback():
    """Where the provider sends the browser back: check everything, then log in, make an account, or link."""
    name = current_app.config["OIDC_NAME"]
    purpose = session.pop(PURPOSE, None)
    try:
        # Refuses a callback whose state this session did not send (or sent
        # already: it is taken out), an error from the provider, a code the
        # provider will not trade (used, for another client, or without the
        # right PKCE verifier), and an ID token that fails a check.
        token = current_app.extensions["oidc"].authorize_access_token()
    # (Authlib decodes the ID token with joserfc, which it installs: a bad signature is joserfc's JoseError.)
    except (AuthlibBaseError, JoseError, ValueError, KeyError) as error:
        return failed(f"Signing in with {name} did not work. Please try again.", error)
    except requests.RequestException as error:
        return failed(f"{name} did not answer. Please try again later.", error)
    claims = token.get("userinfo")
    # A `sub` is at most 255 characters (OpenID Connect Core, 2): so is the column.
    if purpose is None or not claims or not isinstance(claims.get("sub"), str) or not 0 < len(claims["sub"]) <= 255:
        return failed(f"Signing in with {name} did not work. Please try again.")
    issuer, subject = claims["iss"], claims["sub"]
    if purpose == "link":
        return finish_link(issuer, subject, claims)
    identity = find_identity(issuer, subject)
    if identity is not None:
        return log_in(db.session.get(User, identity.user_id))
    email = email_address(claims.get("email"))
    if email is None:
        return failed(f"{name} did not give an email address: this site needs one.")
    if find_user_by_email(email) is not None:
        # Linking by the address would hand the account to whoever made a
        # provider account with it (where nobody checked it). Its owner links.
        log_event("provider sign-in for an address in use: not linked", username=email)
        return failed(
            f"An account here already uses {email}. Log in with its password, then link {name} from your profile."
        )
    user = account_from_claims(issuer, claims | {"email": email})
    log_event("account made by the provider", user)
    if user.confirmed_at is None:
        send_confirmation(user)
        flash(f"{name} has not confirmed {email}: we have sent a link to it. Follow it, then sign in again.", "info")
        return redirect(url_for("views.login"))
    return log_in(user)


def email_address(value):
    """The provider's address in its one normal spelling, as the sign-up form keeps it (forms.py); None if it is none."""
    try:
        return validate_email(value, check_deliverability=False).normalized
    except (EmailNotValidError, TypeError):
        return None


def log_in(user):
    """As the password login does, once the provider has vouched for the person."""
    if not user.is_active:
        log_event("provider sign-in refused, account disabled", user, level=logging.WARNING)
        return failed(DISABLED)
    if user.confirmed_at is None:
        return failed("Please confirm your email address first.")
    next_page = session.pop(NEXT, "")
    if user.totp_secret is not None:
        # The provider is one factor, as the password is: the code is still asked.
        return ask_for_code(user, remember=False, next_page=next_page)
    session.clear()
    login_user(user)
    new_session_id()
    record_login(user)
    log_event("login with the provider", user)
    return redirect(next_page or url_for("views.profile"))


@bp.route("/link/oidc", methods=("GET", "POST"))
@login_required
# Wrong passwords are limited as at /change-password (views.FAILURES_ONLY).
@limiter.limit(lambda: current_app.config["LOGIN_LIMIT_PER_USERNAME"], key_func=current_username_key, methods=["POST"])
def link():
    """The accounts at the provider linked to this one, and the form that links another (with the password)."""
    form = LinkProviderForm()
    if form.validate_on_submit():
        return go_to_provider("link")
    return render_template("oidc_links.html", form=form, identities=identities_of(current_user))


def finish_link(issuer, subject, claims):
    """Back from the provider with a link asked for: link it to the user who asked, unless it is linked already.

    Still the user who asked: a login or logout in between clears the session, and the purpose with it.
    """
    name = current_app.config["OIDC_NAME"]
    if not current_user.is_authenticated:
        return failed(f"Linking {name} did not work. Please try again.")
    user = current_user._get_current_object()
    if not link_identity(user, issuer, subject, claims.get("email")):
        flash(f"That {name} account is linked to an account here already.", "error")
        return redirect(url_for("oidc.link"))
    notify(user, "linked")
    log_event("provider account linked", user)
    flash(f"Your {name} account is linked: you can sign in with it now.", "success")
    return redirect(url_for("oidc.link"))


@bp.route("/unlink/oidc/<int(max=2147483647):identity_id>", methods=("POST",))
@login_required
def unlink(identity_id):
    """Unlink an account at the provider; never the last way into the account."""
    identity = db.session.get(Identity, identity_id)
    if identity is None or identity.user_id != current_user.id:
        abort(404)
    user = current_user._get_current_object()
    if ways_in(user) <= 1:
        flash("This is your only way to log in: set a password first (Forgot your password?), then unlink.", "error")
        return redirect(url_for("oidc.link"))
    unlink_identity(identity)
    notify(user, "unlinked")
    log_event("provider account unlinked", user)
    flash(f"Your {current_app.config['OIDC_NAME']} account is unlinked.", "info")
    return redirect(url_for("oidc.link"))


def notify(user, change):
    """Email the owner: a way into the account was added or taken away."""
    send_email(
        user.email,
        f"Your {current_app.config['OIDC_NAME']} account was {change}",
        "email/provider_changed.txt",
        username=user.username,
        change=change,
        name=current_app.config["OIDC_NAME"],
        link=url_for("views.reset_request", _external=True),
    )
