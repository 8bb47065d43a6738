"""Step 06: failed logins limited per username and per address (Flask-Limiter)."""

import secrets
from datetime import timedelta
from pathlib import Path

from flask import Flask
from limits import parse_many
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.retry import Retry

from .extensions import bcrypt
from .extensions import csrf
from .extensions import db
from .extensions import limiter
from .extensions import login_manager


def create_app(test_config=None):
    """Create and configure the app: `flask --app steps/06_rate_limits run`."""
    # Every step keeps its own instance folder: its secret key, from step 03 its database.
    app = Flask(__name__, instance_path=str(Path(__file__).parent / "instance"))
    app.config.from_mapping(
        # The browser sends the session cookie when a link on another site
        # leads here, but not with that site's POST forms, frames or scripts:
        # a first line against CSRF.
        SESSION_COOKIE_SAMESITE="Lax",
        # A login form is a few hundred bytes. Refuse any body over 1 MB with
        # 413 before reading it: Flask would otherwise read it all into memory.
        MAX_CONTENT_LENGTH=1024 * 1024,
        # Without "remember me" the session cookie gets no expiry date, so
        # the browser drops it when it closes. (Flask-Session's default is
        # the opposite.) "Remember me" makes the session permanent instead.
        SESSION_PERMANENT=False,
        # A session unused this long is over, on the server; a remembered
        # one's cookie lasts as long. FLASK_PERMANENT_SESSION_LIFETIME=3 sets
        # it in seconds.
        PERMANENT_SESSION_LIFETIME=timedelta(days=14),
        # However often it is used, a session ends this many seconds after
        # its login, remembered or not (sessions.py): 30 days.
        # FLASK_SESSION_ABSOLUTE_LIFETIME=3 sets it in a test.
        SESSION_ABSOLUTE_LIFETIME=30 * 24 * 60 * 60,
        # Flask would send the cookie, and Flask-Session rewrite the stored
        # session, on every request, only to move the expiry: sessions.py
        # does that only when the expiry has grown stale.
        SESSION_REFRESH_EACH_REQUEST=False,
        # How stored sessions' keys start: one store can serve several apps.
        SESSION_KEY_PREFIX="session:",
        # FLASK_REDIS_URL=redis://HOST:6379/0 keeps sessions in Redis, shared
        # by every server process; with none, they live in the database.
        REDIS_URL=None,
        # A relative SQLite path lands in the instance folder, made on demand.
        SQLALCHEMY_DATABASE_URI="sqlite:///users.sqlite",
        # Each step up doubles the work of checking a password: 12 takes a
        # few hundred milliseconds, slow for a guesser, fine for a login.
        BCRYPT_LOG_ROUNDS=12,
        # Failed logins allowed per username (whatever the address), and per
        # client address (whatever the usernames), before POST /login says
        # 429. Flask-Limiter's notation; a window starts at its first failure.
        LOGIN_LIMIT_PER_USERNAME="5 per 15 minutes",
        LOGIN_LIMIT_PER_ADDRESS="30 per 15 minutes",
        # Sign-ups (and attempts) per address: each one costs a bcrypt hash,
        # and its answer tells whether a name or address is taken.
        REGISTER_LIMIT_PER_ADDRESS="10 per hour",
    )
    # FLASK_SECRET_KEY=... and friends, from the environment.
    app.config.from_prefixed_env()
    if test_config is not None:
        app.config.from_mapping(test_config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = instance_secret_key(app)
    for name in ("LOGIN_LIMIT_PER_USERNAME", "LOGIN_LIMIT_PER_ADDRESS", "REGISTER_LIMIT_PER_ADDRESS"):
        try:
            parse_many(app.config[name])
        except ValueError:
            # Now, in one sentence, rather than as a 500 at the first login.
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

    from . import commands
    from . import models
    from . import sessions
    from . import views

    # First of all the before_request functions, which run in the order they
    # are registered: csrf.init_app and limiter.init_app below add theirs.
    # A 503 page while a store does not answer, not the CSRF check's 400.
    app.before_request(views.stores_answer)
    db.init_app(app)
    bcrypt.init_app(app)
    csrf.init_app(app)
    login_manager.init_app(app)
    limiter.init_app(app)
    # Where login_required sends anonymous visitors, and how it says so.
    login_manager.login_view = "views.login"
    login_manager.login_message = "Please log in to access this page."
    login_manager.login_message_category = "info"

    # Sessions kept on the server (sessions.py), in place of Flask's signed cookie.
    sessions.init_app(app)

    app.register_blueprint(views.bp)
    app.cli.add_command(commands.create_user)
    with app.app_context():
        db.create_all()  # makes the tables (users, sessions) on first start; no-op after
        # Hash the dummy password now, or the first login of an unknown
        # user would take twice as long as any other.
        models.dummy_hash(app.config["BCRYPT_LOG_ROUNDS"])
    return app


def instance_secret_key(app):
    """Return a random key kept in the instance folder, made on first start.

    Whoever knows the key can sign a cookie saying "I am user 1", so it is
    never written in the code. Keeping it in a file means sessions survive a
    restart of the server.
    """
    key_file = Path(app.instance_path) / "secret_key"
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        key_file.write_text(secrets.token_hex(32))
        key_file.chmod(0o600)  # readable by its owner only
    return key_file.read_text()
