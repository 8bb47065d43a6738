"""Step 07: forgot password (an emailed, expiring, single-use link) and change password."""

import secrets
from pathlib import Path

from flask import Flask

from . import commands
from . import config
from . import models
from . import sessions
from . import views
from .extensions import bcrypt
from .extensions import csrf
from .extensions import db
from .extensions import limiter
from .extensions import login_manager
from .extensions import mail


def create_app(test_config=None):
    """Create and configure the app: `flask --app steps/07_password_reset run`."""
    # Every step keeps its own instance folder: its secret key, from step 03 its database.
    app = Flask(__name__, instance_path=str(Path(__file__).parent / "instance"))
    # The defaults, each with its why (config.py).
    app.config.from_object(config)
    # FLASK_SECRET_KEY=... and friends, from the environment.
    app.config.from_prefixed_env()
    if test_config is not None:
        app.config.from_mapping(test_config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = instance_secret_key(app)
    # The limits checked, and where their counts live (config.py).
    config.init_app(app)

    # First of all the before_request functions, which run in the order they
    # are registered: csrf.init_app and limiter.init_app below add theirs.
    # A 503 page while a store does not answer, not the CSRF check's 400.
    app.before_request(views.stores_answer)
    db.init_app(app)
    bcrypt.init_app(app)
    csrf.init_app(app)
    login_manager.init_app(app)
    limiter.init_app(app)
    mail.init_app(app)

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
