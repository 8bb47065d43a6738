"""Your devices: every live session of the logged-in user, in either store, each of which can be ended on its own.

The index behind the list is the session store's own (sessions.py):
a table beside the sessions in the database, a hash per user in Redis.
"""

from flask import Blueprint
from flask import abort
from flask import current_app
from flask import flash
from flask import redirect
from flask import render_template
from flask import session
from flask import url_for
from flask_login import current_user
from flask_login import fresh_login_required
from flask_login import login_required

from .views import end_session
from .views import log_event

bp = Blueprint("devices", __name__)


def live_sessions():
    """The logged-in user's live sessions, oldest first (sessions.Device)."""
    return current_app.session_interface.devices(current_user)


@bp.route("/account/sessions")
@login_required
def sessions():
    """Every live session of the account: when it logged in, when it was last seen, from where; this browser marked."""
    return render_template("account_sessions.html", devices=live_sessions(), this=session.sid)


# A digest of the session id names it (sessions.Device.public_id), 32 hex digits.
@bp.route("/account/sessions/<string(length=32):public_id>/end", methods=("POST",))
@login_required
# Ending a session is an account change: a fresh login, as for an admin action (admin.py).
@fresh_login_required
def end(public_id):
    """End one session of the account, now; the others go on."""
    device = next((device for device in live_sessions() if device.public_id == public_id), None)
    if device is None:
        abort(404)  # ended already, or another user's
    if device.sid == session.sid:
        log_event("logout", current_user)
        end_session()
        flash("You have been logged out.", "info")
        return redirect(url_for("views.login"))
    current_app.session_interface.end_device(current_user, device)
    log_event("session ended from the sessions page", current_user)
    flash("That session has ended: whoever used it must log in again.", "success")
    return redirect(url_for(".sessions"))
