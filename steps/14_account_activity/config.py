"""The app's settings and their defaults, loaded first by create_app().

Each one can be changed from the environment, FLASK_<NAME>=... (the tests
pass theirs to create_app); the comments say why each default is what it is.
"""

import base64
from datetime import timedelta
from urllib.parse import urlsplit

from cryptography.fernet import Fernet
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from limits import parse_many
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

# The browser sends the session cookie when a link on another site
# leads here, but not with that site's POST forms, frames or scripts:
# a first line against CSRF.
SESSION_COOKIE_SAMESITE = "Lax"

# A login form is a few hundred bytes. Refuse any body over 1 MB with
# 413 before reading it: Flask would otherwise read it all into memory.
MAX_CONTENT_LENGTH = 1024 * 1024

# Without "remember me" the session cookie gets no expiry date, so
# the browser drops it when it closes. (Flask-Session's default is
# the opposite.) "Remember me" makes the session permanent instead.
SESSION_PERMANENT = False

# A session unused this long is over, on the server; a remembered
# one's cookie lasts as long. FLASK_PERMANENT_SESSION_LIFETIME=3 sets
# it in seconds.
PERMANENT_SESSION_LIFETIME = timedelta(days=14)

# However often it is used, a session ends this many seconds after
# its login, remembered or not (sessions.py): 30 days.
# FLASK_SESSION_ABSOLUTE_LIFETIME=3 sets it in a test.
SESSION_ABSOLUTE_LIFETIME = 30 * 24 * 60 * 60

# Seconds after its password (or passkey, or provider) that a login is
# "fresh", as Flask-Login calls it: admin actions need a fresh one
# (admin.py), and a login older than this gives its password again.
# FLASK_FRESH_LOGIN_LIFETIME=3 sets it in a test.
FRESH_LOGIN_LIFETIME = 15 * 60

# Flask would send the cookie, and Flask-Session rewrite the stored
# session, on every request, only to move the expiry: sessions.py
# does that only when the expiry has grown stale.
SESSION_REFRESH_EACH_REQUEST = False

# How stored sessions' keys start: one store can serve several apps.
SESSION_KEY_PREFIX = "session:"

# FLASK_REDIS_URL=redis://HOST:6379/0 keeps sessions in Redis, shared
# by every server process; with none, they live in the database.
REDIS_URL = None

# A relative SQLite path lands in the instance folder, made on demand.
SQLALCHEMY_DATABASE_URI = "sqlite:///users.sqlite"

# Test each pooled connection before use: after the database restarts,
# the pool's old connections are dead, and the first request on each
# would fail. A cheap round trip instead.
SQLALCHEMY_ENGINE_OPTIONS = {"pool_pre_ping": True}

# Each step up doubles the work of checking a password: 12 takes a
# few hundred milliseconds, slow for a guesser, fine for a login.
BCRYPT_LOG_ROUNDS = 12

# Failed logins allowed per username (whatever the address), and per
# client address (whatever the usernames), before POST /login says
# 429. Flask-Limiter's notation; a window starts at its first failure.
LOGIN_LIMIT_PER_USERNAME = "5 per 15 minutes"
LOGIN_LIMIT_PER_ADDRESS = "30 per 15 minutes"

# Sign-ups (and attempts) per address: each one costs a bcrypt hash
# and sends an email, and its answer tells whether a name is taken.
REGISTER_LIMIT_PER_ADDRESS = "10 per hour"

# Requests for a reset link per address: each one may send an email.
RESET_LIMIT_PER_ADDRESS = "5 per hour"

# Reset emails per recipient, whoever asks: nobody can flood one
# inbox from many addresses. Over it, the page says the same as
# ever and no email goes: a 429 would tell that the address exists.
RESET_LIMIT_PER_RECIPIENT = "3 per hour"

# How long a reset link works, in seconds.
RESET_TOKEN_MAX_AGE = 3600

# Requests for a new confirmation link per address, and such emails
# per recipient: the same reasons, and the same silence, as for resets.
CONFIRM_LIMIT_PER_ADDRESS = "5 per hour"
CONFIRM_LIMIT_PER_RECIPIENT = "3 per hour"

# How long a link that proves an address works (confirming it, or
# moving an account to it), in seconds: a day, as mail can be slow
# to be read, and the link gives no access to the account.
CONFIRM_TOKEN_MAX_AGE = 86400

# Wrong second-factor codes allowed per user at /login/two-factor (and
# the password is right by then). With three codes valid at a time (the
# clock drift allowed), guessing one at this pace takes about two years.
TWO_FACTOR_LIMIT = "5 per 15 minutes"

# Seconds from the right password to the code: after that, the half-way
# state is worthless and the password is asked again. Long enough to find
# the phone; FLASK_TWO_FACTOR_TIMEOUT=1 in a test.
TWO_FACTOR_TIMEOUT = 300

# The name authenticator apps show beside the account's.
TWO_FACTOR_ISSUER = "flask-login-steps"

# The key that encrypts the TOTP secrets in the database, such as
# Fernet.generate_key() makes. None: one derived from SECRET_KEY (see
# totp_encryption_key), so that a server with no configuration works.
# A key of its own lets you change either key alone: with a derived one, a
# new SECRET_KEY (which voids CSRF tokens and emailed links) would also
# make every stored secret unreadable, and each user set two-factor up again.
TOTP_ENCRYPTION_KEY = None

# Passkeys (WebAuthn). The relying party id: the domain that the
# passkeys belong to. The browser lets a page use it only on that domain
# (or below it), and the authenticator signs its hash: a passkey made
# here is never offered to a look-alike domain. From the configuration,
# never from the request, whose Host header the client writes.
# FLASK_WEBAUTHN_RP_ID=example.org on a server.
WEBAUTHN_RP_ID = "localhost"

# The origin the pages are served from, as the browser names it
# (scheme, host and port): the browser puts it into what the
# authenticator signs, and a sign-in made on any other origin, such as
# a proxy relaying this site, is refused. `flask run` serves
# http://localhost:5000; FLASK_WEBAUTHN_ORIGIN=https://example.org on a
# server. Browsers allow WebAuthn on https://, and on http:// only at
# localhost (a "secure context"); 127.0.0.1 is no domain, so no RP id.
WEBAUTHN_ORIGIN = "http://localhost:5000"

# The name an authenticator shows beside the account's.
WEBAUTHN_RP_NAME = "Flask login steps"

# Seconds a passkey challenge stays good: one ceremony, start to end.
PASSKEY_CHALLENGE_TIMEOUT = 300

# Signing in with an account at an OpenID Connect provider. All three
# set: /login shows "Sign in with <OIDC_NAME>"; any unset: no button, and
# the provider's routes answer 404. The issuer is the provider's URL
# (its settings are read from ISSUER/.well-known/openid-configuration);
# the client id and secret are what the provider gave this site when it
# was registered there, with http(s)://HOST/login/oidc/callback as its
# redirect URI. FLASK_OIDC_CLIENT_SECRET comes from a secret store, as
# FLASK_SECRET_KEY does.
OIDC_ISSUER = None
OIDC_CLIENT_ID = None
OIDC_CLIENT_SECRET = None

# The provider's name, on the button and in the messages.
OIDC_NAME = "OpenID Connect"

# The only Host headers this app answers (any port); others get 400.
# The reset link is built from the Host header, so a forged one must
# never reach it. FLASK_TRUSTED_HOSTS='["example.org"]' on a server.
TRUSTED_HOSTS = ["127.0.0.1", "localhost"]

# Where mail goes (FLASK_MAIL_SERVER, FLASK_MAIL_PORT). With no
# server, emails.py prints each message to the terminal instead:
# Flask-Mail would otherwise try a mail server on this machine.
MAIL_SERVER = None
MAIL_PORT = 25
MAIL_DEFAULT_SENDER = "Flask login steps <no-reply@localhost>"

# Flask-Mail sends nothing while TESTING is on; the tests here read
# what a real SMTP server receives, so send whenever configured.
MAIL_SUPPRESS_SEND = False

# FLASK_PRODUCTION=1 on a real server: a secret key is required, and
# every cookie is Secure (production.py).
PRODUCTION = False

# FLASK_PROXY_COUNT=1 behind one reverse proxy (nginx, a load
# balancer) that ends TLS: read scheme, host and client address from it.
PROXY_COUNT = 0


def init_app(app):
    """Check the limits, say where their counts live, settle the TOTP key, check the passkeys' origin.

    A limit that Flask-Limiter cannot read, or a key Fernet cannot use,
    stops the app now, in one sentence, rather than as a 500 at the first
    login.
    """
    limits = ["LOGIN_LIMIT_PER_USERNAME", "LOGIN_LIMIT_PER_ADDRESS", "REGISTER_LIMIT_PER_ADDRESS"]
    limits += ["RESET_LIMIT_PER_ADDRESS", "RESET_LIMIT_PER_RECIPIENT"]
    limits += ["CONFIRM_LIMIT_PER_ADDRESS", "CONFIRM_LIMIT_PER_RECIPIENT"]
    limits += ["TWO_FACTOR_LIMIT"]
    for name in limits:
        try:
            parse_many(app.config[name])
        except ValueError:
            raise SystemExit(f"{name} is {app.config[name]!r}, not a limit such as '5 per 15 minutes'") from None
    # Where the counts live: with FLASK_REDIS_URL in that Redis, shared by
    # every process and server using it; otherwise in this process's memory.
    app.config.setdefault("RATELIMIT_STORAGE_URI", app.config.get("REDIS_URL") or "memory://")
    app.config["RATELIMIT_STORAGE_OPTIONS"] = {
        # Any store error as one exception, limits.errors.StorageError.
        "wrap_exceptions": True,
        # A Redis that does not answer: give up after 1 s (redis-py waits 5 s),
        # as the sessions' client does (sessions.py); send a call once more,
        # at once, only if its connection broke (Redis restarting, say).
        "socket_connect_timeout": 1,
        "socket_timeout": 1,
        "retry": Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,)),
        **app.config.get("RATELIMIT_STORAGE_OPTIONS", {}),
    }
    # Read by models.fernet(): the key set, or the one derived from SECRET_KEY.
    app.config["TOTP_ENCRYPTION_KEY"] = totp_encryption_key(app)
    check_webauthn_origin(app.config["WEBAUTHN_RP_ID"], app.config["WEBAUTHN_ORIGIN"])
    # The CSP's form-action lets a form lead to the provider (production.py):
    # its origin, from the issuer, which must be a URL.
    app.config["FORM_ACTION_ORIGINS"] = (
        [provider_origin(app.config["OIDC_ISSUER"])] if app.config["OIDC_ISSUER"] else []
    )


def check_webauthn_origin(rp_id, origin):
    """Stop the app unless the origin is one that browsers allow passkeys of `rp_id` on.

    Otherwise every passkey ceremony would fail, each with a browser error.
    """
    url = urlsplit(origin if isinstance(origin, str) else "")
    host = url.hostname or ""
    secure = url.scheme == "https" or (url.scheme == "http" and host == "localhost")
    within = isinstance(rp_id, str) and rp_id != "" and (host == rp_id or host.endswith("." + rp_id))
    if not (secure and within) or url.path or url.query or url.fragment or url.username:
        raise SystemExit(
            f"WEBAUTHN_ORIGIN is {origin!r}: not an origin (https://HOST, or http://localhost:PORT)"
            f" whose host is WEBAUTHN_RP_ID ({rp_id!r}) or a name under it"
        )


def provider_origin(issuer):
    """The origin (scheme://host[:port]) of the provider's issuer URL; stop the app if it is none."""
    url = urlsplit(issuer if isinstance(issuer, str) else "")
    if url.scheme not in ("https", "http") or not url.netloc or url.username or url.query or url.fragment:
        raise SystemExit(f"OIDC_ISSUER is {issuer!r}, not the provider's URL (https://HOST, say)")
    return f"{url.scheme}://{url.netloc}"


def totp_encryption_key(app):
    """TOTP_ENCRYPTION_KEY, checked; when it is not set, a key derived from SECRET_KEY.

    HKDF makes, from one secret, keys for separate uses: with its own label
    ("info"), this key is unlike any other made from SECRET_KEY, and tells
    nothing about it.
    """
    key = app.config["TOTP_ENCRYPTION_KEY"]
    if key is None:
        secret = app.config["SECRET_KEY"]
        secret = secret.encode() if isinstance(secret, str) else secret
        hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=b"flask-login-steps: TOTP secrets")
        key = base64.urlsafe_b64encode(hkdf.derive(secret))
    try:
        Fernet(key)
    except (TypeError, ValueError):
        raise SystemExit("TOTP_ENCRYPTION_KEY is not a key such as Fernet.generate_key() makes") from None
    return key
