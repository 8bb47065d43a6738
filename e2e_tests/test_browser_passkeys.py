"""Passkeys (step 11+), in real Chromium with its virtual authenticator: add one, sign in with it, remove it; and a relay fails."""

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from actions import add_passkey
from actions import inline_scripts
from actions import log_in
from actions import log_out
from actions import sign_in_with_passkey
from actions import virtual_authenticator
from actions import words
from harness.relay import relay_to
from harness.served import Browser


def path(page):
    return urlsplit(page.url).path


@pytest.mark.features("login", "logout", "profile", "passkeys")
def test_add_a_passkey_sign_in_with_it_remove_it(page, server):
    # A user of its own for each test (the server lives for the whole run), as in test_browser_two_factor.py.
    password = "margaret-apollo-1969"
    server.create_user("margaret", password)
    cdp, authenticator = virtual_authenticator(page)
    log_in(page, server, "margaret", password)
    assert path(page) == "/profile"

    add_passkey(page, server, "laptop", password)
    assert path(page) == "/passkeys"
    expect(page.get_by_role("cell", name="laptop")).to_have_count(1)
    assert inline_scripts(page) == []
    # The authenticator keeps it (a discoverable credential), for this site's domain.
    [credential] = cdp.send("WebAuthn.getCredentials", {"authenticatorId": authenticator})["credentials"]
    assert credential["isResidentCredential"] and credential["rpId"] == "localhost"

    # No username, no password: the passkey alone.
    log_out(page, server)
    assert sign_in_with_passkey(page, server.url("/login")) is None
    assert path(page) == "/profile" and "margaret" in words(page)

    # Removed, it signs in no more, though the authenticator still offers it.
    page.goto(server.url("/passkeys"))
    page.get_by_role("link", name="Remove").click()
    page.locator('form [name="current_password"]').fill(password)
    page.get_by_role("button", name="Remove the passkey").click()
    page.wait_for_load_state()
    expect(page.get_by_text("You have no passkey yet.")).to_have_count(1)
    log_out(page, server)
    assert "not known" in sign_in_with_passkey(page, server.url("/login"))
    page.goto(server.url("/profile"))
    assert path(page) == "/login"


@pytest.mark.features("login", "logout", "profile", "passkeys")
def test_a_relay_on_another_origin_gets_no_login_from_a_passkey(page, server):
    password = "ada-analytical-1843"
    server.create_user("ada", password)
    virtual_authenticator(page)
    log_in(page, server, "ada", password)
    add_passkey(page, server, "laptop", password)
    log_out(page, server)

    with relay_to(server.base_url) as relay:
        # The victim follows a link to the relay, which shows the real login page...
        message = sign_in_with_passkey(page, relay.url + "/login")
        # ...and the browser offers the passkey (the relay is on localhost too), but
        # signs the relay's origin into its answer: the real site refuses it.
        assert message == "The passkey sign-in failed. Please try again."
        stolen = relay.stolen
    assert path(page) == "/login"
    # Whatever session cookie the relay kept opens nothing.
    attacker = Browser()
    attacker.cookies.update(stolen)
    status, location = attacker.request(server.server, "/profile")
    assert stolen and (status, location.split("?")[0]) == (302, "/login")
    # The same passkey on the real site still works.
    assert sign_in_with_passkey(page, server.url("/login")) is None
    assert "ada" in words(page)
