"""Email confirmation (step 09+): a sign-up that tells strangers nothing, a link that proves the address, a new address.

As in test_password_reset.py, every test gets a real SMTP server of its own
on a free loopback port (harness/smtp.py), the app sends its mail there, and
the tests read the links from the messages that arrived, as a user would.
"""

import hashlib
import statistics
import time
from urllib.parse import urlsplit

import pytest
from itsdangerous import URLSafeTimedSerializer

from harness.accounts import CHECK_INBOX
from harness.accounts import USERS
from harness.apps import AuthActions
from harness.apps import browser
from harness.apps import can_log_in
from harness.apps import close_database
from harness.apps import house_rule_problems
from harness.apps import is_anonymous
from harness.apps import logged_in_browser
from harness.apps import session_tables
from harness.apps import stored_strings
from harness.pages import inputs
from harness.pages import links
from harness.pages import message_at
from harness.pages import password_field_problems
from harness.pages import text
from harness.smtp import body as body_of
from harness.smtp import links as links_in

CONFIRMED = "Your email address is confirmed. Please log in."
INVALID_LINK = "That confirmation link is invalid or has expired."
CONFIRM_FIRST = "Please confirm your email address first."
INVALID_LOGIN = "Invalid username or password."
INVALID_RESET_LINK = "That reset link is invalid or has expired."
FORM = "application/x-www-form-urlencoded"
NEW_PASSWORD = "a-brand-new-passphrase"
ALICE = USERS["alice"]["email"]
BOB = USERS["bob"]["email"]
# The address alice moves to at /change-email.
NEW_ADDRESS = "alice.moved@example.com"
# A newcomer's sign-up; their address is USERNAME@example.com.
NEWCOMER = {"password": "a-long-passphrase", "confirm_password": "a-long-passphrase"}
# Generous limits, so that only the tests about limits meet them.
LIMITS = {
    "REGISTER_LIMIT_PER_ADDRESS": "100 per hour",
    "RESET_LIMIT_PER_ADDRESS": "100 per hour",
    "RESET_LIMIT_PER_RECIPIENT": "100 per hour",
    "CONFIRM_LIMIT_PER_ADDRESS": "100 per hour",
    "CONFIRM_LIMIT_PER_RECIPIENT": "100 per hour",
}


@pytest.fixture(name="test_config")
def mail_to_the_inbox(test_config, inbox):
    """The suite's test configuration, sending mail to this test's SMTP server."""
    # Flask-Mail sends nothing while TESTING is on, unless told otherwise.
    return test_config | inbox.config() | LIMITS | {"MAIL_SUPPRESS_SEND": False}


def address_of(username):
    return f"{username}@example.com"


def sign_up(app, username="carol", email=None, address="198.51.100.1"):
    """A new browser sends the sign-up form; return the browser (an AuthActions) and the answer."""
    auth = browser(app, address)
    fields = NEWCOMER | {"username": username, "email": email or address_of(username)}
    return auth, auth.post("/register", fields)


def shown(auth, response, *typed):
    """What the visitor sees: status, where a redirect leads, and the words of the page shown at the end.

    A redirect is followed once, as a browser does (a flashed message shows
    there). What the visitor typed is blanked out: a page may repeat it.
    """
    location = response.headers.get("Location")
    page = auth.client.get(location) if response.status_code in (302, 303) else response
    words = text(page.text)
    for value in typed:
        words = words.replace(value, "<typed>")
    return response.status_code, location, page.status_code, words


def mail_to(inbox, address, count=1):
    """The `count`-th message to `address`, once it has arrived."""
    messages = inbox.wait_to(address, count)
    assert len(messages) >= count, f"{len(messages)} messages to {address}, not {count}"
    return messages[count - 1]


def path_of(link):
    return urlsplit(link).path


def token_of(link):
    return path_of(link).rsplit("/", 1)[1]


def confirm_link(inbox, username="carol", count=1):
    """The /confirm/<token> link of the `count`-th message to the user's address."""
    message = mail_to(inbox, address_of(username), count)
    found = [link for link in links_in(message) if path_of(link).startswith("/confirm/")]
    assert len(found) == 1, f"not one confirmation link in: {links_in(message)}"
    return found[0]


def signed_up(app, inbox, username="carol"):
    """Sign `username` up, and return the confirmation link they were sent."""
    _, response = sign_up(app, username)
    assert response.status_code < 400, response.status_code
    return confirm_link(inbox, username)


def refused(client, link):
    """The link redirects to /confirm, and the page there says the link is no good."""
    response = client.get(path_of(link))
    assert response.status_code < 500
    if response.status_code not in (302, 303) or response.headers["Location"] != "/confirm":
        return False
    return text(client.get("/confirm").text).count(INVALID_LINK) == 1


def ask_for_reset(app, address, client_address="198.51.100.1"):
    """A new browser asks for a reset link for `address`; return the answer."""
    return browser(app, client_address).post("/reset-password", {"email": address})


def resets_to(app, inbox, owner, other):
    """Ask for a reset link for the address `other`, then for `owner`'s; return once `owner`'s email is in."""
    already = len(inbox.to(owner))
    ask_for_reset(app, other)
    ask_for_reset(app, owner)
    mail_to(inbox, owner, already + 1)
    inbox.settle(0.2)  # and anything on its way to `other`


def is_reset_mail(message):
    return any(path_of(link).startswith("/reset-password/") for link in links_in(message))


def reset_mail_to(inbox, address):
    """The reset emails sent to `address` so far."""
    return [message for message in inbox.to(address) if is_reset_mail(message)]


def message_after(html, blank, name):
    """The words after the input `name`, up to the next named input (or the form's end), that `blank` lacks."""

    def after(page):
        start = page.index(">", page.index(f'name="{name}"')) + 1  # past the input itself
        ends = [end for end in (page.find('name="', start), page.find("</form>", start)) if end != -1]
        end = min(ends, default=len(page))
        return set(text(page[start : page.rfind("<", start, end) if ends else end]).lower().split())

    return " ".join(sorted(after(html) - after(blank)))


# Sign-up


@pytest.mark.contract(
    "POST /register with valid input no longer logs in: it answers "
    "'Check your inbox: we have sent you a link to confirm your address.' (step 09+)"
)
@pytest.mark.features("registration", "email-confirmation", "profile")
def test_sign_up_no_longer_logs_in(app, inbox, database_url):
    auth, response = sign_up(app)
    assert response.status_code in (200, 302, 303), response.status_code
    assert CHECK_INBOX in shown(auth, response)[3]
    assert is_anonymous(auth.client)
    # The account is made, all the same: one row holds its name.
    assert stored_strings(database_url, skip=session_tables(app)).count("carol") == 1


@pytest.mark.contract(
    "POST /register answers the same page, status and words whether or not an account already uses that email"
)
@pytest.mark.features("registration", "email-confirmation")
def test_sign_up_answers_alike_for_a_taken_and_a_free_address(app, inbox):
    answers = {}
    for kind, username, email in [("taken", "carol", ALICE), ("free", "dave", address_of("dave"))]:
        auth, response = sign_up(app, username, email)
        answers[kind] = shown(auth, response, username, email)
    assert answers["taken"] == answers["free"]
    assert CHECK_INBOX in answers["free"][3]


@pytest.mark.contract(
    "A sign-up with an email already in use makes no second account; its owner gets an email saying someone "
    "tried to sign up with it, with links to /login and /reset-password"
)
@pytest.mark.features("registration", "email-confirmation", "email")
def test_a_sign_up_with_a_taken_address_makes_no_account_and_tells_its_owner(app, inbox, database_url):
    skip = session_tables(app)
    assert stored_strings(database_url, skip=skip).count(ALICE) == 1
    for typed in [ALICE, "Alice@EXAMPLE.com"]:  # one mailbox, however it is spelt
        _, response = sign_up(app, "carol", typed)
        assert response.status_code < 400
    stored = stored_strings(database_url, skip=skip)
    assert stored.count(ALICE) == 1
    assert "carol" not in stored
    assert not can_log_in(app, "carol", NEWCOMER["password"])
    mail_to(inbox, ALICE)
    notices = inbox.settle(0.2)
    # Only alice heard of it (once for each try, or once: the step may cap them).
    assert [m.envelope_to for m in notices] in ([[ALICE]], [[ALICE], [ALICE]])
    for notice in notices:
        words = " ".join(body_of(notice).lower().split())
        assert any(phrase in words for phrase in ("sign up", "signed up", "sign-up", "register")), words
        paths = {path_of(link) for link in links_in(notice)}
        assert {"/login", "/reset-password"} <= paths, paths
        assert not any(path.startswith("/confirm/") for path in paths)  # nothing to confirm: no account was made


@pytest.mark.contract("POST /register answers in about the same time whether or not an account already uses that email")
@pytest.mark.features("registration", "email-confirmation")
def test_sign_up_answers_in_about_the_same_time_for_a_taken_and_a_free_address(app, create_app, test_config, inbox):
    """A coarse guard, not a measurement: medians of three tries each, within a factor no machine's noise reaches.

    With the password hashed at a real cost (a tenth of a second or more),
    an answer that skips the hash for a taken address (or does only it for a
    free one) is several times faster than the other. Timed until the answer
    is made, as the mail goes after it. The benchmark measures the real figure.
    """
    timed = create_app(test_config | {"BCRYPT_LOG_ROUNDS": 11})
    try:
        times = {"taken": [], "free": []}
        for n in range(3):
            for kind in ("taken", "free"):
                auth = browser(timed, f"198.51.100.{n + 1}")
                fields = NEWCOMER | {"username": f"{kind}{n}", "csrf_token": auth.token()}
                fields["email"] = ALICE if kind == "taken" else address_of(f"{kind}{n}")
                start = time.perf_counter()
                # Until the answer is made: the mail goes when it is closed (after the browser has it all).
                response = auth.client.post("/register", data=fields, buffered=False)
                times[kind].append(time.perf_counter() - start)
                response.close()
                assert response.status_code < 400
        taken, free = statistics.median(times["taken"]), statistics.median(times["free"])
        assert max(taken, free) / min(taken, free) < 3, f"taken {taken:.3f} s, free {free:.3f} s: {times}"
    finally:
        close_database(timed)


@pytest.mark.contract("A taken username is still said at the field on POST /register (usernames are public)")
@pytest.mark.features("registration", "email-confirmation")
@pytest.mark.parametrize("username", ["alice", "ALICE"])
def test_a_taken_username_is_still_said_at_the_field(app, inbox, username):
    auth = browser(app)
    blank = auth.client.get("/register").text
    response = auth.post("/register", NEWCOMER | {"username": username, "email": address_of("carol")})
    assert response.status_code == 200
    message = message_at(response.text, blank, "username", "email")
    assert any(word in message for word in ("taken", "exists", "in use")), message
    assert CHECK_INBOX not in text(response.text)
    assert inbox.settle(0.2) == []  # no account, so no link


# The confirmation link


@pytest.mark.contract(
    "The confirmation email holds one link, <scheme>://<host>/confirm/<token>, to the address signed up with"
)
@pytest.mark.features("registration", "email-confirmation", "email")
def test_the_confirmation_email_holds_one_link(app, inbox):
    sign_up(app, "carol", "Carol@EXAMPLE.com")
    message = mail_to(inbox, "Carol@example.com")  # the address in its normal form
    assert message.envelope_to == ["Carol@example.com"]
    [link] = links_in(message)
    parts = urlsplit(link)
    assert parts.scheme in ("http", "https")
    assert parts.netloc == "localhost"  # the test client's host, a trusted one
    assert parts.path.startswith("/confirm/") and len(token_of(link)) >= 16, link


# (id, the host the browser's requests name, other headers): every request
# of that browser, the form's GET too, goes there, so its CSRF token is good.
HOSTILE_HOSTS = [
    ("host", "evil.example", {}),
    ("trusted-name-as-prefix", "localhost.evil.example", {}),
    ("forwarded-host", "localhost", {"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "https"}),
]


@pytest.mark.contract(
    "A request's untrusted Host header never yields a confirmation link to that host (a 400, or a trusted host)"
)
@pytest.mark.features("registration", "email-confirmation")
@pytest.mark.parametrize(("host", "headers"), [h[1:] for h in HOSTILE_HOSTS], ids=[h[0] for h in HOSTILE_HOSTS])
def test_a_forged_host_never_makes_the_confirmation_link(app, inbox, host, headers):
    client = app.test_client()
    page = client.get("/register", base_url=f"http://{host}", headers=headers)
    assert page.status_code in (200, 400), page.status_code
    form = NEWCOMER | {"username": "carol", "email": address_of("carol")}
    if page.status_code == 200:
        form["csrf_token"] = inputs(page.text)["csrf_token"]["value"]
    response = client.post("/register", data=form, base_url=f"http://{host}", headers=headers)
    assert response.status_code in (200, 302, 303, 400), response.status_code
    if response.status_code != 400:  # the form was taken: the link went, to a trusted host
        [link] = links_in(mail_to(inbox, address_of("carol")))
        assert urlsplit(link).netloc == "localhost", link
    for message in inbox.settle(0.2):
        for link in links_in(message):
            assert "evil" not in urlsplit(link).netloc, link


@pytest.mark.contract(
    "GET on the confirmation link confirms the address and redirects to /login flashing "
    "'Your email address is confirmed. Please log in.'; it never logs in"
)
@pytest.mark.features("registration", "email-confirmation", "login", "flash")
def test_the_confirmation_link_confirms_and_does_not_log_in(app, inbox):
    link = signed_up(app, inbox)
    assert not can_log_in(app, "carol", NEWCOMER["password"])  # not yet
    client = app.test_client()
    response = client.get(path_of(link))
    assert response.status_code in (302, 303)
    assert response.headers["Location"] == "/login"
    assert text(client.get("/login").text).count(CONFIRMED) == 1
    assert is_anonymous(client)
    assert can_log_in(app, "carol", NEWCOMER["password"])


@pytest.mark.contract(
    "A used confirmation link redirects to /confirm flashing 'That confirmation link is invalid or has expired.'"
)
@pytest.mark.features("registration", "email-confirmation", "flash")
def test_a_used_confirmation_link_is_refused(app, inbox):
    link = signed_up(app, inbox)
    assert app.test_client().get(path_of(link)).headers["Location"] == "/login"
    assert refused(app.test_client(), link)
    assert can_log_in(app, "carol", NEWCOMER["password"])  # and the account stays confirmed


@pytest.mark.contract(
    "A confirmation link older than CONFIRM_TOKEN_MAX_AGE seconds redirects to /confirm flashing "
    "'That confirmation link is invalid or has expired.'"
)
@pytest.mark.features("registration", "email-confirmation", "flash")
def test_an_expired_confirmation_link_is_refused(app, create_app, test_config, inbox, pass_time):
    app = create_app(test_config | {"CONFIRM_TOKEN_MAX_AGE": 1})
    try:
        fresh, old = signed_up(app, inbox, "dave"), signed_up(app, inbox, "carol")
        assert app.test_client().get(path_of(fresh)).headers["Location"] == "/login"  # in time: it works
        pass_time(2.1)  # token times are whole seconds: over 1 s old for sure
        assert refused(app.test_client(), old)
        assert not can_log_in(app, "carol", NEWCOMER["password"])
        assert can_log_in(app, "dave", NEWCOMER["password"])
    finally:
        close_database(app)


def flip(token):
    """The token with one character changed: not the last, whose low bits may be base64 padding."""
    return token[:-3] + ("A" if token[-3] != "A" else "B") + token[-2:]


# Ways to change a real token, each of which must make it worthless.
ALTERED = {
    "a-character-changed": flip,
    "cut-short": lambda token: token[: len(token) // 2],
    "doubled": lambda token: token + token,
    "no-signature": lambda token: token.rsplit(".", 1)[0] if "." in token else token[:-10],
    "garbage": lambda token: "not-a-token",
    "non-ascii": lambda token: "\u00e9t\u00e9" + token,
    "huge": lambda token: "A" * 20_000,
}


@pytest.mark.contract(
    "An altered confirmation link redirects to /confirm flashing 'That confirmation link is invalid or has expired.', "
    "never a 500"
)
@pytest.mark.features("registration", "email-confirmation", "flash")
@pytest.mark.parametrize("how", ALTERED.values(), ids=ALTERED.keys())
def test_an_altered_confirmation_link_is_refused(app, inbox, how):
    link = signed_up(app, inbox)
    bad = how(token_of(link))
    assert bad != token_of(link)
    assert refused(app.test_client(), f"http://localhost/confirm/{bad}")
    assert not can_log_in(app, "carol", NEWCOMER["password"])
    assert app.test_client().get(path_of(link)).headers["Location"] == "/login"  # the real one still works


@pytest.mark.contract(
    "A reset link's token is refused as a confirmation link, and a confirmation token as a reset link"
)
@pytest.mark.features("registration", "email-confirmation", "password-reset", "flash")
def test_a_token_for_the_other_purpose_is_refused(app, inbox):
    link = signed_up(app, inbox)
    assert ask_for_reset(app, address_of("carol")).status_code == 200
    [reset] = [message for message in inbox.wait_to(address_of("carol"), 2) if is_reset_mail(message)]
    [reset_link] = [link for link in links_in(reset) if path_of(link).startswith("/reset-password/")]
    # A reset token at /confirm/: carol has proved nothing by it.
    assert refused(app.test_client(), f"http://localhost/confirm/{token_of(reset_link)}")
    assert not can_log_in(app, "carol", NEWCOMER["password"])
    # A confirmation token at /reset-password/: it sets no password.
    client = app.test_client()
    wrong = f"/reset-password/{token_of(link)}"
    response = client.get(wrong)
    assert response.status_code in (302, 303) and response.headers["Location"] == "/reset-password"
    assert text(client.get("/reset-password").text).count(INVALID_RESET_LINK) == 1
    response = AuthActions(client).post(wrong, {"password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD})
    assert response.status_code in (302, 303) and response.headers["Location"] == "/reset-password"
    # Both real links still do their own work.
    assert app.test_client().get(path_of(link)).headers["Location"] == "/login"
    assert can_log_in(app, "carol", NEWCOMER["password"])


# Other uses of one secret key: a serializer with no salt of its own, Flask's
# session cookie, Flask-WTF's CSRF tokens, reset links and changes of address.
OTHER_PURPOSES = ["itsdangerous", "cookie-session", "wtf-csrf-token", "reset-password", "change-email"]


@pytest.mark.contract(
    "A token signed with the same key for another purpose (another salt, the same payload) is refused as a "
    "confirmation link"
)
@pytest.mark.features("registration", "email-confirmation", "flash")
@pytest.mark.parametrize("salt", OTHER_PURPOSES)
def test_a_token_signed_for_another_purpose_is_refused_as_a_confirmation_link(app, inbox, salt):
    link = signed_up(app, inbox)
    # What the real token holds, read without checking its signature (it is only signed, not secret).
    _, payload = URLSafeTimedSerializer(app.secret_key).loads_unsafe(token_of(link))
    assert payload is not None, "not an itsdangerous token"
    for digest in (hashlib.sha256, hashlib.sha1):
        other = URLSafeTimedSerializer(app.secret_key, salt=salt, signer_kwargs={"digest_method": digest})
        assert refused(app.test_client(), f"http://localhost/confirm/{other.dumps(payload)}"), digest.__name__
    assert not can_log_in(app, "carol", NEWCOMER["password"])
    assert app.test_client().get(path_of(link)).headers["Location"] == "/login"  # the real one still works


# Logging in before confirming


@pytest.mark.contract(
    "Logging in to an unconfirmed account with the right password: 200, the form again with "
    "'Please confirm your email address first.' and a link to /confirm; not logged in"
)
@pytest.mark.features("registration", "email-confirmation", "login")
def test_an_unconfirmed_account_is_asked_to_confirm_first(app, inbox):
    signed_up(app, inbox)
    auth = browser(app)
    response = auth.login("carol", NEWCOMER["password"])
    assert response.status_code == 200
    assert {"username", "password"} <= set(inputs(response.text))  # the form again
    shown_words = text(response.text)
    assert CONFIRM_FIRST in shown_words
    assert INVALID_LOGIN not in shown_words
    assert "/confirm" in {path_of(link) for link in links(response.text)}
    assert is_anonymous(auth.client)


@pytest.mark.contract("Logging in to an unconfirmed account with a wrong password gets 'Invalid username or password.'")
@pytest.mark.features("registration", "email-confirmation", "login")
@pytest.mark.parametrize("password", ["not-her-password", ""])
def test_an_unconfirmed_account_with_a_wrong_password_gets_the_usual_message(app, inbox, password):
    signed_up(app, inbox)
    auth = browser(app)
    response = auth.login("carol", password)
    assert response.status_code == 200
    assert INVALID_LOGIN in text(response.text)
    assert CONFIRM_FIRST not in text(response.text)  # only the password's owner learns the account waits
    assert is_anonymous(auth.client)


@pytest.mark.contract("create-user makes confirmed accounts: they log in at once")
@pytest.mark.features("email-confirmation", "login")
def test_create_user_makes_confirmed_accounts(app, runner, inbox):
    assert can_log_in(app, "alice")  # made by create-user, as every test's users are
    password = NEWCOMER["password"]
    result = runner.invoke(
        args=["create-user", "dave", "--email", address_of("dave")], input=f"{password}\n{password}\n"
    )
    assert result.exit_code == 0, result.output
    assert can_log_in(app, "dave", password)


@pytest.mark.contract("Completing a password reset confirms the address (the link proved it)")
@pytest.mark.features("registration", "email-confirmation", "password-reset", "login")
def test_a_completed_reset_confirms_the_address(app, inbox):
    signed_up(app, inbox)
    assert ask_for_reset(app, address_of("carol")).status_code == 200
    [reset] = [message for message in inbox.wait_to(address_of("carol"), 2) if is_reset_mail(message)]
    [link] = [link for link in links_in(reset) if path_of(link).startswith("/reset-password/")]
    client = app.test_client()
    assert client.get(path_of(link)).status_code == 200
    response = AuthActions(client).post(path_of(link), {"password": NEW_PASSWORD, "confirm_password": NEW_PASSWORD})
    assert response.status_code in (302, 303) and response.headers["Location"] == "/login"
    assert can_log_in(app, "carol", NEW_PASSWORD)


# Asking for a new link


def ask_for_link(app, address, client_address="198.51.100.1"):
    """A new browser asks /confirm for a new link for `address`; return the browser and the answer."""
    auth = browser(app, client_address)
    return auth, auth.post("/confirm", {"email": address})


@pytest.mark.contract("GET /confirm: a form with email and csrf_token, to send a new link")
@pytest.mark.features("email-confirmation", "csrf")
def test_the_confirm_form(client):
    response = client.get("/confirm")
    assert response.status_code == 200
    fields = inputs(response.text)
    assert "email" in fields
    assert fields["csrf_token"]["value"]


@pytest.mark.contract(
    "POST /confirm gives the same answer for every address: unconfirmed, confirmed or unknown; "
    "an unconfirmed account gets a new link"
)
@pytest.mark.features("registration", "email-confirmation")
def test_the_confirm_form_answers_alike_for_every_address(app, inbox):
    signed_up(app, inbox)
    answers = set()
    for address in [address_of("carol"), ALICE, "nobody@example.com"]:
        auth, response = ask_for_link(app, address)
        assert response.status_code < 400, (address, response.status_code)
        answers.add(shown(auth, response, address))
    assert len(answers) == 1, answers
    # The new link works.
    link = confirm_link(inbox, "carol", 2)
    assert app.test_client().get(path_of(link)).headers["Location"] == "/login"
    assert can_log_in(app, "carol", NEWCOMER["password"])


@pytest.mark.contract("POST /confirm is limited per client address: over the limit, 429 with Retry-After")
@pytest.mark.features("email-confirmation", "rate-limits")
def test_confirm_requests_are_limited_per_address(app, create_app, test_config, inbox):
    app = create_app(test_config | {"CONFIRM_LIMIT_PER_ADDRESS": "3 per 15 minutes"})
    try:
        answers = [ask_for_link(app, f"someone{n}@example.com")[1].status_code for n in range(4)]
        assert answers[3] == 429 and 429 not in answers[:3] and max(answers[:3]) < 400, answers
        again = ask_for_link(app, "someone@example.com")[1]
        assert again.status_code == 429
        assert int(again.headers["Retry-After"]) > 0
        assert ask_for_link(app, "someone@example.com", "203.0.113.9")[1].status_code < 400
    finally:
        close_database(app)


@pytest.mark.contract(
    "Confirmation emails to one address are capped, whoever asks, silently: the same answer, and no more email"
)
@pytest.mark.features("registration", "email-confirmation", "rate-limits", "email")
def test_confirmation_emails_per_recipient_are_capped_silently(app, create_app, test_config, inbox):
    app = create_app(test_config | {"CONFIRM_LIMIT_PER_RECIPIENT": "2 per 15 minutes"})
    try:
        signed_up(app, inbox)
        signed_up(app, inbox, "dave")
        spellings = ["carol@example.com", "CAROL@example.com", "Carol@Example.COM", "carol@example.com"]
        answers = set()
        for n, spelling in enumerate([*spellings, "nobody@example.com"]):
            auth, response = ask_for_link(app, spelling, f"198.51.100.{n + 1}")
            answers.add(shown(auth, response, spelling))
        assert len(answers) == 1, answers  # nothing tells the cap, or the account
        inbox.wait_to(address_of("carol"), 2)
        inbox.settle(0.2)
        # The sign-up's link, and at most two more (whether the sign-up's counts is the step's choice).
        assert 2 <= len(inbox.to(address_of("carol"))) <= 3, len(inbox.to(address_of("carol")))
        # Dave's inbox has its own count.
        ask_for_link(app, address_of("dave"), "203.0.113.9")
        confirm_link(inbox, "dave", 2)
    finally:
        close_database(app)


# Changing the email address


def change_email(auth, address, current=None):
    """POST the change-email form for a logged-in browser (an AuthActions); return the answer."""
    if current is None:
        current = USERS["alice"]["password"]
    return auth.post("/change-email", {"email": address, "current_password": current})


def change_link(inbox, address, count=1):
    """The one link with a token (a path of two parts or more) in the `count`-th message to `address`."""
    message = mail_to(inbox, address, count)
    found = [link for link in links_in(message) if path_of(link).strip("/").count("/") >= 1]
    assert len(found) == 1, f"not one link with a token in: {links_in(message)}"
    return found[0]


@pytest.mark.contract("GET /change-email needs a login: a form with email, current_password and csrf_token")
@pytest.mark.features("change-email", "csrf")
def test_the_change_email_form_needs_a_login(app, client):
    response = client.get("/change-email")
    assert response.status_code in (302, 303)
    assert response.headers["Location"].startswith("/login")
    page = logged_in_browser(app).client.get("/change-email")
    assert page.status_code == 200
    fields = inputs(page.text)
    assert fields["email"].get("type") in ("email", "text")
    assert fields["current_password"].get("type") == "password"
    assert fields["csrf_token"]["value"]


@pytest.mark.contract(
    "Password inputs say autocomplete current-password or new-password, have no maxlength under 64 and allow pasting"
)
@pytest.mark.features("change-email")
def test_the_change_email_password_input_lets_password_managers_help(app):
    page = logged_in_browser(app).client.get("/change-email")
    assert password_field_problems(page.text, {"current_password": "current-password"}) == []


@pytest.mark.contract(
    "A wrong current password at /change-email gives the form again, with a message at that field; nothing is sent"
)
@pytest.mark.features("change-email")
@pytest.mark.parametrize("current", ["not-her-password", "", "\U0001f600" * 40])
def test_a_wrong_current_password_changes_no_address(app, inbox, current):
    alice = logged_in_browser(app)
    blank = alice.client.get("/change-email").text
    response = change_email(alice, NEW_ADDRESS, current)
    assert response.status_code == 200
    assert message_after(response.text, blank, "current_password"), "no message at the current_password field"
    assert not is_anonymous(alice.client)
    assert inbox.settle(0.2) == []


@pytest.mark.contract(
    "At /change-email the address changes only when the link sent to the new address is followed; the old address "
    "gets a notice; until then logins and resets use the old one"
)
@pytest.mark.features("change-email", "password-reset")
def test_a_new_address_is_used_only_once_its_link_is_followed(app, inbox):
    alice = logged_in_browser(app)
    assert change_email(alice, NEW_ADDRESS).status_code < 400
    link = change_link(inbox, NEW_ADDRESS)
    # Until the link is followed: the old address is hers, for logins and resets.
    resets_to(app, inbox, ALICE, NEW_ADDRESS)
    assert can_log_in(app, "alice")
    assert len(reset_mail_to(inbox, ALICE)) == 1
    assert reset_mail_to(inbox, NEW_ADDRESS) == []

    assert alice.client.get(path_of(link)).status_code < 400
    resets_to(app, inbox, NEW_ADDRESS, ALICE)
    assert len(reset_mail_to(inbox, NEW_ADDRESS)) == 1
    assert len(reset_mail_to(inbox, ALICE)) == 1  # the one from before: none since
    assert can_log_in(app, "alice")
    # The link went to the new address only; the old one got a notice (when asked, or when done), without it.
    assert all(link not in links_in(message) for message in inbox.to(ALICE))
    assert any(not is_reset_mail(message) for message in inbox.to(ALICE)), "no notice to the old address"


@pytest.mark.contract("A link from /change-email works once: used, it changes nothing again")
@pytest.mark.features("change-email", "password-reset")
def test_a_change_email_link_works_once(app, inbox):
    alice = logged_in_browser(app)
    first, second = "alice.first@example.com", "alice.second@example.com"
    assert change_email(alice, first).status_code < 400
    first_link = change_link(inbox, first)
    assert alice.client.get(path_of(first_link)).status_code < 400
    assert change_email(alice, second).status_code < 400
    assert alice.client.get(path_of(change_link(inbox, second))).status_code < 400
    # The first link again: she stays at the second address.
    for client in (alice.client, app.test_client()):
        assert client.get(path_of(first_link)).status_code < 500
    resets_to(app, inbox, second, first)
    assert len(reset_mail_to(inbox, second)) == 1
    assert reset_mail_to(inbox, first) == []


@pytest.mark.contract(
    "A new address already in use at /change-email gets the same answer as any other, its owner a notice, "
    "and nothing changes"
)
@pytest.mark.features("change-email", "password-reset")
@pytest.mark.parametrize("typed", [BOB, "BOB@Example.com"])
def test_a_new_address_in_use_gets_the_same_answer_and_its_owner_a_notice(app, inbox, typed):
    alice = logged_in_browser(app)
    answers = {}
    for kind, address in [("in-use", typed), ("free", NEW_ADDRESS)]:
        answers[kind] = shown(alice, change_email(alice, address), address)
    assert answers["in-use"] == answers["free"]
    assert answers["free"][0] < 400
    [notice] = inbox.wait_to(BOB)
    # Whatever the notice links to, following it moves nobody to bob's address.
    for link in links_in(notice):
        assert alice.client.get(path_of(link)).status_code < 500
    resets_to(app, inbox, BOB, ALICE)
    assert len(reset_mail_to(inbox, BOB)) == 1
    assert len(reset_mail_to(inbox, ALICE)) == 1
    assert can_log_in(app, "alice") and can_log_in(app, "bob")


# The house rules, on the new pages


def new_pages(app, inbox):
    """(id, answer, logged in) for each kind of answer the new routes give."""
    link = signed_up(app, inbox)
    visitor = browser(app)
    alice = logged_in_browser(app)
    yield "register-sent", sign_up(app, "dave")[1], False
    yield "confirm-form", visitor.client.get("/confirm"), False
    yield "confirm-sent", visitor.post("/confirm", {"email": address_of("carol")}), False
    yield "confirm-link", app.test_client().get(path_of(link)), False
    yield "confirm-link-refused", app.test_client().get(path_of(link)), False
    yield "unconfirmed-login", browser(app).login("carol", NEWCOMER["password"]), False
    yield "change-email-form", alice.client.get("/change-email"), True
    yield "change-email-wrong-password", change_email(alice, NEW_ADDRESS, "not-her-password"), True
    yield "change-email-sent", change_email(alice, NEW_ADDRESS), True
    yield "change-email-link", alice.client.get(path_of(change_link(inbox, NEW_ADDRESS))), True


@pytest.mark.contract(
    "The new routes keep the house rules: the site's layout and security headers, no inline script or style, "
    "POST with a CSRF token for every form, no-store for a logged-in user"
)
@pytest.mark.features("registration", "email-confirmation", "change-email", "security-headers", "csrf")
def test_the_new_pages_keep_the_house_rules(app, inbox):
    assert house_rule_problems(app, new_pages(app, inbox)) == []


# Hostile input on the new routes

HOSTILE_TOKENS = [
    ("huge", "A" * 20_000),
    ("non-utf8", "%FF%FE"),
    ("nul", "abc%00def"),
    ("newline", "abc%0D%0Adef"),
    ("dot-dot", "..%2F..%2Fetc%2Fpasswd"),
    ("dots-only", "..."),
    ("unicode", "\u00e9t\u00e9\U0001f600"),
    ("json", "%7B%22id%22%3A1%7D"),
]


@pytest.mark.contract("Malformed, huge or mis-encoded tokens in the new links get a redirect or a 4xx, never a 500")
@pytest.mark.features("registration", "email-confirmation", "change-email")
@pytest.mark.parametrize("route", ["confirm", "change-email"])
@pytest.mark.parametrize("token", [t[1] for t in HOSTILE_TOKENS], ids=[t[0] for t in HOSTILE_TOKENS])
def test_hostile_tokens_are_never_a_500(app, inbox, route, token):
    if route == "confirm":
        prefix = "/confirm"
        signed_up(app, inbox)
        client = app.test_client()
    else:
        alice = logged_in_browser(app)
        assert change_email(alice, NEW_ADDRESS).status_code < 400
        prefix = path_of(change_link(inbox, NEW_ADDRESS)).rsplit("/", 1)[0]
        client = alice.client
    response = client.get(f"{prefix}/{token}")
    assert response.status_code < 500
    assert "Traceback" not in response.text
    if route == "confirm" and response.status_code in (302, 303):
        assert response.headers["Location"] == "/confirm"
    assert not can_log_in(app, "carol", NEWCOMER["password"])  # nobody was confirmed by it


# (id, body): TOKEN becomes the session's CSRF token; FIELD the form's other field(s).
HOSTILE_BODIES = [
    ("no-fields", b"csrf_token=TOKEN"),
    ("empty-email", b"csrf_token=TOKEN&FIELD&email="),
    ("not-an-address", b"csrf_token=TOKEN&FIELD&email=alice"),
    ("100kB-email", b"csrf_token=TOKEN&FIELD&email=" + b"a" * 100_000 + b"@example.com"),
    ("non-utf8", b"csrf_token=TOKEN&FIELD&email=%FF%FEalice@example.com"),
    ("nul-byte", b"csrf_token=TOKEN&FIELD&email=carol%00@example.com"),
    ("header-injection", b"csrf_token=TOKEN&FIELD&email=carol@example.com%0D%0ABcc:%20evil@example.com"),
    ("two-addresses", b"csrf_token=TOKEN&FIELD&email=carol@example.com,evil@example.com"),
    ("repeated-field", b"csrf_token=TOKEN&FIELD&email=nobody@example.com&email=carol@example.com"),
    ("bad-percent-escapes", b"csrf_token=TOKEN&FIELD&email=%zz%"),
    ("hostile-password", b"csrf_token=TOKEN&email=carol@example.com&current_password=%FF%00" + b"p" * 100_000),
]


@pytest.mark.contract("Bad input to POST /confirm and POST /change-email gets a 4xx or the form again, never a 500")
@pytest.mark.features("registration", "email-confirmation", "change-email")
@pytest.mark.parametrize("path", ["/confirm", "/change-email"])
@pytest.mark.parametrize("body", [b[1] for b in HOSTILE_BODIES], ids=[b[0] for b in HOSTILE_BODIES])
def test_hostile_bodies_to_the_new_forms_are_never_a_500(app, inbox, path, body):
    if path == "/confirm":
        signed_up(app, inbox)  # carol, unconfirmed: her address may get a new link
    auth = logged_in_browser(app) if path == "/change-email" else browser(app)
    # The right current password, so that the address itself is what gets judged.
    field = b"current_password=" + USERS["alice"]["password"].encode() if path == "/change-email" else b"x=y"
    body = body.replace(b"FIELD", field).replace(b"TOKEN", auth.token().encode())
    response = auth.client.post(path, data=body, content_type=FORM)
    assert response.status_code < 500
    assert "Traceback" not in response.text
    if response.status_code == 200:
        assert "csrf_token" in inputs(response.text)  # a form again
    # No email went to more than one address, or to one smuggled in.
    for message in inbox.settle(0.2):
        assert len(message.envelope_to) == 1 and "evil" not in message.envelope_to[0], message.envelope_to
    assert can_log_in(app, "alice")
