"""Sessions kept on the server, with Flask-Session: the cookie holds only a random id.

Until step 04 the whole session travelled in a signed cookie, and a signed
cookie cannot be taken back: a copy stays valid until it expires or the
secret key changes. Here the cookie is just a name for a record on the
server, so deleting the record ends the session, whoever holds a copy.

The record lives in the step's own database by default (a `sessions` table),
or in Redis when FLASK_REDIS_URL is set, so that several server processes
share it.

Each store also keeps, per user, an index of that user's logged-in
sessions (step 14): the list on /account/sessions, from which one can be
ended. A store has no way to find a user's sessions by itself: each is a
record under a random id, and what it holds is serialised.
"""

import hashlib
import json
import re
import secrets
import time
from dataclasses import asdict
from dataclasses import dataclass
from datetime import UTC
from datetime import datetime
from datetime import timedelta

from flask import current_app
from flask import request
from flask_session.base import ServerSideSessionInterface
from flask_session.redis import RedisSessionInterface
from flask_session.sqlalchemy import SqlAlchemySessionInterface
from redis import Redis
from redis.backoff import NoBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError
from redis.retry import Retry
from sqlalchemy import DateTime
from sqlalchemy import Float
from sqlalchemy import ForeignKey
from sqlalchemy import LargeBinary
from sqlalchemy import String
from sqlalchemy import delete
from sqlalchemy import select
from sqlalchemy import update
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Mapped
from sqlalchemy.orm import mapped_column

from .extensions import db
from .models import printable
from .views import outage_page

# What secrets.token_urlsafe() makes, and no longer: anything else in the
# cookie was not issued here, and is not worth a look-up in the store.
SESSION_ID = re.compile(r"[A-Za-z0-9_-]{16,128}\Z")

# How stale a stored expiry may get before a request moves it: a tenth of
# the lifetime. See SlidingExpiry.save_session for why not on every request.
REFRESH_AFTER = 0.1

# Kept inside each stored session: when it was last written.
SAVED_AT = "_saved_at"

# Where Flask-Login's login_user() keeps the user's id in the session.
LOGIN = "_user_id"

# Kept inside a logged-in session: when the login happened.
LOGGED_IN_AT = "_logged_in_at"

# Kept inside a logged-in session: when its "last seen" in the index was last
# written. Written again at most every SEEN_EVERY seconds: "last seen" is
# to the minute, and costs no write on most requests.
SEEN_AT = "_seen_at"
SEEN_EVERY = 60


class StoredSession(db.Model):
    """One session in the database: the columns Flask-Session's SQLAlchemy store uses.

    Defined here, once, rather than by Flask-Session: its store defines the
    table on `db` every time an app is made, and SQLAlchemy refuses a second
    definition, so a second create_app() in one process (every test makes
    one) would fail.
    """

    __tablename__ = "sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    # The cookie's id with a prefix ("session:..."): the key the store looks up.
    session_id: Mapped[str] = mapped_column(String(255), unique=True)
    data: Mapped[bytes | None] = mapped_column(LargeBinary)  # the session's dict, serialised
    expiry: Mapped[datetime | None] = mapped_column(DateTime)  # past this, the record is worthless


class DeviceSession(db.Model):
    """One logged-in session in the index of its user's sessions, for the database store.

    Its `session_id` names the session as the store does; a row outlives
    its session only until the list is next read (SlidingExpiry.devices).
    """

    __tablename__ = "device_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("user.id"), index=True)
    session_id: Mapped[str] = mapped_column(String(255), unique=True)
    # The user's session version at login: after "log out everywhere" (or a
    # new password, or an admin) the row names a version that loads nobody.
    version: Mapped[int] = mapped_column()
    created_at: Mapped[float] = mapped_column(Float)  # time.time() at login
    last_seen_at: Mapped[float] = mapped_column(Float)
    address: Mapped[str] = mapped_column(String(45))
    user_agent: Mapped[str] = mapped_column(String(200))


@dataclass
class Device:
    """One live session of a user, as the sessions page shows it."""

    sid: str
    version: int
    created_at: float
    last_seen_at: float
    address: str
    user_agent: str

    @property
    def public_id(self):
        """What names it in a URL: a digest, never the id itself, which would log in whoever sees it."""
        return hashlib.sha256(self.sid.encode()).hexdigest()[:32]


# Flask-Session's private parts, all of them, here and nowhere else ----------
#
# Flask-Session 0.8 has no public way to do what these do. Everything else
# in the step uses its public interface; if a release renames one of these
# underscored methods, the session tests fail.


class StoreHooks:
    """The two things this course needs from inside Flask-Session's stores.

    SlidingExpiry builds on this class, and only it calls these methods.
    """

    def forget(self, sid):
        """Delete the session stored under this id, now.

        Flask-Session deletes a stored session only in save_session (when the
        session was emptied) and in regenerate() (which skips an empty one).
        A public way was proposed, and never merged:
        https://github.com/pallets-eco/flask-session/pull/27
        """
        self._delete_session(self._get_store_id(sid))

    def store_key(self, sid):
        """The key the store keeps the session under (the prefix, then the id), as Flask-Session makes it."""
        return self._get_store_id(sid)

    def _upsert_session(self, session_lifetime, session, store_id):
        # Flask-Session stores every session for PERMANENT_SESSION_LIFETIME
        # (session_lifetime); this private hook of its stores is the one
        # place to choose another. Every visit stores a session, known since
        # https://github.com/pallets-eco/flask-session/issues/19; if a
        # release renames the hook, the lifetime tests fail.
        super()._upsert_session(self.stored_lifetime(self.app, session), session, store_id)


class SingleTryDatabaseStore(SqlAlchemySessionInterface):
    """Flask-Session's database store, each query tried once.

    Flask-Session tries each query three times, sleeping 0.3 then 0.6 s and
    logging a traceback each time: while the database is away, every page
    would wait a second for its 503. Here each query runs once: the function
    under its retry decorator, which functools.wraps keeps as __wrapped__.
    pool_pre_ping already replaces dead connections. Flask-Session has no
    setting for the retries, and no issue asks for one (none found; the
    logged retries show in
    https://github.com/pallets-eco/flask-session/issues/251).
    A class of its own, under StoreHooks: on DatabaseSessions itself, this
    _upsert_session would hide StoreHooks', and every session would be
    stored for the full lifetime.
    """

    _retrieve_session_data = SqlAlchemySessionInterface._retrieve_session_data.__wrapped__
    _delete_session = SqlAlchemySessionInterface._delete_session.__wrapped__
    _upsert_session = SqlAlchemySessionInterface._upsert_session.__wrapped__


# End of Flask-Session's private parts ---------------------------------------


class SlidingExpiry(StoreHooks):
    """What this course adds to Flask-Session's stores (a mix-in for each of them).

    - A cookie that is not an id we could have made never reaches the store.
    - Ending a session (regenerate) works on an empty one too.
    - The expiry moves forward as the session is used, without a write on
      every request.
    - A session without a login is kept for an hour at most.
    - A login's session ends SESSION_ABSOLUTE_LIFETIME after the login,
      however often it is used.
    """

    def open_session(self, app, request):
        cookie = request.cookies.get(app.config["SESSION_COOKIE_NAME"])
        if cookie is not None and not SESSION_ID.match(cookie):
            # Garbage, huge, non-ASCII: nobody issued this. A new, empty session.
            return self.session_class(sid=self.new_sid(), permanent=self.permanent)
        try:
            session = super().open_session(app, request)
        except (RedisError, SQLAlchemyError) as error:
            # The store does not answer. This runs before Flask's error
            # handlers can catch anything: hand over an empty session marked
            # so, and views.stores_answer() answers 503 before any view runs.
            app.logger.error("session store unavailable: %s", error.__class__.__name__)
            session = self.session_class(sid=self.new_sid(), permanent=self.permanent)
            session.unavailable = True
            return session
        # Not part of what views see. dict.pop: taking it out is no change to save.
        session.saved_at = dict.pop(session, SAVED_AT, None)
        logged_in_at = dict.get(session, LOGGED_IN_AT)
        if logged_in_at is not None and time.time() - logged_in_at > app.config["SESSION_ABSOLUTE_LIFETIME"]:
            # Used or not, this login is too old: over, on the server too.
            # Whoever holds the cookie, or a copy, must log in again.
            self.forget(session.sid)
            return self.session_class(sid=self.new_sid(), permanent=self.permanent)
        return session

    def regenerate(self, session):
        """Give the session a new id and delete the old one from the store.

        Flask-Session's own regenerate() does nothing to an empty session; a
        session emptied at logout would then keep its old id alive. The views
        call this right after every login: a session that holds one now
        notes the time, from which its absolute lifetime counts.
        """
        self.forget(session.sid)
        session.sid = self.new_sid()
        if LOGIN in session:
            session[LOGGED_IN_AT] = session[SEEN_AT] = time.time()
            # Into the user's list of sessions, under its new id. (The old
            # id's entry, if any, names a session that is gone now, and goes
            # at the list's next reading.)
            user_id, _, version = session[LOGIN].partition(":")
            device = Device(
                sid=session.sid,
                version=int(version),
                created_at=session[LOGGED_IN_AT],
                last_seen_at=session[LOGGED_IN_AT],
                # What the client sent, without the characters no column should hold.
                address=printable(request.remote_addr or "unknown", 45),
                user_agent=printable(request.headers.get("User-Agent", ""), 200),
            )
            # The ended entries of the user go first, so the index does not grow with every login.
            self.live_devices(int(user_id), int(version))
            self.index_add(int(user_id), device)
        session.modified = True

    def save_session(self, app, session, response):
        """Write the session when it changed, or when its expiry is getting stale.

        Flask-Session would rewrite every session on every request, only to
        move its expiry (SESSION_REFRESH_EACH_REQUEST): a database write per
        page view, which costs more than the rest of the page. Instead, an
        unchanged session is written again only once a tenth of its lifetime
        has passed since it was last written. The price: a session may end up
        to a tenth of the lifetime early, never late.
        """
        if getattr(session, "unavailable", False):
            return  # nothing to save, and nowhere to save it
        seen_at = dict.get(session, SEEN_AT)
        if LOGIN in session and isinstance(seen_at, float) and time.time() - seen_at > SEEN_EVERY:
            try:
                self.index_seen(int(session[LOGIN].partition(":")[0]), session.sid, time.time())
            except (RedisError, SQLAlchemyError) as error:
                app.logger.error("session store unavailable: %s", error.__class__.__name__)
            else:
                session[SEEN_AT] = time.time()
        if session:
            lifetime = self.stored_lifetime(app, session).total_seconds()
            saved_at = getattr(session, "saved_at", None)
            now = time.time()
            if session.modified or saved_at is None or now - saved_at > lifetime * REFRESH_AFTER:
                # modified: the store is written with a new expiry, and a
                # remembered session's cookie is sent again with a new date.
                dict.__setitem__(session, SAVED_AT, now)
                session.modified = True
        try:
            super().save_session(app, session, response)
        except (RedisError, SQLAlchemyError) as error:
            # The store went away during this request. Flask's error handlers
            # are behind us, so the answer itself becomes the 503 page: not a
            # "logged in" redirect for a login that was never stored.
            app.logger.error("session store unavailable: %s", error.__class__.__name__)
            response.status_code = 503
            response.set_data(outage_page())
            response.mimetype = "text/html"
            response.headers.pop("Location", None)
            response.headers["Retry-After"] = "30"

    def stored_lifetime(self, app, session):
        """How long the store keeps this session after its last write.

        A login keeps PERMANENT_SESSION_LIFETIME. Every other visitor gets a
        session too, for the login form's CSRF token (or a flashed message),
        and bots and crawlers are many: such a session is kept only as long
        as its token is good for, WTF_CSRF_TIME_LIMIT (Flask-WTF's default:
        an hour). Logging in gives the session a new id, stored for the full
        lifetime.
        """
        lifetime = app.permanent_session_lifetime
        token_life = app.config["WTF_CSRF_TIME_LIMIT"]  # None: a token lasts as long as its session
        if LOGIN in session or token_life is None:
            return lifetime
        return min(lifetime, timedelta(seconds=token_life))

    def new_sid(self):
        """A new random session id, made as Flask-Session makes its own: SESSION_ID_LENGTH random bytes."""
        return secrets.token_urlsafe(self.sid_length)

    def devices(self, user):
        """The user's live sessions, oldest first (Device)."""
        return self.live_devices(user.id, user.session_version)

    def live_devices(self, user_id, version):
        """What the index holds for the user, less what has ended meanwhile, oldest first.

        Ended: gone from the store (logged out, expired, moved to a new id
        at login, ended from the list), of an older session version than
        `version` (log out everywhere, a new password, an admin), or older
        than SESSION_ABSOLUTE_LIFETIME. Those entries are dropped from the
        index now, so the list is true however its sessions ended.
        """
        oldest = time.time() - current_app.config["SESSION_ABSOLUTE_LIFETIME"]
        devices = self.index_entries(user_id)
        alive = self.alive([device.sid for device in devices])
        live = [d for d in devices if d.sid in alive and d.version == version and d.created_at > oldest]
        kept = {device.sid for device in live}
        ended = [device.sid for device in devices if device.sid not in kept]
        if ended:
            self.index_drop(user_id, ended)
        return sorted(live, key=lambda device: device.created_at)

    def end_device(self, user, device):
        """End one of the user's sessions, now, whoever holds its cookie."""
        self.forget(device.sid)
        self.index_drop(user.id, [device.sid])


class DatabaseSessions(SlidingExpiry, SingleTryDatabaseStore):
    """Sessions in the app's own database (the default).

    A database deletes nothing by itself: an expired row stays until its id
    comes back, or until Flask-Session's command `flask session_cleanup`
    (which its store adds to the app) deletes every expired row. Run it
    every hour, from cron or a systemd timer: see the step's page.
    """

    def __init__(self, app, **options):
        # Skips SqlAlchemySessionInterface.__init__, which would define its
        # table again (see StoredSession); this is all it sets up besides.
        self.client = db
        self.sql_session_model = StoredSession
        ServerSideSessionInterface.__init__(self, app, **options)

    # The index of each user's sessions: a table, device_sessions.

    def index_add(self, user_id, device):
        details = asdict(device)
        db.session.add(DeviceSession(user_id=user_id, session_id=details.pop("sid"), **details))
        db.session.commit()

    def index_seen(self, user_id, sid, when):
        db.session.execute(update(DeviceSession).where(DeviceSession.session_id == sid).values(last_seen_at=when))
        db.session.commit()

    def index_entries(self, user_id):
        rows = db.session.scalars(select(DeviceSession).where(DeviceSession.user_id == user_id)).all()
        fields = ("version", "created_at", "last_seen_at", "address", "user_agent")
        return [Device(sid=row.session_id, **{name: getattr(row, name) for name in fields}) for row in rows]

    def index_drop(self, user_id, sids):
        db.session.execute(delete(DeviceSession).where(DeviceSession.session_id.in_(sids)))
        db.session.commit()

    def alive(self, sids):
        """Which of these sessions the store still holds, unexpired (Flask-Session's expiry is naive UTC)."""
        keys = {self.store_key(sid): sid for sid in sids}
        now = datetime.now(UTC).replace(tzinfo=None)
        found = select(StoredSession.session_id).where(StoredSession.session_id.in_(keys), StoredSession.expiry > now)
        return {keys[key] for key in db.session.scalars(found)}


class RedisSessions(SlidingExpiry, RedisSessionInterface):
    """Sessions in Redis, shared by every process that uses the same Redis.

    Redis deletes each one by itself when its expiry passes.
    """

    # The index of each user's sessions: one Redis hash per user, a field per session.

    def index_key(self, user_id):
        return f"{self.key_prefix}devices:{user_id}"

    def index_add(self, user_id, device):
        key = self.index_key(user_id)
        entry = asdict(device)
        del entry["sid"]  # the field's name
        # The hash lives as long as a session can: with no login for that long, it goes by itself.
        lifetime = int(current_app.config["SESSION_ABSOLUTE_LIFETIME"])
        self.client.pipeline().hset(key, device.sid, json.dumps(entry)).expire(key, lifetime).execute()

    def index_seen(self, user_id, sid, when):
        key = self.index_key(user_id)
        entry = self.client.hget(key, sid)
        if entry is not None:
            self.client.hset(key, sid, json.dumps(json.loads(entry) | {"last_seen_at": when}))

    def index_entries(self, user_id):
        entries = self.client.hgetall(self.index_key(user_id))
        return [Device(**json.loads(entry) | {"sid": sid.decode()}) for sid, entry in entries.items()]

    def index_drop(self, user_id, sids):
        self.client.hdel(self.index_key(user_id), *sids)

    def alive(self, sids):
        """Which of these sessions Redis still holds (it deletes expired ones by itself)."""
        pipeline = self.client.pipeline()
        for sid in sids:
            pipeline.exists(self.store_key(sid))
        return {sid for sid, found in zip(sids, pipeline.execute(), strict=True) if found}


def init_app(app):
    """Keep the app's sessions on the server: in Redis if FLASK_REDIS_URL is set, else in its database."""
    options = {
        "key_prefix": app.config["SESSION_KEY_PREFIX"],
        "permanent": app.config["SESSION_PERMANENT"],
    }
    url = app.config.get("REDIS_URL")
    if url:
        # A Redis that does not answer (stopped, or stuck: it takes the
        # connection and never replies): each call gives up after a second
        # (not redis-py's 5 s), and is sent once more, at once, on a new
        # connection only if its own broke during the call (Redis restarting,
        # say). A timeout is not tried again: a stuck Redis would cost twice.
        once_more = Retry(NoBackoff(), 1, supported_errors=(RedisConnectionError,))
        client = Redis.from_url(url, socket_connect_timeout=1, socket_timeout=1, retry=once_more)
        try:
            client.ping()
        except RedisError as error:
            # One sentence instead of a traceback on every page.
            raise SystemExit(f"Cannot reach Redis at {url} (FLASK_REDIS_URL): {error}") from None
        app.session_interface = RedisSessions(app, client=client, **options)
    else:
        app.session_interface = DatabaseSessions(app, **options)
