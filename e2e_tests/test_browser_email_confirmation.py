"""Email confirmation (step 09+), in a real browser: sign up, follow the link from the email, log in."""

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from actions import log_in
from actions import register
from actions import words
from harness.accounts import CHECK_INBOX
from harness.smtp import links

CONFIRM_FIRST = "Please confirm your email address first."
CONFIRMED = "Your email address is confirmed. Please log in."


def path(page):
    return urlsplit(page.url).path


@pytest.mark.features("registration", "email-confirmation", "profile", "login")
def test_sign_up_confirm_from_the_email_then_log_in(page, server):
    password = "a-long-passphrase"
    already = len(server.inbox.messages)
    register(
        page,
        server,
        {"username": "dora", "email": "dora@example.com", "password": password, "confirm_password": password},
    )
    page.wait_for_load_state()
    expect(page.get_by_text(CHECK_INBOX)).to_have_count(1)

    # Not yet: the right password says to confirm first, and logs no one in.
    log_in(page, server, "dora", password)
    expect(page.get_by_text(CONFIRM_FIRST)).to_have_count(1)
    page.goto(server.url("/profile"))
    assert path(page) == "/login"

    # The email, as the SMTP server received it: one link, to this very server.
    message = server.inbox.wait_for(already + 1)[already]
    assert "dora@example.com" in message.envelope_to
    [link] = links(message)
    assert link.startswith(server.url("/confirm/"))
    page.goto(link)
    assert path(page) == "/login"
    expect(page.get_by_text(CONFIRMED)).to_have_count(1)

    log_in(page, server, "dora", password)
    assert path(page) == "/profile"
    assert "dora" in words(page)
