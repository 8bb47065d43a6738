"""The extension objects, made once and bound to the app in create_app().

They live in a module of their own so that models and views can import them
without importing the app, which does not exist until create_app() runs.
"""

from flask import request
from flask_bcrypt import Bcrypt
from flask_limiter import Limiter
from flask_login import LoginManager
from flask_mail import Mail
from flask_migrate import Migrate
from flask_sqlalchemy import SQLAlchemy
from flask_wtf.csrf import CSRFProtect
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass


class SafeLoginManager(LoginManager):
    """Flask-Login's LoginManager, ignoring remember cookies it never set.

    Flask-Login 0.6.3 checks a remember cookie's signature with
    hmac.compare_digest, which raises TypeError on non-ASCII text: without
    this, any visitor could turn every page into a server error.
    """

    def _load_user_from_remember_cookie(self, cookie):
        if not cookie.isascii():
            return None  # the cookies we set are "id|hex digest": ASCII only
        return super()._load_user_from_remember_cookie(cookie)


def client_address():
    """The key for limits per client: the address of the socket's other end.

    Never an X-Forwarded-For header: anyone can write one, and a guesser
    would write a new address for every try. Behind a proxy, every client
    has the proxy's address; FLASK_PROXY_COUNT=1 makes ProxyFix put the
    address the proxy saw here (production.py).
    """
    # A prefix keeps every key non-empty (Flask-Limiter skips a limit whose
    # key is "", with only an error in the log), and apart from other limits' keys.
    return f"address:{request.remote_addr or 'unknown'}"


db = SQLAlchemy(model_class=Base)
bcrypt = Bcrypt()
csrf = CSRFProtect()  # every POST must carry the form's hidden csrf_token
# Counts requests per key and answers 429 over a limit. The limits are on
# the views; where the counts live is set in create_app().
limiter = Limiter(
    key_func=client_address,
    # Check every limit of a request, not only up to the first one broken,
    # so that the 429 page can say when the *last* of them lets go.
    fail_on_first_breach=False,
    # Flask-Limiter's default, said here because views.py relies on it: each
    # count is one number in the store, that a request can give back.
    strategy="fixed-window",
)
login_manager = SafeLoginManager()
# Where login_required sends anonymous visitors, and how it says so.
login_manager.login_view = "views.login"
login_manager.login_message = "Please log in to access this page."
login_manager.login_message_category = "info"
# Sends email through the SMTP server of FLASK_MAIL_SERVER (see emails.py).
mail = Mail()
# `flask db ...`: the schema's history, in migrations/ (see schema.py).
migrate = Migrate()
