"""Two-factor authentication (step 10+): a code after the password, recovery codes, and what changes them.

Codes are computed from the secret that the setup page shows, with pyotp,
as an authenticator app computes them (harness/two_factor.py). Each code
works once, so a test that needs a second code from the app in one run
moves the clock on with time-machine, which the app sees too (it runs in
this process), rather than sleeping 30 seconds. Every test gets a real
SMTP server of its own, as in test_password_reset.py: the notices arrive
there.
"""

import os
import re
import uuid
import xml.etree.ElementTree as ElementTree

import pytest

from harness.accounts import USERS
from harness.apps import AuthActions
from harness.apps import browser
from harness.apps import close_database
from harness.apps import house_rule_problems
from harness.apps import is_anonymous
from harness.apps import lasting_cookies
from harness.apps import logged_in_browser
from harness.apps import reopened_browser
from harness.apps import session_cookie
from harness.apps import stored_strings
from harness.apps import travel
from harness.pages import forms
from harness.pages import inline_code
from harness.pages import inputs
from harness.pages import links
from harness.pages import text
from harness.served import Browser
from harness.served import serving
from harness.services import environment_without
from harness.services import redis_server
from harness.smtp import body as body_of
from harness.smtp import links as links_in
from harness.two_factor import TwoFactor
from harness.two_factor import code
from harness.two_factor import recovery_codes_on
from harness.two_factor import second_stage
from harness.two_factor import secret_on
from harness.two_factor import start_setup
from harness.two_factor import turn_on

PASSWORD = USERS["alice"]["password"]
ALICE = USERS["alice"]["email"]
INVALID_CODE = "Invalid code."
INVALID_LOGIN = "Invalid username or password."
SECOND_STAGE = "/login/two-factor"
FORM = "application/x-www-form-urlencoded"
# Wrong codes allowed per user by default (FLASK_TWO_FACTOR_LIMIT).
CODE_LIMIT = 5
# The half-way state lapses after this many seconds.
HALF_WAY_SECONDS = 300
TWO_FACTOR = ("two-factor", "login", "profile")


@pytest.fixture(name="test_config")
def mail_to_the_inbox(test_config, inbox):
    """The suite's test configuration, sending mail to this test's SMTP server."""
    # Flask-Mail sends nothing while TESTING is on, unless told otherwise.
    return test_config | inbox.config() | {"MAIL_SUPPRESS_SEND": False}


@pytest.fixture
def alice(app):
    """alice's own browser, logged in, and what turning two-factor on there gave her (a TwoFactor)."""
    auth = logged_in_browser(app)
    return auth, turn_on(auth, PASSWORD)


def half_way(app, username="alice", address="203.0.113.7", **fields):
    """A new browser that has given the right password: (its AuthActions, the answer to POST /login)."""
    auth = browser(app, address)
    return auth, auth.login(username, **fields)


def with_code(app, value, **fields):
    """A new browser logs in as alice: the password, then `value` at the second stage; the answer to the code."""
    auth, response = half_way(app, **fields)
    assert response.headers.get("Location") == SECOND_STAGE
    return auth, second_stage(auth, value)


def logged_in_as_alice(auth):
    """Whether /profile shows alice to this browser."""
    response = auth.client.get("/profile")
    return response.status_code == 200 and "alice" in text(response.text)


def is_on(auth):
    """What /two-factor tells this (logged-in) browser: True for on, False for off."""
    words = text(auth.client.get("/two-factor").text)
    assert ("is on" in words) != ("is off" in words), words
    return "is on" in words


def another_code(secret):
    """A six-digit code that is none of the secret's codes now, nor in the steps either side."""
    import time  # the clock that time-machine moves

    valid = {code(secret, time.time() + 30 * offset) for offset in (-1, 0, 1)}
    return next(f"{n:06d}" for n in range(10**6) if f"{n:06d}" not in valid)


def with_cookie(app, value):
    """A new browser holding only this session cookie value."""
    client = app.test_client()
    client.set_cookie(app.config["SESSION_COOKIE_NAME"], value)
    return client


# Turning it on


@pytest.mark.contract("GET /two-factor needs a login, and says whether two-factor is on (step 10+)")
@pytest.mark.features(*TWO_FACTOR)
def test_the_two_factor_page_needs_a_login_and_says_whether_it_is_on(app):
    response = app.test_client().get("/two-factor")
    assert response.status_code in (302, 303) and response.headers["Location"].startswith("/login")
    auth = logged_in_browser(app)
    assert is_on(auth) is False
    assert any(form["action"] == "/two-factor/setup" for form in forms(auth.client.get("/two-factor").text))
    turn_on(auth, PASSWORD)
    assert is_on(auth) is True
    assert is_on(logged_in_browser(app, "bob")) is False  # alice's alone


@pytest.mark.contract(
    "Turning it on shows a new random secret each time, as text and as a QR code: an image from the site "
    "itself, on a page with no inline script (step 10+)"
)
@pytest.mark.features(*TWO_FACTOR, "security-headers")
@pytest.mark.asvs("6.5.3")
def test_setup_shows_a_new_secret_as_text_and_as_a_qr_code(app):
    auth = logged_in_browser(app)
    pages = [start_setup(auth), start_setup(auth)]
    secrets = [secret_on(page.text) for page in pages]
    assert secrets[0] != secrets[1]
    for secret in secrets:
        # Base32; at least 128 bits, as RFC 4226 requires (160 recommended).
        assert re.fullmatch(r"[A-Z2-7]+=*", secret) and len(secret) * 5 >= 128, secret
    page = pages[1].text
    assert inline_code(page) == []
    images = re.findall(r'<img[^>]*\bsrc="([^"]+)"', page)
    assert len(images) == 1 and images[0].startswith("/"), images  # from this site, not a QR service
    image = auth.client.get(images[0])
    assert image.status_code == 200
    assert image.mimetype in ("image/svg+xml", "image/png"), image.mimetype
    assert "no-store" in image.headers.get("Cache-Control", "")  # it holds the secret
    if image.mimetype == "image/svg+xml":
        root = ElementTree.fromstring(image.data)
        assert root.tag.endswith("svg") and not root.findall(".//{*}script")
    # Only its owner's browser gets it.
    assert app.test_client().get(images[0]).status_code in (302, 303, 404)


@pytest.mark.contract(
    "The secret makes RFC 6238 codes as authenticator apps do (30-second steps, 6 digits, SHA-1): the code of "
    "now, or of the step either side, is taken; older ones are not (step 10+)"
)
@pytest.mark.features(*TWO_FACTOR)
@pytest.mark.asvs("6.5.5")
def test_the_secret_makes_rfc_6238_codes(app):
    import time

    auth = logged_in_browser(app)
    secret = secret_on(start_setup(auth).text)
    # The clock stands still meanwhile: were a 30-second step to end between
    # making the code of the step before and checking it, that code would be
    # two steps old by then, and rightly refused.
    with travel(0, tick=False):
        for offset in (-120, -90, 120):
            answer = auth.post(
                "/two-factor/enable", {"code": code(secret, time.time() + offset), "current_password": PASSWORD}
            )
            assert answer.status_code == 200 and recovery_codes_on(answer.text) == [], offset
        answer = auth.post("/two-factor/enable", {"code": code(secret, time.time() - 30), "current_password": PASSWORD})
        assert len(recovery_codes_on(answer.text)) == 10
    assert is_on(auth)


@pytest.mark.contract(
    "Turning it on needs the current password and a valid code: a wrong one of either gives the form again, "
    "and leaves two-factor off (step 10+)"
)
@pytest.mark.features(*TWO_FACTOR)
def test_turning_it_on_needs_the_password_and_a_code(app):
    auth = logged_in_browser(app)
    older = secret_on(start_setup(auth).text)
    secret = secret_on(start_setup(auth).text)
    attempts = [
        {"code": code(secret), "current_password": "not-her-password"},
        {"code": another_code(secret), "current_password": PASSWORD},
        {"code": code(older), "current_password": PASSWORD},  # the secret shown before: not the one set up
        {"code": code(secret)},
        {"current_password": PASSWORD},
    ]
    for fields in attempts:
        answer = auth.post("/two-factor/enable", fields)
        assert answer.status_code == 200, fields
        assert {"code", "current_password", "csrf_token"} <= set(inputs(answer.text)), fields
        assert recovery_codes_on(answer.text) == [], fields
    assert is_on(auth) is False
    # Still the password alone.
    response = browser(app).login("alice")
    assert response.headers["Location"] == "/profile"


@pytest.mark.contract("Turning it on shows ten recovery codes, once: no page shows them again (step 10+)")
@pytest.mark.features(*TWO_FACTOR)
@pytest.mark.asvs("6.5.2", "6.5.3", "6.5.4")
def test_turning_it_on_shows_ten_recovery_codes_once(app, alice):
    auth, two_factor = alice
    codes = two_factor.recovery_codes
    assert len(set(codes)) == 10
    # At least 112 bits each, for a plain hash to be enough (ASVS 6.5.2).
    for value in codes:
        assert len(re.sub(r"[^A-Za-z0-9]", "", value)) * 5 >= 112, value
    for path in ("/two-factor", "/profile", "/two-factor/recovery-codes", "/two-factor/disable"):
        page = auth.client.get(path).text
        assert not any(value in page for value in codes), path


@pytest.mark.contract(
    "The TOTP secret is stored encrypted and the recovery codes hashed: no table holds either, in any "
    "spelling (step 10+)"
)
@pytest.mark.features(*TWO_FACTOR, "database")
@pytest.mark.asvs("6.5.2")
def test_the_secret_is_stored_encrypted_and_the_recovery_codes_hashed(app, alice, database_url):
    auth, two_factor = alice
    stored = "\n".join(stored_strings(database_url, binary=True)).lower()
    secret = two_factor.secret.lower()
    assert secret not in stored
    assert " ".join(secret[i : i + 4] for i in range(0, len(secret), 4)) not in stored
    for value in two_factor.recovery_codes:
        assert value.lower() not in stored and re.sub(r"[^a-z0-9]", "", value.lower()) not in stored
    # They still work, from what is stored.
    assert logged_in_as_alice(with_code(app, two_factor.next_code())[0])
    assert logged_in_as_alice(with_code(app, two_factor.recovery_codes[0])[0])


@pytest.mark.contract(
    "TOTP_ENCRYPTION_KEY (FLASK_TOTP_ENCRYPTION_KEY) sets the key that encrypts the secrets: another key cannot "
    "read them, and a value that is no key stops the app at start (step 10+)"
)
@pytest.mark.features(*TWO_FACTOR, "database")
def test_a_configured_encryption_key_is_used_and_a_bad_one_refused(app, create_app, test_config):
    from cryptography.fernet import Fernet

    key = Fernet.generate_key()
    first = create_app(test_config | {"TOTP_ENCRYPTION_KEY": key})
    try:
        two_factor = turn_on(logged_in_browser(first), PASSWORD)
    finally:
        close_database(first)
    same, other = (create_app(test_config | {"TOTP_ENCRYPTION_KEY": k}) for k in (key, Fernet.generate_key()))
    try:
        value = two_factor.next_code()
        assert not logged_in_as_alice(with_code(other, value)[0])  # another key: the secret reads as nothing
        assert logged_in_as_alice(with_code(same, value)[0])
        # A recovery code needs no secret: the way back in when the key is lost.
        assert logged_in_as_alice(with_code(other, two_factor.recovery_codes[0])[0])
    finally:
        close_database(same)
        close_database(other)
    with pytest.raises(SystemExit):
        create_app(test_config | {"TOTP_ENCRYPTION_KEY": "not a key"})


# The two stages of a login


@pytest.mark.contract(
    "For an account with two-factor on, the right password redirects to /login/two-factor, a form with code and "
    "csrf_token; a wrong password still gets 'Invalid username or password.' (step 10+)"
)
@pytest.mark.features(*TWO_FACTOR)
def test_the_right_password_leads_to_the_second_stage(app, alice):
    auth, response = half_way(app)
    assert response.status_code in (302, 303) and response.headers["Location"] == SECOND_STAGE
    page = auth.client.get(SECOND_STAGE)
    assert page.status_code == 200
    assert {"code", "csrf_token"} <= set(inputs(page.text))
    assert "password" not in inputs(page.text)
    wrong = browser(app).login("alice", "not-her-password")
    assert wrong.status_code == 200 and INVALID_LOGIN in text(wrong.text)
    # bob has it off: his password alone logs in, as before.
    assert browser(app).login("bob").headers["Location"] == "/profile"


# What a logged-in user could reach, by method and path.
PRIVATE = [
    ("GET", "/profile"),
    ("GET", "/two-factor"),
    ("POST", "/two-factor/setup"),
    ("GET", "/two-factor/qr.svg"),
    ("GET", "/two-factor/disable"),
    ("GET", "/two-factor/recovery-codes"),
    ("GET", "/change-password"),
    ("GET", "/change-email"),
    ("POST", "/logout-everywhere"),
]


@pytest.mark.contract(
    "Between the password and the code every page treats the visitor as anonymous: private pages send them to "
    "/login, the home page shows no username, /login shows its form (step 10+)"
)
@pytest.mark.features(*TWO_FACTOR, "change-password", "change-email", "logout-everywhere")
def test_half_way_every_page_treats_the_visitor_as_anonymous(app, alice):
    auth, _ = half_way(app)
    for method, path in PRIVATE:
        response = auth.post(path) if method == "POST" else auth.client.get(path)
        assert response.status_code in (302, 303), (path, response.status_code)
        assert response.headers["Location"].startswith("/login"), (path, response.headers["Location"])
    home = auth.client.get("/")
    assert home.status_code == 200 and "alice" not in text(home.text) and "/login" in links(home.text)
    login = auth.client.get("/login")
    assert login.status_code == 200 and "username" in inputs(login.text)
    # And the code still finishes the login: nothing above spent the half-way state.
    assert logged_in_as_alice(AuthActions(auth.client)) is False
    second_stage(auth, alice[1].next_code())
    assert logged_in_as_alice(auth)


@pytest.mark.contract(
    "A current code at POST /login/two-factor logs in, with a new session id: neither the id from before the "
    "password nor the half-way one opens anything (step 10+)"
)
@pytest.mark.features(*TWO_FACTOR, "server-sessions")
@pytest.mark.asvs("7.2.4")
def test_a_code_logs_in_with_a_new_session_id(app, alice):
    auth = browser(app, "203.0.113.7")
    auth.client.get("/login")
    before = session_cookie(app, auth.client)
    auth.login("alice")
    between = session_cookie(app, auth.client)
    response = second_stage(auth, alice[1].next_code())
    assert response.status_code in (302, 303) and response.headers["Location"] == "/profile"
    after = session_cookie(app, auth.client)
    assert len({before, between, after}) == 3
    assert logged_in_as_alice(auth)
    for value in (before, between):
        assert is_anonymous(with_cookie(app, value))


@pytest.mark.contract("An unused recovery code at POST /login/two-factor logs in, in place of a TOTP code (step 10+)")
@pytest.mark.features(*TWO_FACTOR)
def test_a_recovery_code_logs_in(app, alice):
    codes = alice[1].recovery_codes
    auth, response = with_code(app, codes[0])
    assert response.status_code in (302, 303) and response.headers["Location"] == "/profile"
    assert logged_in_as_alice(auth)
    # Typed as people type: capitals, spaces for dashes.
    assert logged_in_as_alice(with_code(app, codes[1].upper().replace("-", " "))[0])


@pytest.mark.contract(
    "'Remember me' and a safe next given with the password carry over to the login the code completes; an "
    "unsafe next falls back to /profile (step 10+)"
)
@pytest.mark.features(*TWO_FACTOR, "remember", "safe-next")
def test_remember_me_and_a_safe_next_carry_over(app, alice):
    codes = alice[1].recovery_codes
    cases = [
        ({"remember": "y"}, "/login?next=/change-password", "/change-password", True),
        ({}, "/login?next=/change-password", "/change-password", False),
        ({"remember": "y"}, "/login?next=//evil.example/x", "/profile", True),
    ]
    for (fields, path, lands, remembered), value in zip(cases, codes, strict=False):
        auth, response = half_way(app, path=path, **fields)
        assert response.headers["Location"] == SECOND_STAGE
        # Nothing lasting yet: a cookie that outlived the browser now would be worth a password.
        assert lasting_cookies(app, auth.client) == {}
        answer = second_stage(auth, value)
        assert answer.headers["Location"] == lands, (path, answer.headers["Location"])
        # Closed and opened again, the browser is still logged in only if "remember me" was ticked.
        assert logged_in_as_alice(AuthActions(reopened_browser(app, auth.client))) is remembered, fields


@pytest.mark.contract(
    "A wrong code gives the form again with 'Invalid code.', logs no one in, and the right code still works "
    "after it (step 10+)"
)
@pytest.mark.features(*TWO_FACTOR)
def test_a_wrong_code_gives_the_form_again(app, alice):
    two_factor = alice[1]
    auth, _ = half_way(app)
    for wrong in (another_code(two_factor.secret), "not-a-recovery-code-at-all"):
        response = second_stage(auth, wrong)
        assert response.status_code == 200
        assert INVALID_CODE in text(response.text)
        assert "code" in inputs(response.text)
        assert not logged_in_as_alice(auth)
    second_stage(auth, two_factor.next_code())
    assert logged_in_as_alice(auth)


@pytest.mark.contract(
    "The half-way state lives in that browser's session alone: another browser cannot finish it, and a session "
    "id from before the password does not hold it (step 10+)"
)
@pytest.mark.features(*TWO_FACTOR, "server-sessions")
def test_the_half_way_state_stays_in_its_browser(app, alice):
    two_factor = alice[1]
    victim = browser(app, "203.0.113.7")
    victim.client.get("/login")
    planted = session_cookie(app, victim.client)  # an id an attacker could have set in the victim's browser
    victim.login("alice")
    value = two_factor.next_code()
    for attacker in (browser(app, "192.0.2.66"), AuthActions(with_cookie(app, planted))):
        page = attacker.client.get(SECOND_STAGE)
        assert page.status_code in (302, 303) and page.headers["Location"].startswith("/login")
        attacker.client.get("/login")
        response = second_stage(attacker, value)
        assert response.status_code in (302, 303) and response.headers["Location"].startswith("/login")
        assert not logged_in_as_alice(attacker)
    # The victim's own browser finishes, with the very code the others sent.
    second_stage(victim, value)
    assert logged_in_as_alice(victim)


@pytest.mark.contract(
    "The half-way state lapses 5 minutes after the password: the code is then refused, and /login/two-factor "
    "sends the visitor to /login (step 10+)"
)
@pytest.mark.features(*TWO_FACTOR)
def test_the_half_way_state_lapses_after_five_minutes(app, alice):
    two_factor = alice[1]
    late, _ = half_way(app)
    in_time, _ = half_way(app)
    with travel(HALF_WAY_SECONDS - 60):
        second_stage(in_time, two_factor.next_code())
        assert logged_in_as_alice(in_time)
    with travel(HALF_WAY_SECONDS + 5):
        response = second_stage(late, two_factor.next_code())
        assert response.status_code in (302, 303) and response.headers["Location"].startswith("/login")
        assert not logged_in_as_alice(late)
        assert "Please log in again." in text(late.client.get(response.headers["Location"]).text)
        assert late.client.get(SECOND_STAGE).headers["Location"].startswith("/login")


@pytest.mark.contract(
    "Ending the user's sessions between the two stages (log out everywhere, a new password) voids the half-way "
    "state too: the code is then refused (step 10+)"
)
@pytest.mark.features(*TWO_FACTOR, "logout-everywhere", "change-password")
@pytest.mark.parametrize("how", ["logout-everywhere", "change-password"])
def test_ending_the_sessions_voids_the_half_way_state(app, alice, how):
    auth, two_factor = alice
    stranger, _ = half_way(app, address="192.0.2.99")  # someone with alice's password, short of a code
    if how == "logout-everywhere":
        assert auth.post("/logout-everywhere").status_code in (302, 303)
    else:
        new = "a-brand-new-passphrase"
        fields = {"current_password": PASSWORD, "password": new, "confirm_password": new}
        assert auth.post("/change-password", fields).status_code in (302, 303)
    response = second_stage(stranger, two_factor.next_code())
    assert response.status_code in (302, 303) and response.headers["Location"].startswith("/login")
    assert not logged_in_as_alice(stranger)


# Codes used once, and limited


@pytest.mark.contract(
    "A TOTP code works once: the same code again, or the code of an earlier step still in its window, is "
    "refused (step 10+)"
)
@pytest.mark.features(*TWO_FACTOR)
@pytest.mark.asvs("6.5.1", "6.5.5")
def test_a_code_works_once(app, alice):
    import time

    two_factor = alice[1]
    # The code that turned it on was used then.
    auth, response = with_code(app, code(two_factor.secret, two_factor.last))
    assert response.status_code == 200 and INVALID_CODE in text(response.text)
    value = two_factor.next_code()  # the code of the next step
    first, response = with_code(app, value)
    assert logged_in_as_alice(first)
    for replay in (value, code(two_factor.secret, time.time())):  # again; the step before it, still in the window
        auth, response = with_code(app, replay)
        assert response.status_code == 200 and INVALID_CODE in text(response.text)
        assert not logged_in_as_alice(auth)
    with travel(30):  # the phone shows a new code
        assert logged_in_as_alice(with_code(app, two_factor.next_code())[0])


@pytest.mark.contract("A recovery code works once (step 10+)")
@pytest.mark.features(*TWO_FACTOR)
@pytest.mark.asvs("6.5.1")
def test_a_recovery_code_works_once(app, alice):
    codes = alice[1].recovery_codes
    assert logged_in_as_alice(with_code(app, codes[3])[0])
    auth, response = with_code(app, codes[3])
    assert response.status_code == 200 and INVALID_CODE in text(response.text)
    assert not logged_in_as_alice(auth)
    assert logged_in_as_alice(with_code(app, codes[4])[0])  # the others still work


def retry_after(response):
    return int(response.headers.get("Retry-After", "0"))


@pytest.mark.contract(
    "Wrong codes are limited per user (5 per 15 minutes by default, FLASK_TWO_FACTOR_LIMIT): then 429 with "
    "Retry-After, even for the right code, from any browser and address (step 10+)"
)
@pytest.mark.features(*TWO_FACTOR, "rate-limits")
@pytest.mark.asvs("6.3.1")
def test_wrong_codes_are_limited_per_user(app, alice, create_app, test_config):
    two_factor = alice[1]
    for n in range(CODE_LIMIT):
        auth, _ = half_way(app, address=f"203.0.113.{n + 10}")  # a new browser and address each time
        assert second_stage(auth, another_code(two_factor.secret)).status_code == 200
    auth, _ = half_way(app, address="192.0.2.1")
    response = second_stage(auth, two_factor.recovery_codes[0])
    assert response.status_code == 429 and retry_after(response) > 0
    assert not logged_in_as_alice(auth)
    # Another user's codes are counted apart.
    bob = logged_in_browser(app, "bob")
    bobs = turn_on(bob, USERS["bob"]["password"])
    assert with_code_as(app, "bob", bobs.recovery_codes[0]).status_code in (302, 303)
    # The setting: one wrong code is enough in an app allowing one.
    strict = create_app(test_config | {"TWO_FACTOR_LIMIT": "1 per 15 minutes"})
    try:
        auth, _ = half_way(strict, "bob")
        assert second_stage(auth, another_code(bobs.secret)).status_code == 200
        assert second_stage(auth, bobs.recovery_codes[1]).status_code == 429
    finally:
        close_database(strict)


def with_code_as(app, username, value):
    auth, response = half_way(app, username)
    assert response.headers.get("Location") == SECOND_STAGE
    return second_stage(auth, value)


CAN_REACH_REDIS = bool(os.environ.get("FLASK_REDIS_URL") or redis_server())

if CAN_REACH_REDIS:

    @pytest.mark.contract(
        "With FLASK_REDIS_URL, wrong codes on two server processes count towards one limit per user (step 10+)"
    )
    @pytest.mark.features(*TWO_FACTOR, "rate-limits")
    def test_wrong_codes_are_counted_across_servers(step, app, alice, test_config, redis_url, tmp_path):
        two_factor = alice[1]
        env = environment_without()
        env.update(
            FLASK_SECRET_KEY=test_config["SECRET_KEY"],  # which the secret's key is made from
            FLASK_SQLALCHEMY_DATABASE_URI=test_config["SQLALCHEMY_DATABASE_URI"],
            FLASK_BCRYPT_LOG_ROUNDS=str(test_config["BCRYPT_LOG_ROUNDS"]),
            FLASK_REDIS_URL=redis_url,
            # Keys of this test's own in a Redis others may share (read as JSON).
            FLASK_RATELIMIT_STORAGE_OPTIONS=f'{{"key_prefix": "test-{uuid.uuid4().hex}"}}',
            FLASK_SESSION_KEY_PREFIX=f"test-{uuid.uuid4().hex}:",
        )
        with serving(step, env, tmp_path / "one.log") as one, serving(step, env, tmp_path / "two.log") as two:

            def attempt(server, value):
                """A new browser gives alice's password, then `value`: the status of the answer to the code."""
                visitor = Browser()
                assert visitor.log_in(server) == (302, SECOND_STAGE)
                return visitor.post(server, SECOND_STAGE, {"code": value})[0]

            wrong = another_code(two_factor.secret)
            statuses = [attempt(server, wrong) for server in (one, two, one, two, one)]
            assert statuses == [200] * CODE_LIMIT
            # Three wrong codes on one, two on two: only a shared count has reached the limit.
            assert attempt(two, two_factor.recovery_codes[0]) == 429
            assert attempt(one, two_factor.recovery_codes[1]) == 429


# Turning it off, new recovery codes


def change(auth, path, value, password=PASSWORD):
    """POST the form at `path` (off, or new codes) with the password and a code; the answer."""
    return auth.post(path, {"current_password": password, "code": value})


@pytest.mark.contract(
    "Turning it off (POST /two-factor/disable) needs the current password and a code; a wrong one of either "
    "gives the form again and leaves it on (step 10+)"
)
@pytest.mark.features(*TWO_FACTOR)
@pytest.mark.asvs("6.4.4")
def test_turning_it_off_needs_the_password_and_a_code(app, alice):
    auth, two_factor = alice
    page = auth.client.get("/two-factor/disable")
    assert page.status_code == 200 and {"current_password", "code", "csrf_token"} <= set(inputs(page.text))
    for password, value in [("not-her-password", two_factor.recovery_codes[0]), (PASSWORD, "123-not-a-code")]:
        answer = change(auth, "/two-factor/disable", value, password)
        assert answer.status_code == 200 and "current_password" in inputs(answer.text)
        assert is_on(auth)
    # The code sent with the wrong password was not spent by it.
    assert change(auth, "/two-factor/disable", two_factor.recovery_codes[0]).status_code in (302, 303)
    assert is_on(auth) is False
    assert browser(app).login("alice").headers["Location"] == "/profile"
    # And the old secret and codes are gone with it: turning it on again makes new ones.
    again = turn_on(auth, PASSWORD)
    assert again.secret != two_factor.secret and not set(again.recovery_codes) & set(two_factor.recovery_codes)


@pytest.mark.contract(
    "New recovery codes (POST /two-factor/recovery-codes) need the current password and a code; then ten new "
    "ones are shown once, and the old ones stop working (step 10+)"
)
@pytest.mark.features(*TWO_FACTOR)
@pytest.mark.asvs("6.4.4")
def test_new_recovery_codes_need_the_password_and_a_code(app, alice):
    auth, two_factor = alice
    old = two_factor.recovery_codes
    for password, value in [("not-her-password", old[0]), (PASSWORD, "000-not-a-code")]:
        answer = change(auth, "/two-factor/recovery-codes", value, password)
        assert answer.status_code == 200 and recovery_codes_on(answer.text) == []
    answer = change(auth, "/two-factor/recovery-codes", two_factor.next_code())
    assert answer.status_code == 200
    new = recovery_codes_on(answer.text)
    assert len(set(new)) == 10 and not set(new) & set(old)
    assert not logged_in_as_alice(with_code(app, old[1])[0])
    assert logged_in_as_alice(with_code(app, new[0])[0])


# How alice's other browser is left, and the notice, after each change.
CHANGES = {
    "on": None,
    "new-codes": "/two-factor/recovery-codes",
    "off": "/two-factor/disable",
}


@pytest.mark.contract(
    "Turning it on or off, and new recovery codes, end every other session of the user (this one goes on) and "
    "email the user a notice (step 10+)"
)
@pytest.mark.features(*TWO_FACTOR, "server-sessions", "email")
@pytest.mark.parametrize("what", list(CHANGES))
def test_each_change_ends_the_other_sessions_and_mails_a_notice(app, inbox, what):
    auth = logged_in_browser(app)
    if what == "on":
        other = logged_in_browser(app, address="192.0.2.8")
        already = len(inbox.wait_to(ALICE, 0))
        turn_on(auth, PASSWORD)
    else:
        two_factor = turn_on(auth, PASSWORD)
        other, _ = with_code(app, two_factor.recovery_codes[0])
        assert logged_in_as_alice(other)
        already = len(inbox.wait_to(ALICE, 1))
        response = change(auth, CHANGES[what], two_factor.next_code())
        assert response.status_code < 400
    assert not logged_in_as_alice(other)
    assert logged_in_as_alice(auth)
    messages = inbox.wait_to(ALICE, already + 1)
    assert len(messages) == already + 1, f"no notice to {ALICE}"
    notice = messages[-1]
    words = f"{notice['Subject']} {body_of(notice)}".lower()
    assert "two-factor" in words or "recovery codes" in words, words
    # It says what to do if it was not them: reset the password, on this site.
    assert any(link.endswith("/reset-password") for link in links_in(notice)), links_in(notice)


@pytest.mark.contract("A password reset neither turns two-factor off nor lets a login skip the code (step 10+)")
@pytest.mark.features(*TWO_FACTOR, "password-reset")
@pytest.mark.asvs("6.4.3", "6.4.4")
def test_a_password_reset_neither_turns_it_off_nor_skips_it(app, alice, inbox):
    two_factor = alice[1]
    already = len(inbox.messages)
    visitor = browser(app, "192.0.2.20")
    visitor.client.get("/reset-password")
    assert visitor.post("/reset-password", {"email": ALICE}).status_code == 200
    message = inbox.wait_for(already + 1)[already]
    [link] = [link for link in links_in(message) if "/reset-password/" in link]
    path = "/" + link.split("/", 3)[3]
    assert visitor.client.get(path).status_code == 200
    new = "a-brand-new-passphrase"
    response = visitor.post(path, {"password": new, "confirm_password": new})
    assert response.status_code in (302, 303)
    assert not logged_in_as_alice(visitor)  # the reset itself logs no one in
    auth, response = half_way(app, password=new)
    assert response.headers["Location"] == SECOND_STAGE
    assert not logged_in_as_alice(auth)
    second_stage(auth, two_factor.next_code())
    assert logged_in_as_alice(auth) and is_on(auth)


# The house rules, and bad input


def new_pages(app):
    """(id, answer, logged in) for each kind of page the two-factor routes give."""
    auth = logged_in_browser(app)
    yield "settings-off", auth.client.get("/two-factor"), True
    yield "setup", start_setup(auth), True
    yield "setup-wrong-code", auth.post("/two-factor/enable", {"code": "000000", "current_password": PASSWORD}), True
    secret = secret_on(start_setup(auth).text)
    enabled = auth.post("/two-factor/enable", {"code": code(secret), "current_password": PASSWORD})
    yield "recovery-codes-shown", enabled, True
    two_factor = TwoFactor(secret, recovery_codes_on(enabled.text))
    yield "settings-on", auth.client.get("/two-factor"), True
    yield "disable-form", auth.client.get("/two-factor/disable"), True
    yield "disable-wrong-code", change(auth, "/two-factor/disable", "000000"), True
    yield "new-codes-form", auth.client.get("/two-factor/recovery-codes"), True
    visitor, _ = half_way(app)
    yield "second-stage", visitor.client.get(SECOND_STAGE), False
    yield "second-stage-wrong-code", second_stage(visitor, "000000"), False
    yield "second-stage-recovery-code", second_stage(visitor, two_factor.recovery_codes[0]), True


@pytest.mark.contract(
    "The two-factor pages keep the house rules: the site's layout and security headers, no inline script or "
    "style, every form a POST with a CSRF token, and Cache-Control: no-store for a logged-in user (step 10+)"
)
@pytest.mark.features(*TWO_FACTOR, "security-headers", "csrf")
def test_the_two_factor_pages_keep_the_house_rules(app):
    assert house_rule_problems(app, new_pages(app)) == []


# (id, body): TOKEN becomes the session's CSRF token; FIELD the form's password, where it has one.
HOSTILE_BODIES = [
    ("no-fields", b"csrf_token=TOKEN"),
    ("empty-code", b"csrf_token=TOKEN&FIELD&code="),
    ("100kB-code", b"csrf_token=TOKEN&FIELD&code=" + b"1" * 100_000),
    ("non-utf8", b"csrf_token=TOKEN&FIELD&code=%FF%FE123456"),
    ("nul-byte", b"csrf_token=TOKEN&FIELD&code=123%00456"),
    ("full-width-digits", b"csrf_token=TOKEN&FIELD&code=%EF%BC%91%EF%BC%92%EF%BC%93%EF%BC%94%EF%BC%95%EF%BC%96"),
    ("repeated-field", b"csrf_token=TOKEN&FIELD&code=000000&code=111111"),
    ("array-field", b"csrf_token=TOKEN&FIELD&code[]=123456"),
    ("bad-percent-escapes", b"csrf_token=TOKEN&FIELD&code=%zz%"),
    ("sql-ish", b"csrf_token=TOKEN&FIELD&code=%27%20OR%20%271%27%3D%271"),
    ("hostile-password", b"csrf_token=TOKEN&code=123456&current_password=%FF%00" + b"p" * 100_000),
]


def send(auth, path, body):
    """POST a raw body, with this browser's CSRF token and alice's password put in; the answer, checked."""
    field = b"current_password=" + PASSWORD.encode()
    data = body.replace(b"FIELD", field).replace(b"TOKEN", auth.token().encode())
    response = auth.client.post(path, data=data, content_type=FORM)
    assert response.status_code < 500, path
    assert "Traceback" not in response.text
    if response.status_code == 200:
        assert "csrf_token" in inputs(response.text), path  # a form again
    return response


@pytest.mark.contract(
    "Broken or hostile bodies sent to POST /login/two-factor and the two-factor forms get a 4xx or the form "
    "again, never a 500, and change nothing (step 10+)"
)
@pytest.mark.features(*TWO_FACTOR)
@pytest.mark.parametrize("body", [b[1] for b in HOSTILE_BODIES], ids=[b[0] for b in HOSTILE_BODIES])
def test_hostile_bodies_to_the_two_factor_forms_are_never_a_500(app, body):
    """Each body goes to every two-factor form, in the state where that form is live."""
    auth = logged_in_browser(app)
    start_setup(auth)
    send(auth, "/two-factor/enable", body)
    assert is_on(auth) is False
    turn_on(auth, PASSWORD)
    for path in ("/two-factor/disable", "/two-factor/recovery-codes"):
        send(auth, path, body)
        assert is_on(auth), path
    visitor, _ = half_way(app)
    send(visitor, SECOND_STAGE, body)
    assert not logged_in_as_alice(visitor)
