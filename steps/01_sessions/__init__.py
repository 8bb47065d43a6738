"""Step 01: log in with Flask's signed-cookie session."""

import secrets
from pathlib import Path

from flask import Flask

from . import views


def create_app(test_config=None):
    """Create and configure the app: `flask --app steps/01_sessions run`."""
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
    )
    # FLASK_SECRET_KEY=... and friends, from the environment.
    app.config.from_prefixed_env()
    if test_config is not None:
        app.config.from_mapping(test_config)
    if not app.config.get("SECRET_KEY"):
        app.config["SECRET_KEY"] = instance_secret_key(app)

    app.register_blueprint(views.bp)
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
