"""Users, kept in the database with a bcrypt hash of their password."""

import functools
import secrets

from flask import current_app
from flask_login import UserMixin
from sqlalchemy import String
from sqlalchemy import func
from sqlalchemy import select
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
    password_hash: Mapped[str] = mapped_column(String(60))
    # Goes up by one at "log out everywhere": every session made before
    # holds the old number (see get_id), and so loads nobody any more.
    session_version: Mapped[int] = mapped_column(default=0)

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

    def set_password(self, password):
        # A new random salt each time: two users with one password get two
        # different hashes. Raises ValueError past 72 bytes (bcrypt's limit).
        self.password_hash = bcrypt.generate_password_hash(password).decode()

    def check_password(self, password):
        return check_password(self.password_hash, password)


def check_password(password_hash, password):
    """True if `password` matches the hash; False, never an error, otherwise."""
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
