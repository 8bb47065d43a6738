"""What a server on the internet needs: settings for a TLS proxy, security headers, a health check, outages.

Nothing here changes how the app works on your machine with `flask run`;
FLASK_PRODUCTION=1 and FLASK_PROXY_COUNT=1 turn on what only a real
deployment can use.
"""

import contextlib
import logging

from flask import Blueprint
from flask import current_app
from flask import request
from redis.exceptions import RedisError
from sqlalchemy import text
from sqlalchemy.exc import InterfaceError
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from werkzeug.middleware.proxy_fix import ProxyFix

from .extensions import db
from .extensions import limiter
from .views import outage_page

bp = Blueprint("production", __name__)

# The browser may load scripts, styles, images and fonts from this site only,
# and none written into the page itself: an attacker who slips a <script>
# into a page gets nothing run. No <object>, no <base> to redirect relative
# links, forms post only here, and no other site may show these pages in a
# frame (clickjacking: a hidden "Log out everywhere" under a fake button).
# form-action: where a form may send the browser, redirects after the POST
# included. This site, and FORM_ACTION_ORIGINS (config.py): the OpenID
# provider, where "Sign in with ..." (a POST here) redirects.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'{origins}; frame-ancestors 'none'"
)

# The errors of a database that does not answer (stopped, restarting,
# unreachable). Redis's have had the 503 page since step 06 (views.py).
OUTAGES = (OperationalError, InterfaceError, PoolTimeout)


def configure(app):
    """Check and apply FLASK_PRODUCTION and FLASK_PROXY_COUNT, before anything uses the config."""
    if app.config["PRODUCTION"]:
        if not app.config.get("SECRET_KEY"):
            # One sentence, no traceback: the key in the instance folder would
            # differ on every server, and be lost with the container.
            raise SystemExit(
                "FLASK_PRODUCTION is set, so FLASK_SECRET_KEY must be set too: "
                "the same long random value on every server."
            )
        app.config.update(
            # Sent over HTTPS only: never readable on a network on the way.
            SESSION_COOKIE_SECURE=True,
            REMEMBER_COOKIE_SECURE=True,
            # The __Host- prefix makes the browser refuse the cookie unless it
            # is Secure, for the whole site (Path=/) and for this host only (no
            # Domain): a neighbouring subdomain cannot plant a session id.
            SESSION_COOKIE_NAME="__Host-session",
            REMEMBER_COOKIE_NAME="__Host-remember_token",
            PREFERRED_URL_SCHEME="https",
        )
    count = app.config["PROXY_COUNT"]
    if type(count) is not int or not 0 <= count <= 5:
        raise SystemExit(f"PROXY_COUNT is {count!r}, not the number of proxies in front of the app (0 or 1, say)")
    if count:
        # Trust the last `count` entries of X-Forwarded-For, -Proto and -Host,
        # which the proxies wrote. Without a proxy, anyone could write them:
        # a new address per guess would dodge the limits, and a forged Host
        # would end up in links. So they are ignored unless told otherwise.
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=count, x_proto=count, x_host=count)


def init_app(app):
    """The headers, the log level, the health check and the outage page for the database."""
    app.register_blueprint(bp)
    app.after_request(security_headers)
    # Logins, logouts, lockouts, resets are INFO lines (views.log_event);
    # Python shows only WARNING and up unless told. Keep a level set elsewhere.
    if app.logger.level == logging.NOTSET:
        app.logger.setLevel(logging.INFO)
    for error in OUTAGES:
        app.register_error_handler(error, storage_unavailable)


def security_headers(response):
    """Headers on every answer: pages, redirects and errors alike."""
    origins = "".join(f" {origin}" for origin in current_app.config["FORM_ACTION_ORIGINS"])
    response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY.format(origins=origins)
    # For browsers too old for frame-ancestors.
    response.headers["X-Frame-Options"] = "DENY"
    # Take the Content-Type as given: never run an upload "sniffed" as a script.
    response.headers["X-Content-Type-Options"] = "nosniff"
    # Other sites learn nothing from the Referer (a reset link's token, say);
    # this site still gets it, and Flask-WTF requires it on HTTPS POSTs.
    response.headers["Referrer-Policy"] = "same-origin"
    if request.endpoint != "static":
        # Every page holds a user's data or a CSRF token for one session: no
        # browser or proxy may keep a copy for the next person at the computer.
        response.headers["Cache-Control"] = "no-store"
    if request.is_secure:
        # Browsers that saw this over HTTPS use only HTTPS here for a year,
        # even for a typed http:// link (over plain HTTP they would ignore it).
        # No includeSubDomains: it would bind every other site under this
        # host name to HTTPS too, which only the domain's owner can promise.
        response.headers["Strict-Transport-Security"] = "max-age=31536000"
    return response


@bp.route("/healthz")
def healthz():
    """For the load balancer: 200 "ok" when the database (and Redis, when used) answer, else 503."""
    down = []
    try:
        db.session.execute(text("SELECT 1"))
    except SQLAlchemyError:
        db.session.rollback()
        down.append("database")
    store = getattr(current_app.session_interface, "client", None)
    if hasattr(store, "ping"):  # sessions in Redis (in the database, the client is `db`)
        try:
            store.ping()
        except RedisError:
            down.append("redis")
    elif not limiter.storage.check():  # counts in Redis without sessions there
        down.append("rate-limit store")
    if down:
        return f"unavailable: {', '.join(down)}\n", 503, {"Content-Type": "text/plain"}
    return "ok\n", 200, {"Content-Type": "text/plain"}


def storage_unavailable(error):
    """The database failed during a view: the outage page, not a 500."""
    current_app.logger.error("storage unavailable: %s", error.__class__.__name__)
    with contextlib.suppress(SQLAlchemyError):
        db.session.rollback()
    return outage_page(), 503, {"Retry-After": "30"}
