"""Signing in with an OpenID Connect provider (step 12+), against a real one: panva's oidc-provider.

The provider runs in Node.js on a loopback port for the whole test run
(the `provider` fixture, conftest.py; harness/oidc.py), with its
development login and consent pages, which a
`ProviderUser` walks as a person would. The app talks to it for real:
discovery, the token endpoint, the keys that sign the ID tokens. Its
accounts: alice (with alice's address here, verified), eve (an address
the provider never verified), and anyone else by name, each with a
verified address of their own at provider.example.
"""

import logging
import urllib.parse

import pytest

from harness.accounts import USERS
from harness.apps import AuthActions
from harness.apps import close_database
from harness.apps import house_rule_problems
from harness.apps import is_anonymous
from harness.apps import logged_in_browser
from harness.apps import rewrite_session
from harness.apps import session_cookie
from harness.oidc import ProviderUser
from harness.oidc import back_at_the_app
from harness.oidc import sign_in
from harness.oidc import start_sign_in
from harness.pages import forms
from harness.pages import links
from harness.pages import text
from harness.smtp import links as links_in
from harness.two_factor import second_stage
from harness.two_factor import turn_on

OIDC = ("openid-connect", "login", "profile", "server-sessions")
NAME = "Example ID"
PASSWORD = USERS["alice"]["password"]
# Where the test client's app sends the provider's users back (the provider fixture's clients know it).
CALLBACK = "http://localhost/login/oidc/callback"
FAILED = f"Signing in with {NAME} did not work. Please try again."


@pytest.fixture(name="test_config")
def with_the_provider(test_config, inbox, provider):
    """The suite's configuration, with the provider, and mail to this test's SMTP server."""
    return test_config | inbox.config() | {"MAIL_SUPPRESS_SEND": False} | provider.config(NAME)


def visitor(app):
    return AuthActions(app.test_client())


def shown(auth):
    """What /login shows this browser now: its flashed messages, read once."""
    return text(auth.client.get("/login").text)


def logged_in_as(auth):
    """The username /profile shows this browser, or None."""
    response = auth.client.get("/profile")
    if response.status_code != 200:
        return None
    words = text(response.text).split()
    return words[words.index("Username") + 1]


def with_query(url, **changes):
    """`url` with some query parameters replaced (None: removed)."""
    parts = urllib.parse.urlsplit(url)
    query = dict(urllib.parse.parse_qsl(parts.query))
    for name, value in changes.items():
        if value is None:
            query.pop(name, None)
        else:
            query[name] = value
    return parts._replace(query=urllib.parse.urlencode(query)).geturl()


# Without a provider


@pytest.mark.contract(
    "Without FLASK_OIDC_ISSUER, FLASK_OIDC_CLIENT_ID and FLASK_OIDC_CLIENT_SECRET, /login has no provider button "
    "and the provider's routes answer 404 (step 12+)"
)
@pytest.mark.features(*OIDC)
def test_without_a_provider_there_is_no_button_and_the_routes_are_404(app, create_app, test_config):
    needed = ("OIDC_ISSUER", "OIDC_CLIENT_ID", "OIDC_CLIENT_SECRET")
    for missing in needed:
        # Two of the three set: still no provider.
        app = create_app({name: value for name, value in test_config.items() if name != missing})
        try:
            auth = visitor(app)
            assert "Sign in with" not in text(auth.client.get("/login").text).replace("Sign in with a passkey", "")
            assert auth.post("/login/oidc").status_code == 404
            assert auth.client.get("/login/oidc/callback?code=x&state=y").status_code == 404
            assert auth.login("alice").status_code in (302, 303)
            assert auth.client.get("/link/oidc").status_code == 404
        finally:
            close_database(app)


# Signing in


@pytest.mark.contract(
    'With a provider configured, /login shows "Sign in with FLASK_OIDC_NAME"; POST /login/oidc redirects to the '
    "provider's authorization endpoint with a code request, PKCE (S256), a state and a nonce (step 12+)"
)
@pytest.mark.features(*OIDC)
def test_the_button_starts_the_code_flow_with_pkce_state_and_nonce(app, provider):
    auth = visitor(app)
    assert f"Sign in with {NAME}" in text(auth.client.get("/login").text)
    url = urllib.parse.urlsplit(start_sign_in(auth))
    query = dict(urllib.parse.parse_qsl(url.query))
    assert f"{url.scheme}://{url.netloc}" == provider.issuer
    assert query["response_type"] == "code" and query["client_id"] == provider.ours["client_id"]
    assert query["redirect_uri"] == CALLBACK and "openid" in query["scope"].split()
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert len(query["state"]) >= 20 and len(query["nonce"]) >= 20
    # Each sign-in its own.
    again = dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(start_sign_in(visitor(app))).query))
    assert {again["state"], again["nonce"], again["code_challenge"]}.isdisjoint(query.values())


@pytest.mark.contract(
    "The Content-Security-Policy's form-action allows the provider's origin, where the button's POST redirects "
    "(a browser blocks that redirect otherwise); an issuer that is no URL stops the app at start (step 12+)"
)
@pytest.mark.features(*OIDC, "security-headers")
def test_the_policy_lets_the_button_reach_the_provider(app, provider, create_app, test_config):
    policy = visitor(app).client.get("/login").headers["Content-Security-Policy"]
    [form_action] = [part.split()[1:] for part in policy.split(";") if part.split()[:1] == ["form-action"]]
    assert form_action == ["'self'", provider.issuer]
    for issuer in ("not a url", "ftp://provider.example", "https://provider.example?x=1"):
        with pytest.raises(SystemExit, match="OIDC_ISSUER"):
            create_app(test_config | {"OIDC_ISSUER": issuer})


@pytest.mark.contract(
    "A first sign-in by a provider account whose address no account uses makes an account (a free username from "
    "its claims, no password), confirmed and logged in with a new session id when the provider verified the "
    "address; the next sign-in by the same (issuer, sub) logs in to that account (step 12+)"
)
@pytest.mark.features(*OIDC)
@pytest.mark.asvs("6.8.1", "7.2.4")
def test_a_first_sign_in_makes_an_account_and_the_next_logs_in_to_it(app):
    auth = visitor(app)
    auth.client.get("/login")
    before = session_cookie(app, auth.client)
    response, _ = sign_in(auth, "newton")
    assert (response.status_code, response.headers["Location"]) == (302, "/profile")
    assert logged_in_as(auth) == "newton" and session_cookie(app, auth.client) != before
    user_id = text(auth.client.get("/profile").text).split("User id")[1].split()[0]
    again = visitor(app)
    assert sign_in(again, "newton")[0].headers["Location"] == "/profile"
    assert text(again.client.get("/profile").text).split("User id")[1].split()[0] == user_id
    # No password logs in to it: it has none.
    assert visitor(app).login("newton", "any password at all").status_code == 200
    # A second person with that preferred username gets another name.
    app_user = visitor(app)
    sign_in(app_user, "alice2")
    assert logged_in_as(app_user) == "alice2"


@pytest.mark.contract(
    "An account made from a provider account whose address the provider did not verify is not confirmed: no "
    "login until the link emailed to it is followed (step 12+)"
)
@pytest.mark.features(*OIDC, "email-confirmation")
def test_an_unverified_address_makes_an_unconfirmed_account(app, inbox):
    auth = visitor(app)
    response, _ = sign_in(auth, "eve")
    assert response.headers["Location"] == "/login" and is_anonymous(auth.client)
    [mail] = inbox.wait_for(1)
    assert mail["To"] == "eve@provider.example"
    assert visitor(app).client.get(urllib.parse.urlsplit(links_in(mail)[0]).path).status_code in (302, 303)
    later = visitor(app)
    assert sign_in(later, "eve")[0].headers["Location"] == "/profile" and logged_in_as(later) == "eve"


@pytest.mark.contract(
    "A provider account whose address an account here already uses links nothing and logs no one in: the user "
    "is told to log in with the password and link the provider from the profile (step 12+)"
)
@pytest.mark.features(*OIDC)
@pytest.mark.asvs("6.8.1")
def test_an_address_in_use_links_nothing(app):
    for _ in range(2):  # nothing was linked the first time, so the second is the same
        auth = visitor(app)
        response, _ = sign_in(auth, "alice")
        assert response.headers["Location"] == "/login"
        assert f"already uses {USERS['alice']['email']}" in shown(auth)
        assert is_anonymous(auth.client)
    assert visitor(app).login("alice").headers["Location"] == "/profile"


@pytest.mark.contract(
    "Claims no account can take end on /login with a message, never a 500: no address, one that is not an address "
    "or is too long, a `sub` over 255 characters; an address in use in other letter case links nothing (step 12+)"
)
@pytest.mark.features(*OIDC)
@pytest.mark.parametrize(
    "login, message",
    [
        ("no-address", "did not give an email address"),
        ("long-address", "did not give an email address"),
        ("x" * 300, FAILED),
        # The part before the @ keeps its case, as email-validator normalizes it; the comparison ignores it.
        ("alice-shouting", f"already uses {USERS['alice']['email'].split('@')[0].upper()}@example.com"),
    ],
    ids=["not-an-address", "too-long-address", "too-long-sub", "address-in-capitals"],
)
def test_claims_no_account_can_take_are_refused(app, login, message):
    auth = visitor(app)
    response, _ = sign_in(auth, login)
    assert (response.status_code, response.headers.get("Location")) == (302, "/login")
    assert message in shown(auth) and is_anonymous(auth.client)


def stolen_callback(app, provider, login="mallory"):
    """A callback URL from a sign-in that mallory finished in her own browser, never followed: her code, her state."""
    return ProviderUser(login).sign_in(start_sign_in(visitor(app)))


def code_for_another_site(provider, login="alice-elsewhere"):
    """A code that the provider issued to another site (another client id), for the same person."""
    query = {
        "client_id": provider.theirs["client_id"],
        "response_type": "code",
        "scope": "openid email",
        "redirect_uri": CALLBACK,
        "state": "theirs",
        "nonce": "theirs",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
    }
    url = f"{provider.issuer}/auth?{urllib.parse.urlencode(query)}"
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(ProviderUser(login).sign_in(url)).query))["code"]


def change_nonce(session):
    for key, value in session.items():
        if key.startswith("_state_"):  # where Authlib keeps the state's data (its nonce, the PKCE verifier)
            value["data"]["nonce"] = "not-the-nonce-that-was-sent"


@pytest.mark.contract(
    "The callback ends on /login with a message and nobody logged in when its state is missing, wrong or another "
    "browser's (login CSRF), its code was used already or issued to another client, the ID token's nonce is not "
    "the one this session sent, or the provider answers an error such as access_denied (step 12+)"
)
@pytest.mark.features(*OIDC)
@pytest.mark.parametrize(
    "case",
    [
        "no state",
        "wrong state",
        "another browser's callback",
        "replayed code",
        "code for another site",
        "wrong nonce",
        "access denied",
        "no flow started",
    ],
)
def test_a_bad_callback_ends_on_login_with_nobody_logged_in(app, provider, case):
    auth = visitor(app)
    if case == "another browser's callback":
        # mallory's finished sign-in, opened in alice's browser: without the
        # state check, alice would be logged in to mallory's account.
        start_sign_in(auth)
        callback = stolen_callback(app, provider)
    elif case == "no flow started":
        callback = stolen_callback(app, provider)
    elif case == "access denied":
        callback = ProviderUser("newton").sign_in(start_sign_in(auth), consent=False)
        assert "error=access_denied" in callback
    else:
        callback = ProviderUser("newton").sign_in(start_sign_in(auth))
        if case == "no state":
            callback = with_query(callback, state=None)
        elif case == "wrong state":
            callback = with_query(callback, state="x" * 30)
        elif case == "replayed code":
            # The code worked once, in a browser of its own; then here, with this browser's own state.
            first = visitor(app)
            first_callback = ProviderUser("newton").sign_in(start_sign_in(first))
            assert back_at_the_app(first, first_callback).headers["Location"] == "/profile"
            callback = with_query(
                callback, code=dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(first_callback).query))["code"]
            )
        elif case == "code for another site":
            callback = with_query(callback, code=code_for_another_site(provider))
        elif case == "wrong nonce":
            rewrite_session(app, session_cookie(app, auth.client), change_nonce)
    response = back_at_the_app(auth, callback)
    assert (response.status_code, response.headers.get("Location")) == (302, "/login")
    assert FAILED in shown(auth)
    assert is_anonymous(auth.client)


@pytest.mark.contract(
    "A known provider account of a user with two-factor on leads to the second stage, not to a login (step 12+)"
)
@pytest.mark.features(*OIDC, "two-factor")
def test_two_factor_is_still_asked_after_the_provider(app):
    alice = logged_in_browser(app)
    response, _ = sign_in(alice, "alice-elsewhere", path="/link/oidc", data={"current_password": PASSWORD})
    assert response.headers["Location"] == "/link/oidc"
    two_factor = turn_on(alice, PASSWORD)
    auth = visitor(app)
    response, _ = sign_in(auth, "alice-elsewhere")
    assert response.headers["Location"] == "/login/two-factor" and is_anonymous(auth.client)
    assert second_stage(auth, two_factor.next_code()).headers["Location"] == "/profile"
    assert logged_in_as(auth) == "alice"


# Linking and unlinking


@pytest.mark.contract(
    "From the profile, /link/oidc links a provider account to the logged-in user, with the current password "
    "(a wrong one gives the form again); it then signs in to that user, the page lists it, and the owner gets an "
    "email. A provider account linked to another user is not linked again (step 12+)"
)
@pytest.mark.features(*OIDC)
def test_a_provider_account_is_linked_from_the_profile(app, inbox):
    alice = logged_in_browser(app)
    assert "/link/oidc" in links(alice.client.get("/profile").text)
    wrong = alice.post("/link/oidc", {"current_password": "not her password"})
    assert wrong.status_code == 200 and "not your current password" in text(wrong.text)
    response, _ = sign_in(alice, "alice-elsewhere", path="/link/oidc", data={"current_password": PASSWORD})
    assert response.headers["Location"] == "/link/oidc"
    page = text(alice.client.get("/link/oidc").text)
    assert "alice-elsewhere@provider.example" in page and "is linked" in page
    assert any("linked" in mail["Subject"] and mail["To"] == USERS["alice"]["email"] for mail in inbox.wait_for(1))
    auth = visitor(app)
    assert sign_in(auth, "alice-elsewhere")[0].headers["Location"] == "/profile" and logged_in_as(auth) == "alice"
    # bob cannot link the same account to his.
    bob = logged_in_browser(app, "bob")
    sign_in(bob, "alice-elsewhere", path="/link/oidc", data={"current_password": USERS["bob"]["password"]})
    assert "linked to an account here already" in text(bob.client.get("/link/oidc").text)
    assert sign_in(visitor(app), "alice-elsewhere")[0].headers["Location"] == "/profile"


@pytest.mark.contract(
    "An unlinked provider account signs in no more; the last way into an account (no password, no passkey, one "
    "provider account) cannot be unlinked; another user's link is a 404 (step 12+)"
)
@pytest.mark.features(*OIDC)
def test_unlinking_and_the_last_way_in(app):
    alice = logged_in_browser(app)
    sign_in(alice, "alice-elsewhere", path="/link/oidc", data={"current_password": PASSWORD})
    [unlink] = [form["action"] for form in forms(alice.client.get("/link/oidc").text) if "/unlink/" in form["action"]]
    bob = logged_in_browser(app, "bob")
    assert bob.post(unlink).status_code == 404
    assert alice.post(unlink).headers["Location"] == "/link/oidc"
    assert "No Example ID account is linked" in text(alice.client.get("/link/oidc").text)
    # alice-elsewhere is a stranger again: a new account of its own.
    auth = visitor(app)
    sign_in(auth, "alice-elsewhere")
    assert logged_in_as(auth) == "alice-elsewhere"
    # That account's only way in is the provider: unlinking it is refused.
    [only] = [form["action"] for form in forms(auth.client.get("/link/oidc").text) if "/unlink/" in form["action"]]
    assert auth.post(only).headers["Location"] == "/link/oidc"
    assert "only way to log in" in text(auth.client.get("/link/oidc").text)
    assert sign_in(visitor(app), "alice-elsewhere")[0].headers["Location"] == "/profile"


@pytest.mark.contract(
    "Broken or hostile callbacks (huge, repeated, mis-encoded code, state or error parameters) end on /login, "
    "never in a 500 (step 12+)"
)
@pytest.mark.features(*OIDC)
@pytest.mark.parametrize(
    "query",
    [
        "",
        "code=&state=",
        "code=" + "a" * 100_000 + "&state=" + "b" * 100_000,
        "code=%FF%FE&state=%00",
        "code=a&code=b&state=c&state=d",
        "error=access_denied&error_description=%3Cscript%3E",
        "error=" + "x" * 10_000,
        "state[]=a&code[]=b",
    ],
    ids=["empty", "empty-values", "huge", "mis-encoded", "repeated", "error-with-html", "huge-error", "arrays"],
)
def test_hostile_callbacks_are_never_a_500(app, query):
    auth = visitor(app)
    start_sign_in(auth)
    response = auth.client.get(f"/login/oidc/callback?{query}")
    assert (response.status_code, response.headers.get("Location")) == (302, "/login")
    page = auth.client.get("/login").text
    assert "<script>" not in page and is_anonymous(auth.client)


@pytest.mark.contract(
    "The provider pages keep the house rules: the site's layout and security headers, every form a POST with a "
    "CSRF token, no inline script, Cache-Control: no-store for a logged-in user (step 12+)"
)
@pytest.mark.features(*OIDC, "security-headers")
def test_the_provider_pages_keep_the_house_rules(app):
    alice = logged_in_browser(app)
    sign_in(alice, "alice-elsewhere", path="/link/oidc", data={"current_password": PASSWORD})
    pages = [
        ("GET /login", visitor(app).client.get("/login"), False),
        ("GET /link/oidc", alice.client.get("/link/oidc"), True),
        ("POST /link/oidc, wrong password", alice.post("/link/oidc", {"current_password": "x"}), True),
    ]
    assert house_rule_problems(app, pages) == []


@pytest.mark.contract(
    "A provider that does not answer is a message on /login, never a 500; the provider's error_description is "
    "logged on one line, whatever it holds (step 12+)"
)
@pytest.mark.features(*OIDC, "auth-log")
def test_a_provider_that_does_not_answer_and_a_forged_error_are_no_500(app, create_app, test_config, caplog):
    from harness.services import free_port

    away = create_app(test_config | {"OIDC_ISSUER": f"http://127.0.0.1:{free_port()}"})
    try:
        auth = visitor(away)
        response = auth.post("/login/oidc")
        assert (response.status_code, response.headers["Location"]) == (302, "/login")
        assert f"{NAME} did not answer" in shown(auth) and is_anonymous(auth.client)
    finally:
        close_database(away)
    auth = visitor(app)
    start_sign_in(auth)
    forged = urllib.parse.quote("x\n[2026-12-03 09:00:00,000] INFO in views: login: user 1 'alice' from 127.0.0.1")
    with caplog.at_level(logging.INFO):
        response = auth.client.get(f"/login/oidc/callback?error=access_denied&error_description={forged}")
    assert response.headers["Location"] == "/login"
    lines = [record.getMessage() for record in caplog.records if "provider" in record.getMessage()]
    assert lines and all("\n" not in line for line in lines), lines
