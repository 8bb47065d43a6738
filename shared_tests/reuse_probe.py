"""Two tests in a row on one step, run by check_tests/test_harness.py; never collected by itself (not test_*.py).

The first leaves what a test can leave behind in its app: a new user, a
username locked by failed logins, a logged-in session in the store. The
second must get the same app (see `reused` in conftest.py), with none of
that left: the `app` fixture's reset. With --fresh-apps it gets a new app.
"""

import pytest

from harness.apps import AuthActions
from harness.apps import CliRunner
from harness.apps import create_user
from harness.apps import session_cookie
from harness.pages import words

LEFT = {}  # what the first test left, for the second to look for
PASSWORD = "a-long-passphrase"


@pytest.mark.features("database", "server-sessions", "rate-limits")
def test_first_leaves_traces(step, app):
    LEFT["app"] = app
    result = create_user(CliRunner(app), step, "carol", PASSWORD)
    assert result.exit_code == 0, result.output
    carol = AuthActions(app.test_client())
    assert carol.login("carol", PASSWORD).status_code == 302
    LEFT["session"] = session_cookie(app, carol.client)
    guesser = AuthActions(app.test_client())
    statuses = [guesser.login("alice", "not her password").status_code for _ in range(20)]
    assert 429 in statuses, statuses


@pytest.mark.features("database", "server-sessions", "rate-limits")
def test_second_finds_none_of_them(step, app, request):
    if request.config.getoption("fresh_apps"):
        assert app is not LEFT["app"]
    else:
        assert app is LEFT["app"], "the app of the test before was not reused"
    # Alice's failed logins counted in the test before: here she has the whole limit again.
    assert AuthActions(app.test_client()).login("alice", "not her password").status_code == 200
    # The session store holds no session of the test before.
    replay = app.test_client()
    replay.set_cookie(app.config["SESSION_COOKIE_NAME"], LEFT["session"])
    assert "carol" not in words(replay.get("/profile", follow_redirects=True).text)
    # carol is gone: she cannot log in, and can be made again.
    assert AuthActions(app.test_client()).login("carol", PASSWORD).status_code == 200
    result = create_user(CliRunner(app), step, "carol", PASSWORD)
    assert result.exit_code == 0, result.output
