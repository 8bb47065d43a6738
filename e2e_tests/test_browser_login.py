"""Log in and out in a real browser, the way a learner does on every step."""

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from actions import LOG_OUT
from actions import field
from actions import log_in
from actions import log_out
from actions import words
from harness.accounts import USERS

LOGGED_OUT = "You have been logged out."
INVALID = "Invalid username or password."


def path(page):
    return urlsplit(page.url).path


@pytest.mark.features("login", "profile")
def test_log_in_with_enter_and_see_the_profile(page, server):
    # alice alone: bob's login differs only in what the page shows, which the
    # shared suite checks for every step; here what counts is the browser.
    log_in(page, server, "alice")
    assert path(page) == "/profile"
    shown = words(page)
    assert "alice" in shown
    assert str(USERS["alice"]["id"]) in shown


@pytest.mark.features("login")
@pytest.mark.parametrize(
    ("username", "password"),
    [("alice", "not-her-password"), ("nobody", "wonderland")],
    ids=["wrong-password", "unknown-user"],
)
def test_wrong_credentials_show_the_form_again_with_one_message(page, server, username, password):
    log_in(page, server, username, password)
    assert path(page) == "/login"
    expect(page.get_by_text(INVALID)).to_have_count(1)
    expect(field(page, "password")).to_be_visible()


@pytest.mark.features("login", "logout", "profile")
def test_log_out_with_the_button(page, server):
    log_in(page, server)
    response = log_out(page, server)
    assert response.ok, f"{response.status} at {response.url}"  # e.g. not a 405 for a GET
    assert page.url.startswith(server.base_url)
    expect(page.get_by_role("button", name=LOG_OUT)).to_have_count(0)
    page.goto(server.url("/"))
    assert "alice" not in words(page)
    # The profile is closed again: the server, not just the page, forgot us.
    page.goto(server.url("/profile"))
    assert path(page) == "/login"


@pytest.mark.features("logout", "flash")
def test_the_logout_message_shows_once(page, server):
    log_in(page, server)
    log_out(page, server)
    expect(page.get_by_text(LOGGED_OUT)).to_have_count(1)
    page.reload()
    expect(page.get_by_text(LOGGED_OUT)).to_have_count(0)
