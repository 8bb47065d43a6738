"""The operator's commands: `flask --app steps/14_account_activity create-user NAME --email ADDRESS`, `roles grant`, `end-sessions`, `prune-events`."""

import click
from sqlalchemy.exc import IntegrityError
from werkzeug.datastructures import MultiDict

from .extensions import db
from .forms import RegistrationForm
from .models import ROLES
from .models import User
from .models import end_sessions
from .models import find_user
from .models import grant_role
from .models import now
from .models import prune_events
from .models import revoke_role


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


def init_app(app):
    """Add the commands to the app's `flask` command."""
    for command in (create_user, roles, end_sessions_command, prune_events_command):
        app.cli.add_command(command)


def existing_user(username):
    """The user of this name (letter case does not count), or the command stops, saying so."""
    user = find_user(username)
    if user is None:
        raise click.ClickException(f"There is no user {username!r}.")
    return user


@click.group()
def roles():
    """Give a role, or take it back: `flask roles grant alice admin`.

    The first admin is made here, by whoever runs the server: no page can
    make one, since only an admin could use it.
    """


@roles.command("grant")
@click.argument("username")
@click.argument("role", type=click.Choice(ROLES))
def grant(username, role):
    """Give USERNAME the role ROLE."""
    user = existing_user(username)
    if grant_role(user, role):
        click.echo(f"{user.username!r} is now {role}.")
    else:
        click.echo(f"{user.username!r} was {role} already.")


@roles.command("revoke")
@click.argument("username")
@click.argument("role", type=click.Choice(ROLES))
def revoke(username, role):
    """Take the role ROLE from USERNAME: at once, on their next page."""
    user = existing_user(username)
    if revoke_role(user, role):
        click.echo(f"{user.username!r} is no longer {role}.")
    else:
        click.echo(f"{user.username!r} was not {role}.")


@click.command("end-sessions")
@click.argument("username", required=False)
@click.option("--all", "everyone", is_flag=True, help="End every session of every user.")
def end_sessions_command(username, everyone):
    """End every session of USERNAME, or with --all of every user: in every browser, at once."""
    if everyone == (username is not None):
        raise click.UsageError("Give a USERNAME, or --all.")
    if everyone:
        click.echo(f"Ended every session of every account ({end_sessions()} in all).")
    else:
        user = existing_user(username)
        end_sessions(user)
        click.echo(f"Ended every session of {user.username!r}.")


@click.command("prune-events")
@click.option("--days", type=click.IntRange(min=0), required=True, help="Keep the events of the last DAYS days.")
def prune_events_command(days):
    """Delete the security events older than --days DAYS: run it daily, from cron or a systemd timer.

    How long to keep them is the site's choice: long enough to look into
    an account taken over (a user may notice weeks later), no longer than
    the privacy policy says. 90 days is a common choice.
    """
    click.echo(f"Deleted {prune_events(days)} security events older than {days} days.")
