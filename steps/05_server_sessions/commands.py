"""`flask --app steps/05_server_sessions create-user NAME --email ADDRESS`: add a user."""

import click
from flask.cli import with_appcontext
from sqlalchemy.exc import IntegrityError
from werkzeug.datastructures import MultiDict

from .extensions import db
from .forms import RegistrationForm
from .models import User


@click.command("create-user")
@click.argument("username")
@click.option("--email", required=True, help="The user's email address.")
@click.password_option(help="Asked for twice, hidden, when not given.")
@with_appcontext
def create_user(username, email, password):
    """Add a user to the database, with the same rules as the sign-up form."""
    fields = {"username": username, "email": email, "password": password, "confirm_password": password}
    # The registration form's checks, without a browser: no CSRF token here.
    form = RegistrationForm(formdata=MultiDict(fields), meta={"csrf": False})
    if not form.validate():
        raise click.ClickException(" ".join(error for errors in form.errors.values() for error in errors))
    user = User(username=username, email=email)
    user.set_password(password)
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:
        # The unique constraint, not a look-up first: two commands at once
        # cannot both pass it.
        db.session.rollback()
        raise click.ClickException(f"The username {username!r} or the address {email!r} is already taken.") from None
    click.echo(f"Created user {username!r} with id {user.id}.")
