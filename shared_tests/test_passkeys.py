"""Passkeys (step 11+): adding one from the profile, signing in with it, and every answer a step must refuse.

No browser here: a software authenticator (harness/passkeys.py) answers
the step's JSON endpoints as Chromium's would, and, where a test needs it,
as a phishing relay, a cloned authenticator or a tampered answer would.
The browser tests (e2e_tests/test_browser_passkeys.py) run the same
ceremonies in real Chromium with its virtual authenticator.
"""

import base64
import json
import logging

import pytest

from harness.accounts import USERS
from harness.apps import AuthActions
from harness.apps import browser
from harness.apps import close_database
from harness.apps import house_rule_problems
from harness.apps import is_anonymous
from harness.apps import logged_in_browser
from harness.apps import session_cookie
from harness.apps import travel
from harness.pages import links
from harness.pages import text
from harness.passkeys import SoftAuthenticator
from harness.passkeys import add_passkey
from harness.passkeys import b64url
from harness.passkeys import from_b64url
from harness.passkeys import login_button
from harness.passkeys import post_json
from harness.passkeys import registration_options
from harness.passkeys import sign_in
from harness.passkeys import sign_in_options
from harness.smtp import body as body_of
from harness.two_factor import turn_on

PASSKEYS = ("passkeys", "login", "profile")
PASSWORD = USERS["alice"]["password"]
# A challenge lasts this many seconds (FLASK_PASSKEY_CHALLENGE_TIMEOUT).
CHALLENGE_SECONDS = 300


@pytest.fixture(name="test_config")
def mail_to_the_inbox(test_config, inbox):
    """The suite's test configuration, sending mail to this test's SMTP server (the notices)."""
    return test_config | inbox.config() | {"MAIL_SUPPRESS_SEND": False}


@pytest.fixture
def authenticator(app):
    """alice's authenticator (software), at the step's own origin, with no passkey on it yet."""
    return SoftAuthenticator(app.config["WEBAUTHN_ORIGIN"])


@pytest.fixture
def alice(app, authenticator):
    """alice's browser, logged in with her password, after adding a passkey on `authenticator`."""
    auth = logged_in_browser(app)
    response = add_passkey(auth, authenticator, PASSWORD)
    assert response.status_code == 200, response.get_data(as_text=True)
    return auth


def logged_in_as(client, username):
    response = client.get("/profile")
    return response.status_code == 200 and username in text(response.text)


def refused(response):
    """Whether a ceremony's answer was refused: a 4xx with a JSON error for passkeys.js to show."""
    body = response.get_json(silent=True) or {}
    return 400 <= response.status_code < 500 and isinstance(body.get("error"), str)


# Adding a passkey


@pytest.mark.contract(
    "A logged-in user adds a passkey from the profile: a name and the current password, then a WebAuthn "
    "registration (resident key, user verification required); /passkeys lists it with its name, when it was "
    "added and when last used (step 11+)"
)
@pytest.mark.features(*PASSKEYS)
def test_a_passkey_is_added_and_listed(app, authenticator, inbox):
    auth = logged_in_browser(app)
    assert "/passkeys" in auth.client.get("/profile").text
    page = auth.post("/passkeys/add", {"name": "laptop", "current_password": PASSWORD})
    options = registration_options(page.text)["options"]
    assert options["rp"]["id"] == app.config["WEBAUTHN_RP_ID"]
    assert options["authenticatorSelection"]["residentKey"] == "required"
    assert options["authenticatorSelection"]["userVerification"] == "required"
    # The user handle is random, not the username or the id (WebAuthn, 14.6.1).
    assert from_b64url(options["user"]["id"]) not in (b"alice", b"1") and len(from_b64url(options["user"]["id"])) >= 16
    found = registration_options(page.text)
    response = post_json(auth.client, found["verify"], authenticator.create(options), found["csrf"])
    assert response.status_code == 200 and response.get_json()["redirect"] == "/passkeys"
    listing = text(auth.client.get("/passkeys").text)
    assert "laptop" in listing and "never" in listing
    # Its owner hears of a new way into the account.
    [mail] = inbox.wait_for(1)
    assert mail["To"] == USERS["alice"]["email"] and "passkey" in mail["Subject"].lower()
    assert "laptop" in body_of(mail)


@pytest.mark.contract("Adding a passkey needs the current password: a wrong one gives the form again (step 11+)")
@pytest.mark.features(*PASSKEYS)
@pytest.mark.parametrize(
    "fields", [{"current_password": "wrong password"}, {}, {"current_password": PASSWORD, "name": " "}]
)
def test_adding_a_passkey_needs_the_password_and_a_name(app, fields):
    auth = logged_in_browser(app)
    response = auth.post("/passkeys/add", {"name": "laptop"} | fields)
    assert response.status_code == 200
    assert "data-passkey" not in response.text and "/passkeys/add" in response.text
    assert "You have no passkey yet." in text(auth.client.get("/passkeys").text)


@pytest.mark.contract(
    "A registration answer is refused (4xx, no passkey kept) when it is for another origin, without user "
    "verification, for a challenge already used or expired, or from another session (step 11+)"
)
@pytest.mark.features(*PASSKEYS)
@pytest.mark.parametrize("case", ["other origin", "no user verification", "replayed", "expired", "other session"])
def test_a_bad_registration_is_refused(app, authenticator, case):
    auth = logged_in_browser(app)
    page = auth.post("/passkeys/add", {"name": "laptop", "current_password": PASSWORD})
    found = registration_options(page.text)
    client = auth.client
    answer = authenticator.create(
        found["options"],
        origin="http://localhost:8000" if case == "other origin" else None,
        user_verified=case != "no user verification",
    )
    if case == "replayed":
        assert post_json(client, found["verify"], answer, found["csrf"]).status_code == 200
        response = post_json(client, found["verify"], answer, found["csrf"])
        assert refused(response)
        assert client.get("/passkeys").text.count("<td>laptop</td>") == 1
        return
    if case == "other session":  # bob's browser sends the answer to alice's challenge
        client = logged_in_browser(app, "bob").client
        response = post_json(client, found["verify"], answer, AuthActions(client).token())
    elif case == "expired":
        with travel(CHALLENGE_SECONDS + 1):
            response = post_json(client, found["verify"], answer, found["csrf"])
    else:
        response = post_json(client, found["verify"], answer, found["csrf"])
    assert refused(response), response.status_code
    assert "You have no passkey yet." in text(auth.client.get("/passkeys").text)


# Signing in with it


@pytest.mark.contract(
    'On /login, "Sign in with a passkey" (POST /login/passkey/options, then POST /login/passkey with the '
    "authenticator's answer) logs in with no username or password typed, with a new session id (step 11+)"
)
@pytest.mark.features(*PASSKEYS, "server-sessions")
@pytest.mark.asvs("7.2.4")
def test_a_passkey_signs_in_with_no_username_or_password(app, alice, authenticator):
    client = app.test_client()
    button, options = sign_in_options(client)
    # Discoverable: no list of credentials, so no username is needed to make one.
    assert options.get("allowCredentials", []) == [] and options["userVerification"] == "required"
    assert options["rpId"] == app.config["WEBAUTHN_RP_ID"]
    before = session_cookie(app, client)
    response = post_json(client, button["verify"], authenticator.get(options), button["csrf"])
    assert response.status_code == 200 and response.get_json()["redirect"] == "/profile"
    assert logged_in_as(client, "alice")
    after = session_cookie(app, client)
    assert after != before
    old = app.test_client()
    old.set_cookie(app.config["SESSION_COOKIE_NAME"], before)
    assert is_anonymous(old)
    assert "never" not in text(alice.client.get("/passkeys").text)


@pytest.mark.contract(
    "A passkey counts as both factors: with two-factor on, it logs in with no code; and at /login/two-factor it "
    "answers in place of a code, but only with a passkey of the user who gave the password (step 11+)"
)
@pytest.mark.features(*PASSKEYS, "two-factor")
def test_a_passkey_counts_as_both_factors(app, alice, authenticator):
    turn_on(alice, PASSWORD)
    client = app.test_client()
    assert sign_in(client, authenticator).status_code == 200 and logged_in_as(client, "alice")
    # Half-way: alice's password, then her passkey instead of a code.
    half = browser(app, "203.0.113.9")
    assert half.login("alice").headers["Location"] == "/login/two-factor"
    response = sign_in(half.client, authenticator, page="/login/two-factor")
    assert response.status_code == 200 and logged_in_as(half.client, "alice")
    # bob's passkey does not finish alice's login.
    bob_key = SoftAuthenticator(app.config["WEBAUTHN_ORIGIN"])
    assert add_passkey(logged_in_browser(app, "bob"), bob_key, USERS["bob"]["password"]).status_code == 200
    half = browser(app, "203.0.113.10")
    half.login("alice")
    button, options = sign_in_options(half.client, "/login/two-factor")
    assert len(options["allowCredentials"]) == 1
    [bob_credential] = bob_key.credentials
    answer = bob_key.get({**options, "allowCredentials": []}, credential=bob_credential)
    assert refused(post_json(half.client, button["verify"], answer, button["csrf"]))
    assert is_anonymous(half.client)


def tampered_client_data(answer):
    """The answer with its client data changed after signing (a relay rewriting the origin, say)."""
    data = json.loads(from_b64url(answer["response"]["clientDataJSON"]))
    data["origin"] = "http://localhost:5000" if data["origin"] != "http://localhost:5000" else "http://localhost:5001"
    answer["response"]["clientDataJSON"] = b64url(json.dumps(data).encode())
    return answer


@pytest.mark.contract(
    "A sign-in answer is refused (4xx) and logs no one in when it is replayed, altered, signed for another origin "
    "or relying party id, made without user verification, by an unknown passkey, with a sign counter that did not "
    "go up, for another session's challenge, for a challenge already answered once, after the challenge expired, "
    "naming another user handle, or without the CSRF token (step 11+)"
)
@pytest.mark.features(*PASSKEYS)
@pytest.mark.parametrize(
    "case",
    [
        "replayed",
        "replayed in a new ceremony",
        "altered client data",
        "other origin",
        "other relying party",
        "no user verification",
        "unknown passkey",
        "counter went back",
        "other session",
        "expired",
        "no csrf token",
        "no challenge asked",
        "second answer to one challenge",
        "other user handle",
    ],
)
def test_a_bad_sign_in_is_refused(app, alice, authenticator, case):
    client = app.test_client()
    if case == "no challenge asked":
        button = login_button(client.get("/login").text)
        old = authenticator.get({"rpId": app.config["WEBAUTHN_RP_ID"], "challenge": b64url(b"0" * 32)})
        assert refused(post_json(client, button["verify"], old, button["csrf"]))
        assert is_anonymous(client)
        return
    button, options = sign_in_options(client)
    verify, token = button["verify"], button["csrf"]
    if case in ("replayed", "replayed in a new ceremony", "counter went back"):
        # A first sign-in that works, in a browser of its own, then the same again here.
        first = app.test_client()
        first_button, first_options = sign_in_options(first)
        answer = authenticator.get(first_options)
        assert post_json(first, first_button["verify"], answer, first_button["csrf"]).status_code == 200
        if case == "replayed":
            # Someone who copied the answer, in a browser that asked for no challenge.
            client = app.test_client()
            token = login_button(client.get("/login").text)["csrf"]
        elif case == "counter went back":
            # A clone of the authenticator signs with the count the original last sent.
            answer = authenticator.get(options, sign_count=authenticator.credentials[-1].sign_count)
    elif case == "altered client data":
        answer = tampered_client_data(authenticator.get(options))
    elif case == "other origin":
        # A phishing relay at another origin: the browser signs the origin it is on.
        answer = authenticator.get(options, origin="http://localhost:8000")
    elif case == "other relying party":
        answer = authenticator.get(options, rp_id="login-steps.example")
    elif case == "no user verification":
        answer = authenticator.get(options, user_verified=False)
    elif case == "unknown passkey":
        stranger = SoftAuthenticator(app.config["WEBAUTHN_ORIGIN"])
        stranger.create({"rp": {"id": options["rpId"]}, "user": {"id": b64url(b"x" * 32)}, "challenge": "AA"})
        answer = stranger.get(options)
    elif case == "second answer to one challenge":
        # One answer refused (a relay's), then a good one to the same challenge: it was used up by the first.
        assert refused(post_json(client, verify, authenticator.get(options, origin="http://localhost:8000"), token))
        answer = authenticator.get(options)
    elif case == "other user handle":
        # The user handle is not signed: the step checks that it names the passkey's owner.
        answer = authenticator.get(options)
        answer["response"]["userHandle"] = b64url(b"y" * 32)
    elif case == "other session":
        # Another browser's challenge, answered in this one (which asked for its own).
        _, theirs = sign_in_options(app.test_client())
        answer = authenticator.get(theirs)
    else:
        answer = authenticator.get(options)
    if case == "expired":
        with travel(CHALLENGE_SECONDS + 1):
            response = post_json(client, verify, answer, token)
    else:
        response = post_json(client, verify, answer, None if case == "no csrf token" else token)
    assert 400 <= response.status_code < 500, response.status_code
    if case != "no csrf token":  # Flask-WTF's own 400 page, not JSON
        assert refused(response)
    assert is_anonymous(client)


@pytest.mark.contract(
    "A sign-in also works with an authenticator that keeps no sign counter (0 every time), as synced passkeys do; "
    "its single-use challenge still stops a replay (step 11+)"
)
@pytest.mark.features(*PASSKEYS)
def test_a_passkey_without_a_counter_signs_in_once_per_challenge(app):
    synced = SoftAuthenticator(app.config["WEBAUTHN_ORIGIN"], counter=False)
    assert add_passkey(logged_in_browser(app), synced, PASSWORD).status_code == 200
    for _ in range(2):
        client = app.test_client()
        button, options = sign_in_options(client)
        answer = synced.get(options)
        assert post_json(client, button["verify"], answer, button["csrf"]).status_code == 200
        assert logged_in_as(client, "alice")
        again = app.test_client()
        again_button, _ = sign_in_options(again)
        assert refused(post_json(again, again_button["verify"], answer, again_button["csrf"]))


@pytest.mark.contract(
    "A sign counter up to the largest that four bytes hold (2**32 - 1) is kept, and the next sign-in must exceed it "
    "(step 11+)"
)
@pytest.mark.features(*PASSKEYS)
def test_the_largest_sign_counter_is_kept(app, alice, authenticator):
    assert sign_in(app.test_client(), authenticator, sign_count=2**32 - 2).status_code == 200
    assert sign_in(app.test_client(), authenticator, sign_count=2**32 - 1).status_code == 200
    assert refused(sign_in(app.test_client(), authenticator, sign_count=2**32 - 1))


@pytest.mark.contract(
    "The relying party id and origin come from the configuration (FLASK_WEBAUTHN_RP_ID, default localhost; "
    "FLASK_WEBAUTHN_ORIGIN), never from the request; an origin that browsers would not allow for that id stops "
    "the app at start (step 11+)"
)
@pytest.mark.features(*PASSKEYS)
def test_the_relying_party_comes_from_the_configuration(app, alice, authenticator, create_app, test_config):
    assert app.config["WEBAUTHN_RP_ID"] == "localhost"
    # A client that names another host (TRUSTED_HOSTS lets 127.0.0.1 in) gets the same relying party.
    client, there = app.test_client(), "http://127.0.0.1:5000"
    button = login_button(client.get("/login", base_url=there).text)
    response = client.post(button["options"], json={}, headers={"X-CSRFToken": button["csrf"]}, base_url=there)
    assert response.get_json()["rpId"] == "localhost"
    answer = authenticator.get(response.get_json(), origin=there)
    response = client.post(button["verify"], json=answer, headers={"X-CSRFToken": button["csrf"]}, base_url=there)
    assert refused(response) and is_anonymous(client)
    other = create_app(test_config | {"WEBAUTHN_RP_ID": "example.org", "WEBAUTHN_ORIGIN": "https://login.example.org"})
    try:
        assert sign_in_options(other.test_client())[1]["rpId"] == "example.org"
    finally:
        close_database(other)
    for rp_id, origin in [
        ("localhost", "http://127.0.0.1:5000"),
        ("example.org", "http://example.org"),
        ("example.org", "https://example.org.evil.test"),
        ("example.org", "https://example.org/login"),
        ("", "https://example.org"),
    ]:
        with pytest.raises(SystemExit, match="WEBAUTHN_ORIGIN"):
            create_app(test_config | {"WEBAUTHN_RP_ID": rp_id, "WEBAUTHN_ORIGIN": origin})


# Removing it


@pytest.mark.contract(
    "Removing a passkey (/passkeys/ID/remove) needs the current password; then it signs in no more, the user's "
    "other sessions end, and the owner gets an email; another user's passkey is a 404 (step 11+)"
)
@pytest.mark.features(*PASSKEYS, "server-sessions")
def test_removing_a_passkey_needs_the_password(app, alice, authenticator, inbox):
    other = app.test_client()
    assert sign_in(other, authenticator).status_code == 200
    [path] = [link for link in links(alice.client.get("/passkeys").text) if link.endswith("/remove")]
    bob = logged_in_browser(app, "bob")
    assert bob.client.get(path).status_code == 404
    # No id at all, or one past what the database holds, is a 404 too.
    for nobody in ("/passkeys/0/remove", f"/passkeys/{2**31}/remove", f"/passkeys/{10**30}/remove"):
        assert alice.client.get(nobody).status_code == 404
    assert bob.post(path, {"current_password": USERS["bob"]["password"]}).status_code == 404
    wrong = alice.post(path, {"current_password": "wrong password"})
    assert wrong.status_code == 200 and "not your current password" in text(wrong.text)
    response = alice.post(path, {"current_password": PASSWORD})
    assert response.status_code in (302, 303)
    assert "You have no passkey yet." in text(alice.client.get("/passkeys").text)
    assert logged_in_as(alice.client, "alice") and is_anonymous(other)
    assert refused(sign_in(app.test_client(), authenticator))
    assert any("removed" in body_of(mail) for mail in inbox.wait_for(2))


# Robustness and storage


def garbage_answers():
    """Bodies no authenticator sends: not JSON, the wrong shapes, broken base64, broken CBOR."""
    good = {"id": "AAAA", "rawId": "AAAA", "type": "public-key"}
    yield "not json", "text/plain"
    yield "[1, 2]", "application/json"
    yield "{}", "application/json"
    yield json.dumps(good), "application/json"
    yield json.dumps({**good, "response": {"clientDataJSON": "!!", "authenticatorData": 1, "signature": None}}), None
    yield json.dumps({**good, "rawId": "*" * 5, "response": {"clientDataJSON": "a", "attestationObject": "b"}}), None
    blob = base64.urlsafe_b64encode(b"\xff" * 40).decode()
    response = {"clientDataJSON": blob, "authenticatorData": blob, "signature": blob, "attestationObject": blob}
    yield json.dumps({**good, "response": response}), None
    yield json.dumps({**good, "response": {**response, "userHandle": 5}}), None
    yield '{"id": "' + "A" * 200_000 + '"}', None


@pytest.mark.contract("Any other body at the passkey endpoints is a 4xx, never a server error (step 11+)")
@pytest.mark.features(*PASSKEYS)
@pytest.mark.parametrize("body, content_type", list(garbage_answers()), ids=lambda value: str(value)[:20])
def test_garbage_at_the_passkey_endpoints_is_a_4xx(app, body, content_type):
    auth = logged_in_browser(app)
    page = auth.post("/passkeys/add", {"name": "laptop", "current_password": PASSWORD})
    found = registration_options(page.text)
    headers = {"X-CSRFToken": found["csrf"], "Content-Type": content_type or "application/json"}
    response = auth.client.post(found["verify"], data=body, headers=headers)
    assert 400 <= response.status_code < 500, response.status_code
    client = app.test_client()
    button, _ = sign_in_options(client)
    headers["X-CSRFToken"] = button["csrf"]
    response = client.post(button["verify"], data=body, headers=headers)
    assert 400 <= response.status_code < 500, response.status_code
    assert is_anonymous(client)


@pytest.mark.contract(
    "The passkey pages keep the house rules: the site's layout and security headers, no inline script or style "
    "(passkeys.js is a file), every form a POST with a CSRF token, and Cache-Control: no-store (step 11+)"
)
@pytest.mark.features(*PASSKEYS, "security-headers")
def test_the_passkey_pages_keep_the_house_rules(app, alice):
    pages = [
        ("GET /passkeys", alice.client.get("/passkeys"), True),
        ("POST /passkeys/add", alice.post("/passkeys/add", {"name": "phone", "current_password": PASSWORD}), True),
    ]
    [path] = [link for link in links(alice.client.get("/passkeys").text) if link.endswith("/remove")]
    pages.append((f"GET {path}", alice.client.get(path), True))
    login = app.test_client().get("/login")
    pages.append(("GET /login", login, False))
    assert house_rule_problems(app, pages) == []
    assert 'src="/static/passkeys.js"' in login.text
    script = app.test_client().get("/static/passkeys.js")
    assert script.status_code == 200 and "javascript" in script.headers["Content-Type"]
    assert "navigator.credentials" in script.get_data(as_text=True)


# (id, body, whether it holds the right password): TOKEN becomes the session's CSRF token, PASSWORD alice's.
HOSTILE_FORMS = [
    ("no-fields", b"csrf_token=TOKEN", False),
    ("100kB-name", b"csrf_token=TOKEN&current_password=PASSWORD&name=" + b"n" * 100_000, True),
    ("non-utf8-name", b"csrf_token=TOKEN&current_password=PASSWORD&name=%FF%FElaptop", True),
    ("nul-byte-name", b"csrf_token=TOKEN&current_password=PASSWORD&name=lap%00top", True),
    ("control-chars-name", b"csrf_token=TOKEN&current_password=PASSWORD&name=%1B%5B31m%0D%0A", True),
    # The first of repeated fields counts, as Flask-WTF reads them.
    ("repeated-fields", b"csrf_token=TOKEN&current_password=x&current_password=PASSWORD&name=a&name=b", False),
    ("bad-percent-escapes", b"csrf_token=TOKEN&current_password=%zz%&name=%", False),
    ("hostile-password", b"csrf_token=TOKEN&name=laptop&current_password=%FF%00" + b"p" * 100_000, False),
]


@pytest.mark.contract(
    "Broken or hostile bodies sent to the forms that add and remove a passkey get the form again (or, with the "
    "password and a name a page can show, the ceremony), never a 500; only the right password removes one (step 11+)"
)
@pytest.mark.features(*PASSKEYS)
@pytest.mark.parametrize(("body", "right_password"), [b[1:] for b in HOSTILE_FORMS], ids=[b[0] for b in HOSTILE_FORMS])
def test_hostile_bodies_to_the_passkey_forms_are_never_a_500(app, alice, body, right_password):
    [path] = [link for link in links(alice.client.get("/passkeys").text) if link.endswith("/remove")]
    answers = {}
    for target in ("/passkeys/add", path):
        data = body.replace(b"TOKEN", alice.token().encode()).replace(b"PASSWORD", PASSWORD.encode())
        response = alice.client.post(target, data=data, content_type="application/x-www-form-urlencoded")
        assert response.status_code < 500 and "Traceback" not in response.text, target
        answers[target] = response
    add = answers["/passkeys/add"]
    assert add.status_code == 200
    if "data-passkey" in add.text:  # the ceremony: only for the password, with a name a page can show
        assert right_password and text(add.text).isprintable()
        assert registration_options(add.text)["options"]["rp"]["id"] == "localhost"
    else:
        assert "/passkeys/add" in add.text  # the form again
    listing = text(alice.client.get("/passkeys").text)
    assert ("You have no passkey yet." in listing) == right_password


@pytest.mark.contract(
    "A refused answer is logged on one line, whatever its client data holds: a newline written into it forges no "
    "second line (step 11+)"
)
@pytest.mark.features(*PASSKEYS, "auth-log")
def test_a_refused_answer_forges_no_log_line(app, alice, authenticator, caplog):
    forged = "http://localhost:8000\n[2026-12-03 09:00:00,000] INFO in views: login: user 2 'bob' from 127.0.0.1"
    with caplog.at_level(logging.INFO):
        assert refused(sign_in(app.test_client(), authenticator, origin=forged))
    lines = [record.getMessage() for record in caplog.records if "passkey" in record.getMessage()]
    assert lines and all("\n" not in line for line in lines), lines
