"""Registration (step 04+): the sign-up form, its rules, and the race for a name."""

import threading

import pytest

from harness.accounts import LONGEST_PASSWORD
from harness.accounts import REFUSED_PASSWORDS
from harness.accounts import took_sign_up
from harness.apps import AuthActions
from harness.apps import plant_session
from harness.apps import session_data
from harness.apps import stored_strings
from harness.pages import inputs
from harness.pages import message_at
from harness.pages import text

GOOD = {
    "username": "carol",
    "email": "carol@example.com",
    "password": "a-long-passphrase",
    "confirm_password": "a-long-passphrase",
}


def accounts(database_url, username):
    """How many stored strings are exactly this username: one per account."""
    return sum(value == username for value in stored_strings(database_url))


def password_works(step, app, username, password):
    """Whether `password` is the account's: it logs in, in a new browser.

    From step 09 (email-confirmation) a new account waits for its link, and
    logging in says so instead; the step says that only to the right password.
    """
    response = AuthActions(app.test_client()).login(username, password)
    if "email-confirmation" in step.features:
        return response.status_code == 200 and "Please confirm your email address first." in text(response.text)
    return response.status_code in (302, 303) and response.headers["Location"] == "/profile"


@pytest.mark.contract("GET /register: 200, a form with username, email, password, confirm_password and csrf_token")
@pytest.mark.features("registration", "csrf")
@pytest.mark.asvs("6.2.6")
def test_register_form_has_its_fields(client):
    response = client.get("/register")
    assert response.status_code == 200
    fields = inputs(response.text)
    for name in ("username", "email", "csrf_token"):
        assert name in fields
    assert fields["password"].get("type") == "password"
    assert fields["confirm_password"].get("type") == "password"


@pytest.mark.contract("POST /register, valid: creates the user, logs them in, redirects to /profile")
@pytest.mark.features("registration", "profile")
@pytest.mark.replaced_by("email-confirmation")  # from step 09 a sign-up logs no one in
def test_register_creates_the_user_and_logs_them_in(client, auth, database_url):
    response = auth.post("/register", GOOD)
    assert response.status_code in (302, 303)
    assert response.headers["Location"] == "/profile"
    profile = client.get("/profile")
    assert profile.status_code == 200
    assert "carol" in text(profile.text)
    assert "3" in text(profile.text).split()  # after alice (1) and bob (2)
    assert accounts(database_url, "carol") == 1


@pytest.mark.contract("POST /register, valid: creates the user, logs them in, redirects to /profile")
@pytest.mark.features("registration", "login")
@pytest.mark.replaced_by("email-confirmation")  # from step 09 the emailed link comes first
def test_registered_user_can_log_in_later(app, auth):
    auth.post("/register", GOOD)
    auth.logout()
    response = AuthActions(app.test_client()).login("carol", GOOD["password"])
    assert response.headers["Location"] == "/profile"


@pytest.mark.contract("POST /register, valid: creates the user, logs them in, redirects to /profile")
@pytest.mark.features("registration", "login")
@pytest.mark.parametrize(
    "password",
    ["p\u00e4ssw\u00f6rd-\u00fcnicode", "\U0001f600" * 8, "\u00e9" * 36],
    ids=["accents", "emoji", "72-bytes"],
)
@pytest.mark.asvs("6.2.5")
def test_register_accepts_a_password_beyond_ascii(step, app, auth, password):
    response = auth.post("/register", GOOD | {"password": password, "confirm_password": password})
    assert took_sign_up(step, response)
    assert password_works(step, app, "carol", password)


@pytest.mark.contract("Logging in starts a fresh session")
@pytest.mark.features("registration")
@pytest.mark.replaced_by("email-confirmation")  # from step 09 a sign-up logs no one in
@pytest.mark.asvs("7.2.4")
def test_register_starts_a_fresh_session(app, client, auth):
    """Signing up logs you in, so it too must drop whatever the session held before."""
    name = app.config["SESSION_COOKIE_NAME"]
    client.set_cookie(name, plant_session(app, {"planted": "by someone else"}))
    assert auth.post("/register", GOOD).status_code in (302, 303)
    assert "planted" not in session_data(app, client.get_cookie(name).value)


@pytest.mark.contract("GET /register when logged in redirects to /profile")
@pytest.mark.features("registration")
def test_register_sends_a_logged_in_user_to_profile(client, auth):
    auth.login("alice")
    response = client.get("/register")
    assert response.status_code in (302, 303)
    assert response.headers["Location"] == "/profile"


# (changed fields, words of which one must appear in the new message)
INVALID = {
    "empty-username": ({"username": ""}, ["username", "required"]),
    "short-username": ({"username": "ab"}, ["3"]),
    "long-username": ({"username": "c" * 33}, ["32"]),
    "space-in-username": ({"username": "car ol"}, ["letters", "characters"]),
    "newline-after-username": ({"username": "carol\n"}, ["letters", "characters", "control"]),
    "slash-in-username": ({"username": "car/ol"}, ["letters", "characters"]),
    "accented-username": ({"username": "c\u00e5rol"}, ["letters", "characters"]),
    "nul-in-username": ({"username": "car\x00ol"}, ["letters", "characters", "control"]),
    "taken-username": ({"username": "alice"}, ["taken", "exists", "in use"]),
    "taken-username-other-case": ({"username": "ALICE"}, ["taken", "exists", "in use"]),
    "empty-email": ({"email": ""}, ["email", "address", "required"]),
    "not-an-email": ({"email": "carol"}, ["email", "address"]),
    "email-two-ats": ({"email": "carol@@example.com"}, ["email", "address"]),
    "email-no-domain": ({"email": "carol@"}, ["email", "address"]),
    "email-nul": ({"email": "carol\x00@example.com"}, ["email", "address", "control"]),
    # From step 09 a taken address gets the answer any address gets (test_email_confirmation.py).
    "taken-email": pytest.param(
        {"email": "alice@example.com"},
        ["registered", "taken", "in use"],
        marks=pytest.mark.replaced_by("email-confirmation"),
    ),
    "taken-email-other-case": pytest.param(
        {"email": "Alice@Example.COM"},
        ["registered", "taken", "in use"],
        marks=pytest.mark.replaced_by("email-confirmation"),
    ),
    "empty-password": ({"password": "", "confirm_password": ""}, ["password", "required"]),
    "short-password": ({"password": "short", "confirm_password": "short"}, ["8"]),
    "long-password": ({"password": "p" * 65, "confirm_password": "p" * 65}, ["64"]),
    "password-over-72-bytes": ({"password": "\u00e9" * 40, "confirm_password": "\u00e9" * 40}, ["72", "bytes"]),
    "passwords-differ": ({"confirm_password": "a-long-passphrasE"}, ["match", "differ", "same"]),
    "no-confirmation": ({"confirm_password": ""}, ["again", "confirm", "match", "required"]),
}


@pytest.mark.contract("POST /register, invalid: 200, the form again with a message at each offending field")
@pytest.mark.features("registration")
@pytest.mark.parametrize(("changes", "words"), INVALID.values(), ids=INVALID.keys())
@pytest.mark.asvs("6.2.1")
def test_invalid_registration_shows_the_form_again(app, client, auth, database_url, changes, words):
    blank = set(text(client.get("/register").text).split())
    username = (GOOD | changes)["username"]
    before = accounts(database_url, username)
    response = auth.post("/register", GOOD | changes)
    assert response.status_code == 200
    new_words = " ".join(w for w in text(response.text).split() if w not in blank).lower()
    assert any(word in new_words for word in words), f"no message with any of {words}: {new_words!r}"
    # No account was made, and what the user typed is still there.
    assert accounts(database_url, username) == before
    if "username" not in changes:
        assert inputs(response.text)["username"].get("value") == GOOD["username"]
    assert AuthActions(app.test_client()).login("carol", GOOD["password"]).status_code == 200


@pytest.mark.contract("POST /register, invalid: 200, the form again with a message at each offending field")
@pytest.mark.features("registration")
def test_every_offending_field_gets_its_message(auth):
    response = auth.post("/register", {"username": "ab", "email": "nope", "password": "short", "confirm_password": "x"})
    shown = text(response.text).lower()
    assert response.status_code == 200
    assert "3" in shown
    assert "email" in shown
    assert "8" in shown
    assert any(word in shown for word in ("match", "differ", "same"))


@pytest.mark.contract(
    "Wherever a password is set, a common one (letter case aside), one of 65 characters and one over 72 bytes "
    "are refused, with a message at the field (step 04+)"
)
@pytest.mark.features("registration")
@pytest.mark.parametrize(("password", "words"), REFUSED_PASSWORDS.values(), ids=REFUSED_PASSWORDS.keys())
@pytest.mark.asvs("6.2.4")
def test_sign_up_refuses_a_common_or_too_long_password(client, auth, database_url, password, words):
    blank = client.get("/register").text
    response = auth.post("/register", GOOD | {"password": password, "confirm_password": password})
    assert response.status_code == 200
    message = message_at(response.text, blank, "password", "confirm_password")
    assert any(word in message for word in words), f"no message with any of {words} at the password field: {message!r}"
    assert accounts(database_url, "carol") == 0


@pytest.mark.contract("Wherever a password is set, one of 64 characters is accepted (step 04+)")
@pytest.mark.features("registration", "login")
@pytest.mark.asvs("6.2.9")
def test_sign_up_takes_a_64_character_password(step, app, auth):
    response = auth.post("/register", GOOD | {"password": LONGEST_PASSWORD, "confirm_password": LONGEST_PASSWORD})
    assert took_sign_up(step, response)
    assert password_works(step, app, "carol", LONGEST_PASSWORD)


@pytest.fixture
def inserts_wait_for_each_other():
    """Hold every INSERT until `parties` of them are waiting, then let all go.

    All the racing sign-ups have then passed the form's "is it taken?"
    check, so only the database's unique index can stop the duplicates.
    """
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    barrier = {}

    def hold(conn, cursor, statement, parameters, context, executemany):
        # Only a racer's account: not the sessions a server-side store inserts too.
        values = parameters.values() if isinstance(parameters, dict) else parameters
        racer = any(isinstance(value, str) and "racer" in value for value in values)
        if statement.lstrip().upper().startswith("INSERT") and racer:
            barrier["barrier"].wait(timeout=20)

    def arm(parties):
        barrier["barrier"] = threading.Barrier(parties)
        event.listen(Engine, "before_cursor_execute", hold)

    yield arm
    if event.contains(Engine, "before_cursor_execute", hold):
        event.remove(Engine, "before_cursor_execute", hold)


@pytest.mark.contract("Two sign-ups racing for one username or email end with one account")
@pytest.mark.features("registration")
@pytest.mark.parametrize("clash", ["username", "email"])
@pytest.mark.parametrize("spelling", ["same-case", "mixed-case"])
def test_racing_sign_ups_make_one_account(step, app, database_url, inserts_wait_for_each_other, clash, spelling):
    racers = 6
    forms = []
    # carol, CAROL, Carol...: only an index on the lower-cased value stops these.
    cases = [str.lower] if spelling == "same-case" else [str.lower, str.upper, str.title]
    for n in range(racers):
        form = dict(GOOD, username=f"racer{n}", email=f"racer{n}@example.com")
        form[clash] = cases[n % len(cases)](GOOD[clash])
        forms.append(form)
    # Each racer is a browser of its own, with its own session and token.
    browsers = [AuthActions(app.test_client()) for _ in forms]
    inserts_wait_for_each_other(racers)
    responses = [None] * racers

    def sign_up(n):
        responses[n] = browsers[n].post("/register", forms[n])

    threads = [threading.Thread(target=sign_up, args=(n,)) for n in range(racers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    winners = [r for r in responses if took_sign_up(step, r)]
    losers = [r for r in responses if r.status_code == 200 and r not in winners]
    if clash == "email" and "email-confirmation" in step.features:
        # From step 09 a taken address gets the answer any other gets: every
        # racer is told to check the inbox. Still one account, below.
        assert len(winners) == racers
    else:
        assert len(winners) == 1
        assert len(losers) == racers - 1
    for response in losers:
        shown = text(response.text).lower()
        assert "taken" in shown or "registered" in shown
    assert sum(value.lower() == GOOD[clash] for value in stored_strings(database_url)) == 1


# Pairs of spellings that reach one mailbox: (first, second).
ONE_MAILBOX = {
    "letter-case": ("carol@example.com", "CAROL@Example.COM"),
    "full-width-domain": ("carol@example.com", "carol@\uff25\uff38\uff21\uff2d\uff30\uff2c\uff25.com"),
    "nfc-nfd": ("\u00e9lodie@example.com", "e\u0301lodie@example.com"),
    "idn-punycode": ("carol@b\u00fccher.example", "carol@xn--bcher-kva.example"),
}


@pytest.mark.contract(
    "Email addresses are stored and compared in their normalised form: one mailbox, one account (step 04+)"
)
@pytest.mark.features("registration", "email")
@pytest.mark.parametrize("how", ["form", "create-user"])
@pytest.mark.parametrize(("first", "second"), ONE_MAILBOX.values(), ids=ONE_MAILBOX.keys())
def test_one_mailbox_one_account(step, app, auth, runner, database_url, how, first, second):
    def sign_up(username, email):
        if how == "form":
            fields = GOOD | {"username": username, "email": email}
            response = AuthActions(app.test_client()).post("/register", fields)
            # From step 09 the answer is the same for a taken address: look for the account too.
            return took_sign_up(step, response) and accounts(database_url, username) == 1
        password = GOOD["password"]
        args = ["create-user", username, "--email", email]
        return runner.invoke(args=args, input=f"{password}\n{password}\n").exit_code == 0

    assert sign_up("carol", first)
    assert not sign_up("dave", second), f"{second!r} made a second account for the mailbox of {first!r}"
    assert accounts(database_url, "dave") == 0
    # What is stored is the normal form, whichever spelling came first.
    stored = stored_strings(database_url)
    assert first in stored or first.lower() in stored
    assert second not in stored or second == first


@pytest.mark.contract(
    "Email addresses are stored and compared in their normalised form: one mailbox, one account (step 04+)"
)
@pytest.mark.features("registration", "email")
def test_the_normal_form_is_stored(step, auth, database_url):
    assert took_sign_up(
        step, auth.post("/register", GOOD | {"email": "Carol@\uff25\uff38\uff21\uff2d\uff30\uff2c\uff25.com"})
    )
    assert "Carol@example.com" in stored_strings(database_url)
