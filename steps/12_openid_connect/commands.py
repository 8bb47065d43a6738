"""`flask --app steps/12_openid_connect create-user NAME --email ADDRESS`: add a user."""

import click
from sqlalchemy.exc import IntegrityError
from werkzeug.datastructures import MultiDict

from .extensions import db
from .forms import RegistrationForm
from .models import User
from .models import now


@click.command("create-user")
@click.argument("username")
@click.option("--email", required=True, help="The user's email address.")
def create_user(username, email):
    """Add a user to the database, with the same rules as the sign-up form."""
    # Asked for at a hidden prompt, never as an option: a password typed on
    # the command line would stay in the shell's history.
    password = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    fields = {"username": username, "email": email, "password": password, "confirm_password": password}
    # The registration form's checks, without a browser: no CSRF token here.
    form = RegistrationForm(formdata=MultiDict(fields), meta={"csrf": False})
    if not form.validate():
        raise click.ClickException(" ".join(error for errors in form.errors.values() for error in errors))
    # The form's data, not the raw argument: the address in its normal form.
    # Confirmed at once: whoever runs this command vouches for the address.
    user = User(username=username, email=form.email.data, confirmed_at=now())
    user.set_password(password)
    db.session.add(user)
    try:
        db.session.commit()
    except IntegrityError:
        # The form looked first, but someone may have taken the name or the
        # address since: the unique index is what really refuses a double.
        db.session.rollback()
        raise click.ClickException(
            f"The username {username!r} or the address {form.email.data!r} is already taken."
        ) from None
    click.echo(f"Created user {username!r} with id {user.id}.")
