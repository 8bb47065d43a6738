"""Remember me (step 03+): a login that outlives closing the browser, when asked for."""

from urllib.parse import urlsplit

import pytest

from actions import log_in
from actions import words


def reopen(browser_context, new_context):
    """Close the browser and open it again: only cookies with an expiry date survive.

    A browser drops cookies without one (like Flask's session cookie) when
    it closes; a cookie that remembers the login must carry a date to
    outlive that: Flask-Login's remember cookie (steps 03-04), or the
    session cookie of a remembered session (step 05+).
    """
    kept = [cookie for cookie in browser_context.cookies() if cookie["expires"] > 0]
    browser_context.close()
    reopened = new_context()
    if kept:
        reopened.add_cookies(kept)
    return reopened, kept


@pytest.mark.features("login", "profile", "remember")
def test_ticked_remember_me_keeps_you_logged_in_after_the_browser_closes(context, new_context, server):
    page = context.new_page()
    log_in(page, server, remember=True)
    reopened, kept = reopen(context, new_context)
    assert kept, "no cookie would survive closing the browser"
    for cookie in kept:  # the contract: HttpOnly and SameSite=Lax, like the session
        assert cookie["httpOnly"], cookie["name"]
        assert cookie["sameSite"] == "Lax", cookie["name"]
    page = reopened.new_page()
    page.goto(server.url("/profile"))
    assert urlsplit(page.url).path == "/profile"
    assert "alice" in words(page)


@pytest.mark.features("login", "profile", "remember")
def test_without_remember_me_closing_the_browser_logs_you_out(context, new_context, server):
    page = context.new_page()
    log_in(page, server)
    assert urlsplit(page.url).path == "/profile"
    reopened, _ = reopen(context, new_context)
    page = reopened.new_page()
    page.goto(server.url("/profile"))
    assert urlsplit(page.url).path == "/login"
