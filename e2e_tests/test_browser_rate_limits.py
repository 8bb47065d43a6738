"""Rate limits (step 06+): after too many failed logins, the browser gets the 429 page."""

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from actions import LOG_OUT
from actions import log_in
from actions import too_many_failures

INVALID = "Invalid username or password."


@pytest.mark.features("login", "rate-limits")
def test_too_many_failed_logins_show_the_429_page(page, server):
    # A name no other browser test uses: the server (and its counts) lives for the whole run.
    response = too_many_failures(page, server, "dave")
    assert response.status == 429
    assert int(response.headers["retry-after"]) > 0
    assert urlsplit(page.url).path == "/login"
    # The message, in the site's layout (its navigation), and no form to try again with.
    expect(page.get_by_role("alert")).to_have_text(re.compile(r"try again in about \d+ (minutes|seconds)"))
    expect(page.get_by_role("link", name="Log in")).to_be_visible()
    expect(page.get_by_text(INVALID)).to_have_count(0)
    expect(page.locator('form [name="password"]')).to_have_count(0)
    expect(page.get_by_role("button", name=LOG_OUT)).to_have_count(0)


@pytest.mark.features("login", "rate-limits")
def test_failures_for_one_name_leave_another_free(page, server):
    too_many_failures(page, server, "erin")
    log_in(page, server, "bob")
    assert urlsplit(page.url).path == "/profile"
