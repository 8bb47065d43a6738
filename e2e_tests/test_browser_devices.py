"""Your sessions (step 14), in real browsers: end the other browser's session from this one's sessions page."""

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from actions import log_in

# A user of this test's own: the server lives for the whole run, and others log in as alice and bob.
USER = ("ines", "a-long-passphrase-of-ines")
OTHER_BROWSER = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Gecko/20100101 Firefox/133.0"


def path(page):
    return urlsplit(page.url).path


@pytest.mark.features("login", "profile", "device-sessions")
def test_ending_the_other_browsers_session_logs_it_out(new_context, server):
    server.create_user(*USER)
    laptop, other = new_context().new_page(), new_context(user_agent=OTHER_BROWSER).new_page()
    log_in(other, server, *USER)
    log_in(laptop, server, *USER)
    laptop.get_by_role("link", name="Every browser logged in to your account, each of which you can end").click()
    assert path(laptop) == "/account/sessions"
    expect(laptop.get_by_role("row")).to_have_count(3)  # the heading and two sessions
    expect(laptop.get_by_role("row", name="this browser")).to_have_count(1)
    laptop.get_by_role("row", name="Firefox on Windows").get_by_role("button", name="End this session").click()
    laptop.wait_for_load_state()
    expect(laptop.get_by_text("That session has ended")).to_have_count(1)
    expect(laptop.get_by_role("row")).to_have_count(2)

    # The other browser did nothing, yet its next page finds it logged out; this one is still in.
    other.goto(server.url("/profile"))
    assert path(other) == "/login"
    laptop.goto(server.url("/profile"))
    assert path(laptop) == "/profile"
