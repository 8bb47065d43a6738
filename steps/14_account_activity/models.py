"""Users, kept in the database with a bcrypt hash of their password; their reset and confirmation tokens; their second factor; their passkeys; their accounts at an OpenID provider; their roles; their security events."""

import base64
import functools
import hashlib
import hmac
import re
import secrets
from datetime import datetime
from datetime import timedelta
from datetime import timezone

import pyotp
from cryptography.fernet import Fernet
from cryptography.fernet import InvalidToken
from flask import current_app
from flask_login import UserMixin
from itsdangerous import BadData
from itsdangerous import URLSafeTimedSerializer
from pyotp.exceptions import OTPVerificationError
from sqlalchemy import BigInteger
from sqlalchemy import DateTime
from sqlalchemy import ForeignKey
from sqlalchemy import LargeBinary
from sqlalchemy import String
from sqlalchemy import Text
from sqlalchemy import delete
from sqlalchemy import func
from sqlalchemy import or_
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from .extensions import bcrypt
from .extensions import db


class User(UserMixin, db.Model):
    """A user. UserMixin gives Flask-Login `is_authenticated`, `get_id()`..."""

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(32))
    email: Mapped[str] = mapped_column(String(254))
    # bcrypt's output: algorithm, cost, salt and hash in one 60-character string.
    # Empty for an account that an OpenID provider made (step 12): no
    # password matches it, until its owner sets one through a reset link.
    password_hash: Mapped[str] = mapped_column(String(60))
    # Goes up by one at "log out everywhere": every session made before
    # holds the old number (see get_id), and so loads nobody any more.
    session_version: Mapped[int] = mapped_column(default=0)
    # When the owner followed the link emailed at sign-up; None until then,
    # and such an account cannot log in. A time, not a yes/no: it also
    # says when, for whoever looks into an account later.
    confirmed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # The TOTP secret that the user's authenticator app shares, encrypted
    # (encrypt_secret): a copy of the database alone makes no codes. None:
    # two-factor authentication is off.
    totp_secret: Mapped[str | None] = mapped_column(Text)
    # The RFC 6238 time step of the last code accepted: a code of that step,
    # or of an earlier one, is refused, so that each code works once.
    totp_last_step: Mapped[int | None] = mapped_column()
    # The user handle that the user's passkeys hold (WebAuthn's user.id):
    # random, made with the first passkey, so that it says nothing about
    # the user (not the username, not the database id). None: no passkey yet.
    # 32 random bytes never collide, and nothing looks a user up by it: no
    # unique index, which SQLite could add only by copying the table.
    webauthn_id: Mapped[bytes | None] = mapped_column(LargeBinary(64))
    # When an admin disabled the account; None while it may log in. A time,
    # as confirmed_at is: it also says since when.
    disabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When the user last logged in, for the admin area's list. None: never since step 13.
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    # Unique without regard to case, enforced by the database itself: the
    # form's check alone cannot stop two sign-ups racing for one name.
    __table_args__ = (
        db.Index("uq_user_username", func.lower(username), unique=True),
        db.Index("uq_user_email", func.lower(email), unique=True),
    )

    def get_id(self):
        """What Flask-Login keeps in the session: the id and the session version, "1:0".

        The store holds no list of a user's sessions to delete, so instead
        each session says which version of the user's sessions it belongs to.
        """
        return f"{self.id}:{self.session_version}"

    @property
    def is_active(self):
        """Flask-Login's question (UserMixin says always True): may this account be logged in?

        Not once an admin has disabled it: login_user() then refuses it.
        """
        return self.disabled_at is None

    def has_role(self, name):
        """Whether the user holds the role: asked of the database each time, so a revoked role is gone at once."""
        held = select(Role.id).where(Role.user_id == self.id, Role.name == name)
        return db.session.scalar(held) is not None

    def set_password(self, password):
        # A new random salt each time: two users with one password get two
        # different hashes. Raises ValueError past 72 bytes (bcrypt's limit).
        self.password_hash = bcrypt.generate_password_hash(password).decode()

    def check_password(self, password):
        return check_password(self.password_hash, password)

    def password_fingerprint(self):
        """A short digest of the password hash: it changes whenever the password does.

        bcrypt salts every hash anew, so even setting the same password again
        gives a new hash, and a new fingerprint. A digest and not the hash
        itself, because a token is signed, not encrypted: anyone who sees
        the link can read what it holds.
        """
        return hashlib.sha256(self.password_hash.encode()).hexdigest()[:16]

    def reset_token(self):
        """A token for a reset link: signed, dated, and tied to the current password."""
        return reset_serializer().dumps({"user": self.id, "password": self.password_fingerprint()})

    def confirm_token(self):
        """A token for a confirmation link: signed, dated, naming the address it proves."""
        return serializer("confirm-email").dumps({"user": self.id, "email": self.email})

    def email_fingerprint(self):
        """A short digest of the address and the password hash: it changes when either does."""
        return hashlib.sha256(f"{self.email}\n{self.password_hash}".encode()).hexdigest()[:16]

    def change_email_token(self, new_email):
        """A token for the link that moves the account to `new_email`: valid while the account is as it is now.

        Once the address has moved (through this link or another), or the
        password has changed (the owner reset it, fearing someone else asked
        for this), the fingerprint differs and the link is worthless.
        """
        return serializer("change-email").dumps({"user": self.id, "email": new_email, "old": self.email_fingerprint()})


class RecoveryCode(db.Model):
    """One of a user's recovery codes, for when the phone is lost: hashed, and good for one use."""

    __tablename__ = "recovery_codes"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    # SHA-256 of the code, in hex (recovery_code_hash): never the code itself.
    code_hash: Mapped[str] = mapped_column(String(64))
    # When it was used; None while it still works.
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    # One index for both look-ups: a user's codes, and a code of a user.
    __table_args__ = (db.UniqueConstraint("user_id", "code_hash", name="uq_recovery_codes_user_code"),)


class Passkey(db.Model):
    """One of a user's passkeys: the public half of a key pair whose private half never leaves the device.

    A copy of this table logs nobody in: it holds no secret, only what
    checks a signature.
    """

    __tablename__ = "passkeys"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    # The id the authenticator gave the credential (up to 1023 bytes, by
    # the spec): how a sign-in says which passkey it used.
    credential_id: Mapped[bytes] = mapped_column(LargeBinary(1023))
    # The public key, COSE-encoded, as py_webauthn hands it over and takes it back.
    public_key: Mapped[bytes] = mapped_column(LargeBinary)
    # The signature counter the authenticator last reported: a count that
    # does not go up betrays a cloned authenticator (0: it keeps none).
    # Four bytes unsigned, by the spec: more than PostgreSQL's INTEGER holds.
    sign_count: Mapped[int] = mapped_column(BigInteger, default=0)
    # The name the user gave it ("laptop", "phone"), to tell them apart.
    name: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (db.UniqueConstraint("credential_id", name="uq_passkeys_credential_id"),)


class Identity(db.Model):
    """An account at an OpenID provider, linked to a user here: the provider's issuer and its `sub` for the person.

    (issuer, sub) is the identity, for good: a provider never gives one
    `sub` to two people, and the address it sends may change or be
    someone else's.
    """

    __tablename__ = "identities"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    issuer: Mapped[str] = mapped_column(String(255))
    subject: Mapped[str] = mapped_column(String(255))
    # The address the provider gave when it was linked: shown, never trusted.
    email: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (db.UniqueConstraint("issuer", "subject", name="uq_identities_issuer_subject"),)


class Role(db.Model):
    """A role that a user holds: one row per user and role.

    A table rather than an `is_admin` column: a second role ("support",
    say) is a new name, not a new column and a migration.
    """

    __tablename__ = "roles"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    name: Mapped[str] = mapped_column(String(32))

    __table_args__ = (db.UniqueConstraint("user_id", "name", name="uq_roles_user_name"),)


class SecurityEvent(db.Model):
    """Something that happened to an account's security, for its owner (and admins) to read later.

    What, when, from which address and browser: never a password, a code, a
    token or a session id, which would let whoever reads the table log in.
    """

    __tablename__ = "security_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"))
    # One of EVENTS' keys: the words the step's log line starts with.
    kind: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # The client's address (behind a proxy, the one ProxyFix found: step 08), and its User-Agent, cut short.
    address: Mapped[str] = mapped_column(String(45))
    user_agent: Mapped[str] = mapped_column(String(200))
    # The admin who did it, for what an admin did to the account.
    admin_id: Mapped[int | None] = mapped_column(ForeignKey("user.id"))

    # One index for both: a user's newest events, and the oldest of all (pruning).
    __table_args__ = (db.Index("ix_security_events_user_time", "user_id", "created_at"),)


# The events recorded (their log line's first words), and how the activity page says each.
EVENTS = {
    "login": "Signed in",
    "login with a recovery code": "Signed in with a recovery code",
    "login with a passkey": "Signed in with a passkey",
    "login with the provider": "Signed in through the OpenID provider",
    "login failed": "A sign-in failed: wrong password",
    "password ok, second factor asked": "Your password was given, and a code asked for",
    "two-factor code wrong": "A wrong two-factor code was given",
    "over a limit at /login": "Sign-ins locked for a while after too many failures",
    "over a limit at /login/two-factor": "Codes locked for a while after too many wrong ones",
    "login refused, email not confirmed": "A sign-in was refused: the address is not confirmed",
    "login refused, account disabled": "A sign-in was refused: the account is disabled",
    "passkey sign-in refused, account disabled": "A passkey sign-in was refused: the account is disabled",
    "provider sign-in refused, account disabled": "A provider sign-in was refused: the account is disabled",
    "login confirmed with the password": "Your password was given again, for an admin action",
    "logout": "Signed out",
    "logout everywhere": "Signed out everywhere",
    "session ended from the sessions page": "One session was ended from the sessions page",
    "reset requested": "A password reset link was asked for",
    "password reset": "The password was set with a reset link",
    "password changed": "The password was changed",
    "email change asked": "A move to a new email address was asked for",
    "email changed": "The email address was changed",
    "email confirmed": "The email address was confirmed",
    "two-factor turned on": "Two-factor authentication was turned on",
    "two-factor turned off": "Two-factor authentication was turned off",
    "recovery codes renewed": "New recovery codes were made",
    "passkey added": "A passkey was added",
    "passkey removed": "A passkey was removed",
    "account made by the provider": "The account was made by signing in through the OpenID provider",
    "provider account linked": "An OpenID provider account was linked",
    "provider account unlinked": "An OpenID provider account was unlinked",
    "disabled by an admin": "The account was disabled by an admin",
    "enabled by an admin": "The account was enabled by an admin",
    "sessions ended by an admin": "Every session was ended by an admin",
}


# The roles this app knows: `flask roles grant` gives only these, so that a
# typo ("admn") is an error, not a role that no page asks for.
ROLES = ("admin",)


def replace_password(user, password):
    """Set the user's new password and end every session of theirs; False if someone was first.

    Two requests carrying one reset link, sent at the same moment, would
    both find it valid: checking it and setting the password are apart by a
    bcrypt hash's time. So the UPDATE itself checks that the old hash is
    still there, and only one of them can change it.
    """
    new_hash = bcrypt.generate_password_hash(password).decode()
    result = db.session.execute(
        update(User)
        .where(User.id == user.id, User.password_hash == user.password_hash)
        # A new session version, as at "log out everywhere": whoever knew
        # the old password may have logged in with it.
        .values(password_hash=new_hash, session_version=User.session_version + 1)
    )
    db.session.commit()
    return result.rowcount == 1


def reset_serializer():
    """Signs and checks reset tokens with the app's secret key."""
    return serializer("reset-password")


def serializer(purpose):
    """Signs and checks tokens for one purpose ("reset-password", "confirm-email"...) with the app's secret key.

    The salt, the purpose, keeps these signatures apart from every other
    use of the key: a reset token is never a valid confirmation token, nor
    the other way round, though both are signed with the same key.
    itsdangerous signs with HMAC-SHA-1 unless told otherwise; SHA-256 is
    what the OWASP ASVS asks for (a 43-character signature, not 27).
    """
    return URLSafeTimedSerializer(
        current_app.config["SECRET_KEY"], salt=purpose, signer_kwargs={"digest_method": hashlib.sha256}
    )


def user_for_reset_token(token):
    """The user a reset token is for, or None if it is altered, expired or used.

    Used or superseded: the token names the password as it was when the
    link was sent. Once the password changes (through this link, or any
    other way), the fingerprint differs, and the link is worthless. That
    makes it single-use without a table of tokens.
    """
    try:
        # max_age: a token older than this many seconds is refused.
        data = reset_serializer().loads(token, max_age=current_app.config["RESET_TOKEN_MAX_AGE"])
    except BadData:  # a bad signature, an expired date, a garbled payload
        return None
    if not isinstance(data, dict) or not isinstance(data.get("user"), int) or not isinstance(data.get("password"), str):
        return None
    user = db.session.get(User, data["user"])
    if user is None or not hmac.compare_digest(user.password_fingerprint(), data["password"]):
        return None
    return user


def load_token(purpose, token, **fields):
    """What a token for `purpose` holds, if it is signed, not too old, and holds `fields` of those types; else None."""
    try:
        data = serializer(purpose).loads(token, max_age=current_app.config["CONFIRM_TOKEN_MAX_AGE"])
    except BadData:  # a bad signature, an expired date, a garbled payload
        return None
    if not isinstance(data, dict) or not all(isinstance(data.get(name), kind) for name, kind in fields.items()):
        return None
    return data


def user_for_confirm_token(token):
    """The user a confirmation token is for, or None if it is altered, expired or used.

    Used: the account is confirmed already. That makes the link single-use
    without a table of tokens, as the password fingerprint does for resets.
    """
    data = load_token("confirm-email", token, user=int, email=str)
    if data is None:
        return None
    user = db.session.get(User, data["user"])
    if user is None or user.confirmed_at is not None or user.email != data["email"]:
        return None
    return user


def confirm_email(user):
    """Mark the user's address as confirmed; False if it already was (another request was first)."""
    result = db.session.execute(
        # The WHERE makes it single-use even for two requests at once: only one finds it NULL.
        update(User).where(User.id == user.id, User.confirmed_at.is_(None)).values(confirmed_at=now())
    )
    db.session.commit()
    return result.rowcount == 1


def change_email_for_token(token):
    """The user a change-of-address token is for, and the new address; (None, None) if it is no good."""
    data = load_token("change-email", token, user=int, email=str, old=str)
    user = db.session.get(User, data["user"]) if data is not None else None
    if user is None or not hmac.compare_digest(user.email_fingerprint(), data["old"]):
        return None, None
    return user, data["email"]


def replace_email(user, new_email):
    """Move the user to the new address; False if the account changed meanwhile.

    The UPDATE checks that the address is still the old one, as
    replace_password checks the hash: of two requests with one link, one
    wins. The unique index refuses an address someone took meanwhile.
    """
    result = db.session.execute(
        update(User).where(User.id == user.id, User.email == user.email).values(email=new_email)
    )
    db.session.commit()
    return result.rowcount == 1


def now():
    """The time now, in UTC: the same on every server, wherever it stands."""
    return datetime.now(timezone.utc)


def check_password(password_hash, password):
    """True if `password` matches the hash; False, never an error, otherwise."""
    if not password_hash:
        # An account the provider made has no password. Checked against the
        # dummy hash all the same: a quick "no" would tell that the name exists.
        check_password(dummy_hash(current_app.config["BCRYPT_LOG_ROUNDS"]), password)
        return False
    try:
        return bcrypt.check_password_hash(password_hash, password)
    except ValueError:
        # bcrypt refuses passwords over 72 bytes, so no stored one is longer.
        return False


@functools.cache
def dummy_hash(rounds):
    """A hash of a password nobody knows, as costly to check as a real one."""
    return bcrypt.generate_password_hash(secrets.token_hex(16), rounds).decode()


def find_user(username):
    """Return the user with this username, or None. Letter case does not count."""
    return db.session.scalar(select(User).where(func.lower(User.username) == func.lower(username)))


def find_user_by_email(email):
    """Return the user with this email address, or None. Letter case does not count."""
    return db.session.scalar(select(User).where(func.lower(User.email) == func.lower(email)))


def authenticate(username, password):
    """Return the user if the password is right, else None.

    It takes as long for an unknown username as for a wrong password, so an
    attacker cannot time the answer to learn which usernames exist.
    """
    user = find_user(username)
    if user is None:
        check_password(dummy_hash(current_app.config["BCRYPT_LOG_ROUNDS"]), password)
        return None
    return user if user.check_password(password) else None


# Two-factor authentication --------------------------------------------------


def fernet():
    """Encrypts and decrypts TOTP secrets with TOTP_ENCRYPTION_KEY (config.py says where it comes from).

    Fernet is authenticated encryption: a secret altered in the database
    fails to decrypt, rather than decrypting to something else.
    """
    return Fernet(current_app.config["TOTP_ENCRYPTION_KEY"])


def encrypt_secret(secret):
    return fernet().encrypt(secret.encode()).decode()


def decrypt_secret(token):
    """The TOTP secret, or None if it cannot be decrypted (the key has changed since it was stored)."""
    try:
        return fernet().decrypt(token).decode()
    except InvalidToken:
        # The user can still log in with a recovery code, and set up again.
        current_app.logger.error("a TOTP secret does not decrypt: has TOTP_ENCRYPTION_KEY (or SECRET_KEY) changed?")
        return None


def new_totp_secret():
    """A new random secret: 32 base32 characters, 160 bits, as RFC 4226 recommends."""
    return pyotp.random_base32()


def totp_uri(user, secret):
    """The otpauth:// URI of the secret, which the QR code holds: the account's name, the site's, the secret."""
    return pyotp.TOTP(secret).provisioning_uri(name=user.username, issuer_name=current_app.config["TWO_FACTOR_ISSUER"])


def totp_step(secret, code):
    """The time step whose code `code` is (six digits), or None if it is no code of the secret now.

    valid_window=1: the step before and the step after count too, so that a
    phone whose clock is off by up to 30 seconds, or a code typed as the
    step ends, still works. The comparison takes the same time whatever
    the code, as a password check does.
    """
    try:
        return pyotp.TOTP(secret).verify_and_get_timecode(code, valid_window=1)
    except OTPVerificationError:
        return None


def totp_by_hand(secret, for_time):
    """The code pyotp.TOTP(secret).at(for_time) gives, computed by hand as RFC 6238 says; the app does not use it.

    TOTP is HOTP (RFC 4226) with a counter that is the time: an HMAC of
    the number of 30-second steps since 1970, cut down to six digits.
    The phone and the server share the secret and the clock, so both get
    the same code, and nothing travels between them.
    """
    key = base64.b32decode(secret)
    step = int(for_time) // 30
    digest = hmac.new(key, step.to_bytes(8, "big"), hashlib.sha1).digest()
    # "Dynamic truncation": the last 4 bits say where in the digest to read
    # 4 bytes; the top bit is dropped, so that every language reads a
    # positive number.
    offset = digest[-1] & 0x0F
    number = int.from_bytes(digest[offset : offset + 4], "big") & 0x7FFFFFFF
    return f"{number % 10**6:06d}"


def check_totp(user, code):
    """True if `code` (six digits) is the user's code of now, not used before; from now on it is used.

    Used: no code of its time step, or of a later one, is accepted again.
    Recording the step is one UPDATE that checks the step stored, as in
    confirm_email: of two requests racing with one code, only one finds
    the stored step still below this one.
    """
    secret = decrypt_secret(user.totp_secret) if user.totp_secret else None
    step = totp_step(secret, code) if secret else None
    if step is None:
        return False
    result = db.session.execute(
        update(User)
        .where(User.id == user.id, or_(User.totp_last_step.is_(None), User.totp_last_step < step))
        .values(totp_last_step=step)
    )
    db.session.commit()
    return result.rowcount == 1


def recovery_code_hash(code):
    """SHA-256 of the code, without dashes or spaces, in lower case: "ABCD EFGH..." is the same code.

    A fast hash is enough here, unlike for passwords. A password is chosen
    by a person, and a list of likely ones finds it under any hash: bcrypt
    makes each guess slow. A recovery code is 120 random bits, with no list
    to try: at ten billion SHA-256 guesses a second, finding one from its
    hash would take over a billion billion years. (OWASP ASVS 6.5.2 allows a
    plain hash from 112 bits up; shorter codes would need bcrypt too.)
    """
    normal = "".join(code.split()).replace("-", "").lower()
    return hashlib.sha256(normal.encode()).hexdigest()


def new_recovery_codes(user):
    """Replace the user's recovery codes with ten new ones; return them, in plain text, to show once.

    Each is 15 random bytes (120 bits) in base32 (letters and the digits
    2-7: no 0 or 1 to mistake for o or l), in groups of four for typing:
    "abcd-efgh-ijkl-mnop-qrst-uvwx".
    """
    codes = []
    for _ in range(10):
        text = base64.b32encode(secrets.token_bytes(15)).decode().lower()
        codes.append("-".join(text[i : i + 4] for i in range(0, 24, 4)))
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    db.session.add_all(RecoveryCode(user_id=user.id, code_hash=recovery_code_hash(code)) for code in codes)
    db.session.commit()
    return codes


def use_recovery_code(user, code):
    """True if `code` is one of the user's recovery codes, unused until now; it is used up."""
    result = db.session.execute(
        # The WHERE makes it single-use even for two requests at once, as in check_totp.
        update(RecoveryCode)
        .where(
            RecoveryCode.user_id == user.id,
            RecoveryCode.code_hash == recovery_code_hash(code),
            RecoveryCode.used_at.is_(None),
        )
        .values(used_at=now())
    )
    db.session.commit()
    return result.rowcount == 1


def recovery_codes_left(user):
    """How many of the user's recovery codes are unused."""
    unused = select(func.count(RecoveryCode.id)).where(RecoveryCode.user_id == user.id, RecoveryCode.used_at.is_(None))
    return db.session.scalar(unused)


def enable_two_factor(user, secret, step):
    """Turn two-factor on with this secret, whose code of `step` was just given; return new recovery codes.

    That step is recorded as used: the code that turned it on cannot log in.
    """
    user.totp_secret = encrypt_secret(secret)
    user.totp_last_step = step
    return new_recovery_codes(user)  # which commits


def disable_two_factor(user):
    """Turn two-factor off: forget the secret and the recovery codes."""
    user.totp_secret = None
    user.totp_last_step = None
    db.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user.id))
    db.session.commit()


# Passkeys ----------------------------------------------------------------------


def passkeys_of(user):
    """The user's passkeys, oldest first."""
    return db.session.scalars(select(Passkey).where(Passkey.user_id == user.id).order_by(Passkey.id)).all()


def passkey_user_handle(user):
    """The user's WebAuthn user handle, made (and stored) on first use."""
    if user.webauthn_id is None:
        user.webauthn_id = secrets.token_bytes(32)
        db.session.commit()
    return user.webauthn_id


def find_passkey(credential_id):
    """The passkey with this credential id, or None."""
    return db.session.scalar(select(Passkey).where(Passkey.credential_id == credential_id))


def add_passkey(user, verified, name):
    """Keep a passkey that a registration ceremony has just proven; False if that credential is here already."""
    if find_passkey(verified.credential_id) is not None:
        return False
    passkey = Passkey(
        user_id=user.id,
        credential_id=verified.credential_id,
        public_key=verified.credential_public_key,
        sign_count=verified.sign_count,
        name=name,
        created_at=now(),
    )
    db.session.add(passkey)
    db.session.commit()
    return True


def passkey_used(passkey, old_count, new_count):
    """Record a sign-in with the passkey; False if another sign-in with the same count got there first.

    The count moves only from the value the check read: two sign-ins
    racing with one signature (a replay) cannot both pass.
    """
    result = db.session.execute(
        update(Passkey)
        .where(Passkey.id == passkey.id, Passkey.sign_count == old_count)
        .values(sign_count=new_count, last_used_at=now())
    )
    db.session.commit()
    return result.rowcount == 1


def remove_passkey(passkey):
    db.session.delete(passkey)
    db.session.commit()


# Accounts at an OpenID provider ---------------------------------------------------


def find_identity(issuer, subject):
    return db.session.scalar(select(Identity).where(Identity.issuer == issuer, Identity.subject == subject))


def identities_of(user):
    return db.session.scalars(select(Identity).where(Identity.user_id == user.id).order_by(Identity.id)).all()


def link_identity(user, issuer, subject, email):
    """Link the provider's account to the user; False if it is linked already (to anyone)."""
    if find_identity(issuer, subject) is not None:
        return False
    db.session.add(Identity(user_id=user.id, issuer=issuer, subject=subject, email=email, created_at=now()))
    db.session.commit()
    return True


def ways_in(user):
    """How many ways the user has to log in: a password, each passkey, each linked provider account."""
    return bool(user.password_hash) + len(passkeys_of(user)) + len(identities_of(user))


def unlink_identity(identity):
    db.session.delete(identity)
    db.session.commit()


def free_username(claims):
    """A username nobody has, from the provider's claims: its preferred username, or the address before the @.

    Cut to what a sign-up allows (3 to 32 of letters, digits, dots, dashes,
    underscores); a number added until it is free.
    """
    wanted = claims.get("preferred_username") or str(claims.get("email", "")).partition("@")[0]
    base = re.sub(r"[^A-Za-z0-9._-]", "", str(wanted))[:28] or "user"
    base = base if len(base) >= 3 else f"{base}-user"
    name, number = base, 1
    while find_user(name) is not None:
        number += 1
        name = f"{base}{number}"
    return name


def account_from_claims(issuer, claims):
    """A new account for the provider's person, linked to it: confirmed only if the provider verified the address.

    No password: it logs in through the provider, until its owner sets one
    (a reset link). Its username is free; its address is the provider's.
    """
    user = User(username=free_username(claims), email=claims["email"], password_hash="")
    if claims.get("email_verified") is True:
        user.confirmed_at = now()
    db.session.add(user)
    db.session.flush()  # the id, for the identity
    db.session.add(
        Identity(user_id=user.id, issuer=issuer, subject=claims["sub"], email=claims["email"], created_at=now())
    )
    db.session.commit()
    return user


# Roles, and what an admin does to an account ----------------------------------


def grant_role(user, name):
    """Give the user the role; False if they had it already."""
    if user.has_role(name):
        return False
    db.session.add(Role(user_id=user.id, name=name))
    db.session.commit()
    return True


def revoke_role(user, name):
    """Take the role from the user; False if they did not have it."""
    result = db.session.execute(delete(Role).where(Role.user_id == user.id, Role.name == name))
    db.session.commit()
    return result.rowcount == 1


def roles_of_everyone():
    """Every user's roles, in one query: {user id: ["admin", ...]}."""
    roles = {}
    for user_id, name in db.session.execute(select(Role.user_id, Role.name).order_by(Role.name)):
        roles.setdefault(user_id, []).append(name)
    return roles


def end_sessions(user=None):
    """End every session of the user (None: of every user), in every browser and either store; how many users.

    A new session version, as at "log out everywhere": each stored session
    names the old one, and loads nobody (views.load_user). One UPDATE, so
    it holds for every server at once, whatever store the sessions are in.
    """
    ended = update(User).values(session_version=User.session_version + 1)
    if user is not None:
        ended = ended.where(User.id == user.id)
    result = db.session.execute(ended)
    db.session.commit()
    return result.rowcount


def disable_account(user):
    """Stop the account: it cannot log in (is_active), and every session of it ends now.

    Both in one UPDATE: there is no moment when the account is disabled
    and an old session still works. The new session version is what logs
    it out: Flask-Login asks is_active only in login_user(), never of a
    session it loads. And since the old sessions are ended, not only
    refused, enabling the account again brings back no copied cookie.
    """
    db.session.execute(
        update(User).where(User.id == user.id).values(disabled_at=now(), session_version=User.session_version + 1)
    )
    db.session.commit()


def enable_account(user):
    """Let the account log in again. Its old sessions stay ended: its owner logs in afresh."""
    user.disabled_at = None
    db.session.commit()


def record_login(user):
    """Note the time of the user's login, for the admin area's list."""
    user.last_login_at = now()
    db.session.commit()


# Security events ---------------------------------------------------------------


def record_event(kind, user, address, user_agent, admin=None):
    """Keep the event for the user to read, if it is one of EVENTS."""
    if kind not in EVENTS or user is None:
        return
    event = SecurityEvent(
        user_id=user.id,
        kind=kind,
        created_at=now(),
        address=printable(address, 45),
        user_agent=printable(user_agent, 200),
        admin_id=admin.id if admin is not None else None,
    )
    db.session.add(event)
    db.session.commit()


def printable(text, length):
    """`text` without the characters no column should hold (NUL, which PostgreSQL refuses; other controls), cut short.

    The address and the User-Agent are what the client sent: a header may hold anything.
    """
    return "".join(character for character in text if character.isprintable())[:length]


def events_of(user, limit=50):
    """The user's newest events, newest first."""
    newest = select(SecurityEvent).where(SecurityEvent.user_id == user.id)
    return db.session.scalars(
        newest.order_by(SecurityEvent.created_at.desc(), SecurityEvent.id.desc()).limit(limit)
    ).all()


def prune_events(days):
    """Delete the events older than `days` days; how many."""
    result = db.session.execute(delete(SecurityEvent).where(SecurityEvent.created_at < now() - timedelta(days=days)))
    db.session.commit()
    return result.rowcount
