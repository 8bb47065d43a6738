"""The database's schema, made and changed by Alembic migrations (Flask-Migrate).

`flask --app steps/10_two_factor db upgrade` applies the migrations in
migrations/versions/; so does every start of the app, when the database is
behind, so that `flask run` still needs no set-up. The `flask db` commands
themselves leave the database as they find it.
"""

import contextlib
import functools
import sys
from pathlib import Path

import click
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import upgrade
from sqlalchemy.exc import SQLAlchemyError

from .extensions import db

try:
    import fcntl
except ImportError:  # Windows, where gunicorn does not run: no workers to keep in line
    fcntl = None

MIGRATIONS = Path(__file__).parent / "migrations"


@functools.cache
def newest_revisions(folder):
    """The revisions no migration follows yet (the "heads"): where an up-to-date database is."""
    return frozenset(ScriptDirectory(folder).get_heads())


def database_revisions():
    """The revisions the database says it is at: none for an empty one, or one made by create_all()."""
    with db.engine.connect() as connection:
        return frozenset(MigrationContext.configure(connection).get_current_heads())


@contextlib.contextmanager
def one_at_a_time(app):
    """Hold a lock file in the instance folder: gunicorn's workers on this machine start together.

    PostgreSQL gets a lock of its own in migrations/env.py, which also holds
    across machines.
    """
    if fcntl is None:
        yield
        return
    path = Path(app.instance_path) / "migrations.lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # waits while another process holds it
        yield


def run_by_flask_db():
    """Whether this process runs a `flask db ...` command, which shows or moves the revision itself.

    An upgrade at start would undo `flask db downgrade` at the next command,
    and `flask db current` would always say "head". Flask makes the app while
    it looks the command up, before click has recorded which one it is: so
    read the command line. The command is its first word that is neither an
    option nor the value of --app or --env-file.
    """
    if click.get_current_context(silent=True) is None:
        return False  # not run by `flask`: gunicorn, or a test calling create_app()
    words = iter(sys.argv[1:])
    for word in words:
        if word in ("-A", "--app", "-e", "--env-file"):
            next(words, None)  # that option's value
        elif not word.startswith("-"):
            return word == "db"
    return False


def upgrade_on_start(app):
    """Apply the migrations the database lacks, if any; one query when there are none.

    Not under `flask db`: there you choose the revision.
    """
    try:
        if run_by_flask_db() or database_revisions() == newest_revisions(str(MIGRATIONS)):
            return
        with one_at_a_time(app):
            # Flask-Migrate's `flask db upgrade`; a process that waited for the
            # lock finds nothing left to do.
            upgrade(directory=str(MIGRATIONS))
    except SQLAlchemyError as error:
        # One sentence for whoever starts the server, not a traceback.
        raise SystemExit(f"Cannot reach the database (FLASK_SQLALCHEMY_DATABASE_URI): {error}") from None
