"""Password reset (step 07+), in a real browser: ask for a link, follow it from the email, log in."""

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from actions import field
from actions import log_in
from actions import type_into
from harness.smtp import links

ON_ITS_WAY = "If an account uses that address, a reset link is on its way."
CHANGED_LOG_IN = "Your password has been changed. Please log in."


def path(page):
    return urlsplit(page.url).path


@pytest.mark.features("login", "password-reset")
def test_forgot_password_then_log_in_with_the_new_one(page, server):
    # A user of this test's own: the server lives for the whole run, and
    # alice's password must stay as the other tests know it.
    password = "grace-old-password"
    server.create_user("grace", password)
    already = len(server.inbox.messages)

    page.goto(server.url("/login"))
    page.get_by_role("link", name="Forgot your password?").click()
    assert path(page) == "/reset-password"
    type_into(page, "email", "Grace@Example.com")
    field(page, "email").press("Enter")
    page.wait_for_load_state()
    expect(page.get_by_text(ON_ITS_WAY)).to_have_count(1)

    # The email, as the SMTP server received it: one link, to this very server.
    message = server.inbox.wait_for(already + 1)[already]
    assert "grace@example.com" in message.envelope_to
    [link] = links(message)
    assert link.startswith(server.url("/reset-password/"))

    page.goto(link)
    type_into(page, "password", "grace-new-password")
    type_into(page, "confirm_password", "grace-new-password")
    field(page, "confirm_password").press("Enter")
    page.wait_for_load_state()
    assert path(page) == "/login"
    expect(page.get_by_text(CHANGED_LOG_IN)).to_have_count(1)

    log_in(page, server, "grace", "grace-new-password")
    assert path(page) == "/profile"

    # The link worked once; now it leads back to the form, saying so.
    page.goto(link)
    assert path(page) == "/reset-password"
    expect(page.get_by_text("That reset link is invalid or has expired.")).to_have_count(1)
