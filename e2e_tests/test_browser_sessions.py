"""Sessions that end (step 05+), in real browsers: log out everywhere."""

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from actions import log_in

LOGGED_OUT_EVERYWHERE = "You have been logged out everywhere."


def path(page):
    return urlsplit(page.url).path


@pytest.mark.features("login", "profile", "logout-everywhere")
def test_log_out_everywhere_ends_the_other_browsers_session(new_context, server):
    # Two browsers of their own (no shared cookies), one remembered, as alice.
    laptop, phone = new_context().new_page(), new_context().new_page()
    log_in(laptop, server)
    log_in(phone, server, remember=True)
    for page in (laptop, phone):
        assert path(page) == "/profile"

    laptop.get_by_role("button", name="Log out everywhere").click()
    laptop.wait_for_load_state()
    assert path(laptop) == "/login"
    expect(laptop.get_by_text(LOGGED_OUT_EVERYWHERE)).to_have_count(1)

    # The phone did nothing, yet its next page finds it logged out.
    phone.goto(server.url("/profile"))
    assert path(phone) == "/login"
    phone.goto(server.url("/"))
    expect(phone.get_by_role("button", name="Log out")).to_have_count(0)
