"""How Alembic reaches the app's database: run by `flask db ...` and at start-up (schema.py).

Written for this step rather than Flask-Migrate's template, for two reasons:
the template's `fileConfig()` disables every logger that exists already,
the app's own among them; and several servers starting at once must not
all upgrade the database together.
"""

import logging

from alembic import context
from flask import current_app
from sqlalchemy import text

# Alembic says which migration it runs ("Running upgrade  -> 0001") to its
# logger, which has only a NullHandler: print it, unless something (a test
# runner, say) has set up logging already.
log = logging.getLogger("alembic")
if not logging.getLogger().handlers and all(isinstance(h, logging.NullHandler) for h in log.handlers):
    log.addHandler(logging.StreamHandler())
    log.setLevel(logging.INFO)

# Any number, the same in every server: the name of PostgreSQL's lock below.
MIGRATION_LOCK = 8_080_808


def run_migrations_online():
    """Run the migrations on a connection to the app's database."""
    migrate = current_app.extensions["migrate"]
    with migrate.db.engine.connect() as connection:
        context.configure(connection=connection, target_metadata=migrate.db.metadata, **migrate.configure_args)
        with context.begin_transaction():
            if connection.dialect.name == "postgresql":
                # Servers starting together wait here, one at a time, until
                # the first one's transaction ends; the next then finds the
                # schema up to date. (On one machine schema.py's file lock
                # does the same for SQLite, which has no such lock.)
                connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK})
            context.run_migrations()


if context.is_offline_mode():
    # `flask db upgrade --sql`: print the SQL instead of running it.
    migrate = current_app.extensions["migrate"]
    context.configure(url=migrate.db.engine.url, target_metadata=migrate.db.metadata, literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
