"""Step 03: Flask-Login, with users in a database and forms with CSRF tokens."""

import secrets
from pathlib import Path

from flask import Flask

from . import commands
from . import models
from . import views
from .extensions import bcrypt
from .extensions import csrf
from .extensions import db
from .extensions import login_manager


def create_app(test_config=None):
    """Create and configure the app: `flask --app steps/03_flask_login run`."""
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
        # Flask-Login's "remember me" cookie gets the same care as the session.
        REMEMBER_COOKIE_HTTPONLY=True,
        REMEMBER_COOKIE_SAMESITE="Lax",
        # A relative SQLite path lands in the instance folder, made on demand.
        SQLALCHEMY_DATABASE_URI="sqlite:///users.sqlite",
        # Each step up doubles the work of checking a password: 12 takes a
        # few hundred milliseconds, slow for a guesser, fine for a login.
        BCRYPT_LOG_ROUNDS=12,
    )
    # FLASK_SECRET_KEY=... and friends, from the environment.
    app.config.from_prefixed_env()
    if test_config is not None:
        app.config.from_mapping(test_config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = instance_secret_key(app)

    db.init_app(app)
    bcrypt.init_app(app)
    csrf.init_app(app)
    login_manager.init_app(app)

    app.register_blueprint(views.bp)
    app.cli.add_command(commands.create_user)
    with app.app_context():
        db.create_all()  # makes the tables on first start; no-op after
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
