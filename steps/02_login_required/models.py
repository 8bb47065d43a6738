"""Users, kept in memory: no database yet, on purpose."""

from dataclasses import dataclass


@dataclass
class User:
    id: int
    username: str
    # WRONG, on purpose: a real app never keeps the password itself.
    # Step 03 stores a bcrypt hash instead; the docs say why.
    password: str

    def check_password(self, password):
        return password == self.password


# The demo accounts, shown on the login page.
USERS = [
    User(1, "alice", "wonderland"),
    User(2, "bob", "can-we-fix-it"),
]


def get_user(user_id):
    """Return the user with this id, or None."""
    return next((user for user in USERS if user.id == user_id), None)


def find_user(username):
    """Return the user with this username, or None."""
    return next((user for user in USERS if user.username == username), None)
