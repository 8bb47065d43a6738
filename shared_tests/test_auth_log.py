"""Authentication events on the app's log (step 08): one line each, who and from where, no secret.

The log is read as the operator's log handler would see it, through
pytest's caplog, at the levels the app itself sets: no test changes them.
"""

import pytest

from harness.accounts import USERS
from harness.apps import AuthActions
from harness.apps import add_users
from harness.apps import close_database
from harness.smtp import links
from harness.smtp import smtp_server

CLIENT = "198.51.100.7"
PROXY = "127.0.0.1"
NEW_PASSWORD = "a-brand-new-passphrase"
WRONG = "not the password"


def reset_path(inbox, already):
    """The path of the reset link in the first email after `already` that holds one."""
    for message in inbox.wait_for(already + 1)[already:]:
        for link in links(message):
            if "/reset-password/" in link:
                return "/" + link.split("/", 3)[3]
    raise AssertionError("no reset link arrived")


@pytest.mark.contract(
    "Every authentication event (login, failed login, lockout, logout, log out everywhere, reset requested and "
    "completed, password changed) is one line on the app's logger naming the user and the client address, "
    "never a password, token or session id"
)
@pytest.mark.features(
    "auth-log", "login", "logout", "logout-everywhere", "rate-limits", "password-reset", "change-password"
)
@pytest.mark.parametrize("behind_proxy", [False, True], ids=["direct", "behind-proxy"])
@pytest.mark.asvs("16.2.1", "16.2.5", "16.3.1", "16.3.3", "16.4.1")
def test_authentication_events_are_logged(step, create_app, test_config, monkeypatch, caplog, behind_proxy):
    if behind_proxy:
        monkeypatch.setenv("FLASK_PROXY_COUNT", "1")
    else:
        monkeypatch.delenv("FLASK_PROXY_COUNT", raising=False)
    with smtp_server() as inbox:
        config = test_config | inbox.config() | {"MAIL_SUPPRESS_SEND": False}
        app = create_app(config | {"LOGIN_LIMIT_PER_USERNAME": "3 per 15 minutes"})
        add_users(app, step)
        try:
            client = app.test_client()
            # Behind the proxy the socket's address is the proxy's; the client's is in its header.
            client.environ_base["REMOTE_ADDR"] = PROXY if behind_proxy else CLIENT
            if behind_proxy:
                client.environ_base["HTTP_X_FORWARDED_FOR"] = CLIENT
            auth = AuthActions(client)
            cookie = app.config["SESSION_COOKIE_NAME"]
            secrets = {USERS["alice"]["password"], NEW_PASSWORD, WRONG}
            lines = {}

            def event(name, action, status):
                """Do `action`: its answer has `status`, and one line on the app's log is about it."""
                before = len(caplog.records)
                assert action().status_code in status, name
                records = [r for r in caplog.records[before:] if r.name == app.logger.name]
                assert len(records) == 1, (name, [r.getMessage() for r in records])
                line = records[0].getMessage()
                assert "\n" not in line
                assert "alice" in line and CLIENT in line, (name, line)
                assert not behind_proxy or PROXY not in line, (name, line)
                lines[name] = line.replace(CLIENT, "").replace("alice", "")
                if client.get_cookie(cookie):
                    secrets.add(client.get_cookie(cookie).value)

            event("failed login", lambda: auth.login("alice", WRONG), (200,))
            event("login", lambda: auth.login("alice"), (302, 303))
            event("logout", auth.logout, (302, 303))
            auth.login("alice")
            event("log out everywhere", lambda: auth.post("/logout-everywhere"), (302, 303))
            auth.login("alice")
            change = {"current_password": USERS["alice"]["password"], "password": NEW_PASSWORD}
            event(
                "password changed",
                lambda: auth.post("/change-password", change | {"confirm_password": NEW_PASSWORD}),
                (302, 303),
            )
            already = len(inbox.wait_for(1))  # the notice of the change
            event("reset requested", lambda: auth.post("/reset-password", {"email": USERS["alice"]["email"]}), (200,))
            path = reset_path(inbox, already)
            secrets.add(path.rsplit("/", 1)[1])
            assert client.get(path).status_code == 200
            fields = {"password": USERS["alice"]["password"], "confirm_password": USERS["alice"]["password"]}
            event("reset completed", lambda: auth.post(path, fields), (302, 303))
            auth.login("alice", WRONG)
            auth.login("alice", WRONG)  # three failures in all: the limit
            event("lockout", lambda: auth.login("alice", WRONG), (429,))

            assert len(set(lines.values())) == len(lines), lines  # each event says which it is
            for record in caplog.records:
                for secret in secrets:
                    assert secret not in record.getMessage(), f"a secret in the log: {record.getMessage()}"
        finally:
            close_database(app)
