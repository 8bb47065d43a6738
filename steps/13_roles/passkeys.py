"""Passkeys (WebAuthn): adding them from the profile, and signing in with one.

A passkey is a key pair made by an authenticator (the phone, the laptop's
fingerprint reader, a security key). The private key never leaves it; the
site keeps the public key. To sign in, the site sends a random challenge,
and the authenticator signs it together with the origin the browser is on
and a hash of the site's domain (the relying party id). A look-alike site
that relays the page gets a signature for its own origin, which this site
refuses; a leaked table of public keys logs nobody in.

The ceremony runs in JavaScript (static/passkeys.js), which hands the
browser's answers to the JSON endpoints here; py_webauthn checks them.
"""

import logging
import time

from flask import Blueprint
from flask import abort
from flask import current_app
from flask import flash
from flask import g
from flask import jsonify
from flask import redirect
from flask import render_template
from flask import request
from flask import session
from flask import url_for
from flask_login import current_user
from flask_login import login_required
from flask_login import login_user
from webauthn import generate_authentication_options
from webauthn import generate_registration_options
from webauthn import options_to_json
from webauthn import verify_authentication_response
from webauthn import verify_registration_response
from webauthn.helpers import base64url_to_bytes
from webauthn.helpers import bytes_to_base64url
from webauthn.helpers import parse_authentication_credential_json
from webauthn.helpers.exceptions import WebAuthnException
from webauthn.helpers.structs import AuthenticatorSelectionCriteria
from webauthn.helpers.structs import PublicKeyCredentialDescriptor
from webauthn.helpers.structs import ResidentKeyRequirement
from webauthn.helpers.structs import UserVerificationRequirement

from .emails import send_email
from .extensions import db
from .extensions import limiter
from .forms import AddPasskeyForm
from .forms import RemovePasskeyForm
from .models import Passkey
from .models import User
from .models import add_passkey
from .models import find_passkey
from .models import passkey_used
from .models import passkey_user_handle
from .models import passkeys_of
from .models import record_login
from .models import remove_passkey
from .two_factor import end_other_sessions
from .two_factor import half_way_user
from .views import DISABLED
from .views import current_username_key
from .views import give_back_unless_failed
from .views import is_safe_next
from .views import log_event
from .views import new_session_id

bp = Blueprint("passkeys", __name__)
# Wrong passwords (adding or removing a passkey) count as at /change-password.
bp.after_request(give_back_unless_failed)

# Where this browser's session keeps the challenge of the ceremony under way.
CHALLENGE = "passkey_challenge"

# What the authenticator must do: keep the passkey on itself (a
# "discoverable" credential, so that signing in needs no username), and
# verify the user (a PIN, a fingerprint, a face): the passkey alone then
# proves what a password and a second factor did.
REQUIRED = UserVerificationRequirement.REQUIRED


def new_challenge(purpose, options, **extra):
    """Keep the options' challenge in this browser's session, for one ceremony of `purpose`, and answer the options.

    The challenge is random (py_webauthn makes 64 bytes with `secrets`), and
    this session holds the only copy: the answer to it is good once, here,
    for a few minutes. A new ceremony replaces the last one's.
    """
    session[CHALLENGE] = {
        "purpose": purpose,
        "challenge": bytes_to_base64url(options.challenge),
        "since": time.time(),
        **extra,
    }
    return current_app.response_class(options_to_json(options), mimetype="application/json")


def take_challenge(purpose):
    """The challenge this session was given for `purpose`, now used up; None if none, or too late.

    Taken out of the session whatever happens next: a second answer, even
    the same one, finds no challenge.
    """
    kept = session.pop(CHALLENGE, None)
    if not isinstance(kept, dict) or kept.get("purpose") != purpose:
        return None
    since = kept.get("since")
    if not isinstance(since, (int, float)) or time.time() - since > current_app.config["PASSKEY_CHALLENGE_TIMEOUT"]:
        return None
    return kept


def refused(message, status=400):
    """A ceremony's answer that failed: a JSON error, which passkeys.js shows. Nobody is logged in."""
    return jsonify(error=message), status


def credential_from_request():
    """The browser's answer (PublicKeyCredential.toJSON()) from the JSON body, or None."""
    try:
        body = request.get_json(silent=True)  # None for a body that is not JSON
    except RecursionError:
        # JSON nested deeper than Python's json module reads ("[" * 100000)
        # raises this, not the ValueError that silent=True covers.
        return None
    return body if isinstance(body, dict) else None


def relying_party():
    """The relying party id and origin, from the configuration only (config.py says why)."""
    return current_app.config["WEBAUTHN_RP_ID"], current_app.config["WEBAUTHN_ORIGIN"]


# Adding and removing passkeys, from the profile ---------------------------------


@bp.route("/passkeys")
@login_required
def manage():
    """The user's passkeys (name, added, last used), and the form that adds one."""
    return render_template("passkeys.html", passkeys=passkeys_of(current_user), form=AddPasskeyForm(formdata=None))


@bp.route("/passkeys/add", methods=("POST",))
@login_required
# Wrong passwords are limited as at /change-password (views.FAILURES_ONLY).
@limiter.limit(lambda: current_app.config["LOGIN_LIMIT_PER_USERNAME"], key_func=current_username_key, methods=["POST"])
def add():
    """Start adding a passkey: its name and the password, then the page that runs the ceremony.

    The password, because a passkey is a way in that outlasts a new
    password: whoever has only a copy of the session cookie must not be
    able to leave one behind.
    """
    form = AddPasskeyForm()
    if not form.validate_on_submit():
        return render_template("passkeys.html", passkeys=passkeys_of(current_user), form=form)
    g.right_password = True  # no failure: its count goes back (views.failed_login)
    user = current_user._get_current_object()
    rp_id, _ = relying_party()
    options = generate_registration_options(
        rp_id=rp_id,
        rp_name=current_app.config["WEBAUTHN_RP_NAME"],
        user_id=passkey_user_handle(user),
        user_name=user.username,
        user_display_name=user.username,
        authenticator_selection=AuthenticatorSelectionCriteria(
            resident_key=ResidentKeyRequirement.REQUIRED, user_verification=REQUIRED
        ),
        # Not a second passkey for the same account on an authenticator that has one.
        exclude_credentials=[PublicKeyCredentialDescriptor(id=p.credential_id) for p in passkeys_of(user)],
        timeout=current_app.config["PASSKEY_CHALLENGE_TIMEOUT"] * 1000,
    )
    new_challenge("register", options, name=form.name.data)
    return render_template("passkey_add.html", options=options_to_json(options), name=form.name.data)


@bp.route("/passkeys/register", methods=("POST",))
@login_required
def register():
    """Finish adding a passkey: check the authenticator's answer (JSON) and keep its public key."""
    kept = take_challenge("register")
    credential = credential_from_request()
    if kept is None:
        return refused("This page has expired. Please start again.")
    if credential is None:
        return refused("That is not an answer from an authenticator.")
    rp_id, origin = relying_party()
    try:
        verified = verify_registration_response(
            credential=credential,
            expected_challenge=base64url_to_bytes(kept["challenge"]),
            expected_rp_id=rp_id,
            expected_origin=origin,
            require_user_verification=True,
        )
    except (WebAuthnException, ValueError) as error:
        # repr: the message quotes the client data, which the sender wrote (a newline would forge a log line).
        log_event(f"passkey refused: {str(error)[:200]!r}", current_user, level=logging.WARNING)
        return refused("The passkey could not be added. Please try again.")
    user = current_user._get_current_object()
    if not add_passkey(user, verified, kept["name"]):
        return refused("That passkey is on your account already.")
    notify(user, "added", kept["name"])
    log_event("passkey added", user)
    flash(f"Passkey “{kept['name']}” added: you can sign in with it now.", "success")
    return jsonify(redirect=url_for("passkeys.manage"))


def own_passkey(passkey_id):
    """The logged-in user's passkey with this id; 404 for anyone else's, as for one that does not exist."""
    passkey = db.session.get(Passkey, passkey_id)
    if passkey is None or passkey.user_id != current_user.id:
        abort(404)
    return passkey


# max: a larger number is no passkey's id (and more than PostgreSQL's INTEGER holds).
@bp.route("/passkeys/<int(max=2147483647):passkey_id>/remove", methods=("GET", "POST"))
@login_required
@limiter.limit(lambda: current_app.config["LOGIN_LIMIT_PER_USERNAME"], key_func=current_username_key, methods=["POST"])
def remove(passkey_id):
    """Remove a passkey, with the password; every other session ends (one may be the lost device's)."""
    passkey = own_passkey(passkey_id)
    form = RemovePasskeyForm()
    if form.validate_on_submit():
        user = current_user._get_current_object()
        name = passkey.name
        remove_passkey(passkey)
        end_other_sessions(user)
        notify(user, "removed", name)
        log_event("passkey removed", user)
        flash(f"Passkey “{name}” removed.", "info")
        return redirect(url_for("passkeys.manage"))
    return render_template("passkey_remove.html", form=form, passkey=passkey)


def notify(user, change, name):
    """Email the owner: a new way into the account, or one gone, is news they must hear of."""
    send_email(
        user.email,
        f"A passkey was {change}",
        "email/passkey_changed.txt",
        username=user.username,
        change=change,
        name=name,
        link=url_for("views.reset_request", _external=True),
    )


# Signing in with a passkey ----------------------------------------------------


@bp.route("/login/passkey/options", methods=("POST",))
def login_options():
    """A challenge for signing in: any passkey of this site (the browser offers the ones it has), or, half-way, the user's."""
    if current_user.is_authenticated:
        return refused("You are logged in already.")
    # The second stage of a two-factor login: a passkey of that user only.
    user = half_way_user()
    allowed = [PublicKeyCredentialDescriptor(id=p.credential_id) for p in passkeys_of(user)] if user else []
    rp_id, _ = relying_party()
    options = generate_authentication_options(
        rp_id=rp_id,
        allow_credentials=allowed,
        user_verification=REQUIRED,
        timeout=current_app.config["PASSKEY_CHALLENGE_TIMEOUT"] * 1000,
    )
    return new_challenge("login", options)


@bp.route("/login/passkey", methods=("POST",))
def login():
    """Sign in with the authenticator's answer (JSON): a signature over this session's challenge, by a known passkey."""
    if current_user.is_authenticated:
        return refused("You are logged in already.")
    kept = take_challenge("login")
    credential = credential_from_request()
    if kept is None:
        return refused("This sign-in has expired. Please try again.")
    try:
        parsed = parse_authentication_credential_json(credential)
    except (WebAuthnException, ValueError):
        return refused("That is not an answer from an authenticator.")
    passkey = find_passkey(parsed.raw_id)
    half_way = half_way_user()
    if passkey is None or (half_way is not None and passkey.user_id != half_way.id):
        log_event("passkey sign-in with an unknown passkey", level=logging.WARNING)
        return refused("This passkey is not known here. Was it removed?")
    user = db.session.get(User, passkey.user_id)
    # The user handle, when the authenticator sends it, names the passkey's owner.
    if parsed.response.user_handle is not None and parsed.response.user_handle != user.webauthn_id:
        return refused("This passkey is not known here. Was it removed?")
    rp_id, origin = relying_party()
    try:
        verified = verify_authentication_response(
            credential=parsed,
            expected_challenge=base64url_to_bytes(kept["challenge"]),
            expected_rp_id=rp_id,
            expected_origin=origin,
            credential_public_key=passkey.public_key,
            credential_current_sign_count=passkey.sign_count,
            require_user_verification=True,
        )
    except (WebAuthnException, ValueError) as error:
        log_event(f"passkey sign-in refused: {str(error)[:200]!r}", user, level=logging.WARNING)
        return refused("The passkey sign-in failed. Please try again.")
    if not user.is_active:
        # Said only now, to whoever holds the passkey, as after the right password.
        log_event("passkey sign-in refused, account disabled", user, level=logging.WARNING)
        return refused(DISABLED, 403)
    if not passkey_used(passkey, passkey.sign_count, verified.new_sign_count):
        return refused("The passkey sign-in failed. Please try again.")
    # As at /login: a fresh session, logged in, with a new id. Half-way, the
    # first stage's "remember me" and `next` carry on; else the page's own.
    if half_way is not None:
        remember = session.get("two_factor_remember") is True
        next_page = session.get("two_factor_next", "")
    else:
        remember = request.args.get("remember") == "1"
        next_page = request.args.get("next", "")
    session.clear()
    login_user(user)
    session.permanent = remember
    new_session_id()
    record_login(user)
    log_event("login with a passkey", user)
    return jsonify(redirect=next_page if is_safe_next(next_page) else url_for("views.profile"))
