"""Account activity: the security events of an account (models.EVENTS), in plain words, for its owner and for admins.

views.log_event records them as it logs them; this module shows them.
"""

import time
from datetime import UTC

from flask import Blueprint
from flask import abort
from flask import render_template
from flask_login import current_user
from flask_login import login_required

from .admin import role_required
from .extensions import db
from .models import EVENTS
from .models import User
from .models import events_of

bp = Blueprint("activity", __name__)

# What a User-Agent header says, found by the first word that names it.
# Order matters: Edge's names Chrome and Safari too, Chrome's names Safari,
# Android's names Linux, and an iPhone's names Mac OS X.
BROWSERS = [("Edg/", "Edge"), ("OPR/", "Opera"), ("Firefox/", "Firefox"), ("Chrome/", "Chrome")]
BROWSERS += [("Safari/", "Safari"), ("curl/", "curl")]
SYSTEMS = [("Android", "Android"), ("iPhone", "iOS"), ("iPad", "iOS"), ("Windows", "Windows")]
SYSTEMS += [("Mac OS X", "macOS"), ("Linux", "Linux")]


def device_name(user_agent):
    """ "Firefox on Linux", from a User-Agent header; "an unknown browser" when it names none we know.

    A header is whatever the client sends: this says what it claims, which
    is enough for alice to tell her phone from a stranger's laptop.
    """
    browser = next((name for word, name in BROWSERS if word in user_agent), None)
    system = next((name for word, name in SYSTEMS if word in user_agent), None)
    if browser is None:
        return "an unknown browser"
    return f"{browser} on {system}" if system else browser


def ago(when):
    """How long ago `when` (time.time()'s seconds) was, in words: "just now", "5 minutes ago", "2 days ago"."""
    seconds = max(0, int(time.time() - when))
    for size, unit in ((86400, "day"), (3600, "hour"), (60, "minute")):
        if seconds >= size:
            count = seconds // size
            return f"{count} {unit}{'' if count == 1 else 's'} ago"
    return "just now"


def shown(event):
    """One event in plain words: "Signed in from 203.0.113.7, Firefox on Linux, 2 hours ago"."""
    what = EVENTS.get(event.kind, event.kind)
    by = f" ({db.session.get(User, event.admin_id).username})" if event.admin_id is not None else ""
    # SQLite hands the time back without its time zone; it was stored in UTC (models.now).
    when = event.created_at if event.created_at.tzinfo else event.created_at.replace(tzinfo=UTC)
    return f"{what}{by} from {event.address}, {device_name(event.user_agent)}, {ago(when.timestamp())}"


@bp.app_template_filter("device_name")
def device_name_filter(user_agent):
    return device_name(user_agent)


@bp.app_template_filter("ago")
def ago_filter(when):
    return ago(when)


@bp.route("/account/activity")
@login_required
def mine():
    """The last 50 security events of the logged-in user's account."""
    return render_template("activity.html", user=current_user, events=[shown(e) for e in events_of(current_user)])


@bp.route("/admin/users/<int(max=2147483647):user_id>/activity")
@role_required("admin")
def of_user(user_id):
    """An admin's view of any account's last 50 events."""
    user = db.session.get(User, user_id)
    if user is None:
        abort(404)
    return render_template("activity.html", user=user, events=[shown(e) for e in events_of(user)])
