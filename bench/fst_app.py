"""What a user might pick instead of the course: a minimal Flask-Security-Too app, for the bench.

Flask-Security-Too's SQLAlchemy datastore with its own model mixins
(fsqla_v3, as in its quick start), SQLite, its login view, and one page,
`/profile`, behind `auth_required()`, showing the user. The page is laid out
like the steps' profile.html (a header with the user and a logout form with
its CSRF token, flashed messages, the user's details), so that both sides
render about the same template.

Settings from the environment, as the steps take theirs: FLASK_SECRET_KEY,
FLASK_SQLALCHEMY_DATABASE_URI, and FLASK_REDIS_URL to keep the sessions in
Redis with Flask-Session (otherwise Flask's signed cookie). Served by
gunicorn as `fst_app:create_app()` (bench/fst.py); the users are made
beforehand with `add_users()`.
"""

from flask import Flask
from flask import render_template
from flask_security import Security
from flask_security import SQLAlchemyUserDatastore
from flask_security import auth_required
from flask_security import hash_password
from flask_security.models import fsqla_v3 as fsqla
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import generate_csrf
from jinja2 import DictLoader

from harness.accounts import USERS

db = SQLAlchemy()
fsqla.FsModels.set_db_info(db)


class Role(db.Model, fsqla.FsRoleMixin):
    pass


class User(db.Model, fsqla.FsUserMixin):
    pass


# Where the webauthn package is installed (the bench has step 11's), fsqla_v3's
# User refers to a WebAuthn model, which its quick start then defines too.
class WebAuthn(db.Model, fsqla.FsWebAuthnMixin):
    pass


PROFILE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Profile · Flask-Security-Too</title></head>
<body>
  <header>
    <p><a href="{{ url_for('index') }}">Flask-Security-Too</a></p>
    <nav>
      <a href="{{ url_for('profile') }}">{{ current_user.email }}</a>
      <form method="post" action="{{ url_for_security('logout') }}">
        <input type="hidden" name="csrf_token" value="{{ csrf_token }}">
        <button type="submit">Log out</button>
      </form>
    </nav>
  </header>
  <main>
    {% for category, message in get_flashed_messages(with_categories=true) %}
      <p class="flash-{{ category }}" role="status">{{ message }}</p>
    {% endfor %}
    <h1>Profile</h1>
    <dl>
      <dt>Email</dt><dd>{{ current_user.email }}</dd>
      <dt>User id</dt><dd>{{ current_user.id }}</dd>
    </dl>
  </main>
</body>
</html>
"""


def create_app():
    app = Flask(__name__)
    # The page's template, compiled once and cached as a file's would be;
    # Flask-Security-Too's own templates come from its blueprint.
    app.jinja_loader = DictLoader({"profile.html": PROFILE})
    app.config.from_mapping(
        # Flask-Security-Too's default is argon2, which needs argon2-cffi;
        # the steps hash with bcrypt. Only the login hashes: not timed here.
        SECURITY_PASSWORD_HASH="bcrypt",
        SECURITY_PASSWORD_SALT="bench-only-not-secret",
        REDIS_URL=None,
    )
    app.config.from_prefixed_env()
    if app.config["REDIS_URL"]:
        import redis
        from flask_session import Session

        # Flask-Session's Redis store, with its defaults otherwise.
        app.config.update(SESSION_TYPE="redis", SESSION_REDIS=redis.Redis.from_url(app.config["REDIS_URL"]))
        Session(app)
    db.init_app(app)
    Security(app, SQLAlchemyUserDatastore(db, User, Role))

    @app.route("/")
    def index():
        return "Flask-Security-Too, for the bench"

    @app.route("/profile")
    @auth_required()
    def profile():
        return render_template("profile.html", csrf_token=generate_csrf())

    return app


def add_users(app):
    """The tables, and alice and bob (the harness's accounts), logging in with their email address."""
    with app.app_context():
        db.create_all()
        datastore = app.extensions["security"].datastore
        for account in USERS.values():
            datastore.create_user(email=account["email"], password=hash_password(account["password"]))
        db.session.commit()
        db.engine.dispose()
