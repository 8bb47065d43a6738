"""Figure 2b: where a logged-in /profile spends its time, against the bare twin (pyinstrument, in process).

Run for each step that misses the logged-in target: the phase table and the
profiles (docs/benchmarks/profile_<step>.txt) say what the miss is made of.
"""

import os
import re

from auth import check_twins
from common import ROOT
from common import env_for

from harness.accounts import USERS


def profile_step(tmp, step, out, requests=1000):
    """Both profiles as text in the folder `out`; returns each one's ms per request by phase."""
    from pyinstrument import Profiler

    os.environ.update(env_for(tmp, step))
    import wsgi

    app, bare = wsgi.build(step.name)
    client = app.test_client()
    form = {"username": "alice", "password": USERS["alice"]["password"]}
    body = client.get("/login").get_data(as_text=True)
    if 'name="csrf_token"' in body:
        form["csrf_token"] = re.search(r'name="csrf_token"[^>]*value="([^"]+)"', body).group(1)
    client.post("/login", data=form)
    bare_client = bare.test_client()
    twin = bare_client.get("/profile")
    sent = [header.split("=", 1)[0] for header in twin.headers.getlist("Set-Cookie")]
    check_twins(as_pair(client.get("/profile")), as_pair(twin), sent)
    where = {}
    for name, who in (("logged_in", client), ("bare", bare_client)):
        for _ in range(100):
            who.get("/profile")  # warm up
        with Profiler(interval=0.0002) as profiler:
            for _ in range(requests):
                who.get("/profile")
        where[name] = phases(profiler.last_session.root_frame(), requests)
        suffix = "" if name == "logged_in" else "_bare"
        (out / f"profile_{step.name}{suffix}.txt").write_text(profile_text(profiler))
    return where


# The parts of a request, each found by the outermost call of these functions.
PHASES = {
    "open_session": "open session",  # Flask reads and checks the session cookie
    "load_logged_in_user": "load user",  # steps 01-02, a before_request function
    "_load_user": "load user",  # Flask-Login, on first use of current_user
    "render_template": "render page",
    "save_session": "save session",
    "do_teardown_appcontext": "teardown",  # Flask-SQLAlchemy ends its session here
}
PHASE_NAMES = [*dict.fromkeys(PHASES.values()), "other"]


def phases(root, requests):
    """ms per request spent in each phase of PHASES, and in everything else ("other")."""
    spent = dict.fromkeys(PHASE_NAMES, 0.0)

    def walk(frame):
        phase = PHASES.get(frame.function)
        if phase:
            spent[phase] += frame.time
            return
        for child in frame.children:
            walk(child)

    walk(root)
    spent["other"] = root.time - sum(spent.values())
    spent["total"] = root.time
    return {name: round(seconds * 1000 / requests, 3) for name, seconds in spent.items()}


def as_pair(response):
    """A test client's response as (status, body), as Client.request gives it."""
    return response.status_code, response.get_data()


def profile_text(profiler):
    """The profile as text, with paths relative to the repository (not this machine's)."""
    text = profiler.output_text(show_all=False, color=False, unicode=True)
    return text.replace(f"{ROOT}/", "")
