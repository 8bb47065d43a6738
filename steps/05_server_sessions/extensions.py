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


db = SQLAlchemy(model_class=Base)
bcrypt = Bcrypt()
csrf = CSRFProtect()  # every POST must carry the form's hidden csrf_token
login_manager = LoginManager()
