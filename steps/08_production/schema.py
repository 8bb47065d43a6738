"""The database's schema, made and changed by Alembic migrations (Flask-Migrate).

`flask --app steps/08_production db upgrade` applies the migrations in
migrations/versions/; so does every start of the app, when the database is
behind, so that `flask run` still needs no set-up.
"""

import contextlib
import functools
from pathlib import Path

from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from flask_migrate import upgrade

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


def upgrade_on_start(app):
    """Apply the migrations the database lacks, if any; one query when there are none."""
    if database_revisions() == newest_revisions(str(MIGRATIONS)):
        return
    with one_at_a_time(app):
        # Flask-Migrate's `flask db upgrade`; a process that waited for the
        # lock finds nothing left to do.
        upgrade(directory=str(MIGRATIONS))
