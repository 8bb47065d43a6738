"""`flask --app steps/03_flask_login create-user NAME`: add a user."""

import click
from sqlalchemy.exc import IntegrityError

from .extensions import db
from .models import User


@click.command("create-user")
@click.argument("username")
def create_user(username):
    """Add a user to the database."""
    # Asked for at a hidden prompt, never as an option: a password typed on
    # the command line would stay in the shell's history.
    password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    user = User(username=username)
    try:
        user.set_password(password)
    except ValueError:
        raise click.ClickException(
            "That password is too long: at most 72 bytes (accents and emoji count double or more)."
        ) from None
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:
        # The unique constraint, not a look-up first: two commands at once
        # cannot both pass it.
        db.session.rollback()
        raise click.ClickException(f"The username {username!r} is already taken.") from None
    click.echo(f"Created user {username!r} with id {user.id}.")
