"""The extension objects, made once and bound to the app in create_app().

They live in a module of their own so that models and views can import them
without importing the app, which does not exist until create_app() runs.
"""

from flask_bcrypt import Bcrypt
from flask_login import LoginManager
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


db = SQLAlchemy(model_class=Base)
bcrypt = Bcrypt()
csrf = CSRFProtect()  # every POST must carry the form's hidden csrf_token
login_manager = SafeLoginManager()
# Where login_required sends anonymous visitors, and how it says so.
login_manager.login_view = "views.login"
login_manager.login_message = "Please log in to access this page."
login_manager.login_message_category = "info"
