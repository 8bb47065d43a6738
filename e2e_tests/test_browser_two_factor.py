"""Two-factor authentication (step 10+), in a real browser: turn it on, then log in with a code, and with a recovery code."""

from urllib.parse import parse_qs
from urllib.parse import unquote
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from actions import enter_code
from actions import finish_two_factor_setup
from actions import inline_scripts
from actions import log_in
from actions import log_out
from actions import read_qr
from actions import start_two_factor_setup
from actions import words
from harness.two_factor import code
from harness.two_factor import secret_on

INVALID_CODE = "Invalid code."
ON = "Two-factor authentication is on."


def path(page):
    return urlsplit(page.url).path


@pytest.mark.features("login", "logout", "profile", "two-factor")
def test_turn_on_two_factor_then_log_in_with_a_code_and_with_a_recovery_code(page, server):
    # A user of this test's own: the server lives for the whole run, and
    # alice and bob must keep logging in with a password alone.
    password = "hedy-frequency-hopping"
    server.create_user("hedy", password)
    log_in(page, server, "hedy", password)
    assert path(page) == "/profile"

    # The setup page: its QR code is an image from this site, drawn for
    # the key shown beside it, and no script runs on the page that shows the key.
    qr = start_two_factor_setup(page, server)
    # (Werkzeug adds "; charset=utf-8" to any +xml type.)
    assert (qr.status, qr.headers["content-type"].split(";")[0]) == (200, "image/svg+xml")
    assert page.locator("img").evaluate("img => img.complete && img.naturalWidth > 0")
    assert inline_scripts(page) == []
    # What a phone's camera reads from it, as drawn on the screen: the
    # otpauth:// URI of the very key shown as text, for hedy, with the
    # settings every authenticator app assumes (absent, or these).
    uri = urlsplit(read_qr(page.locator("img").screenshot()))
    query = parse_qs(uri.query)
    assert (uri.scheme, uri.netloc) == ("otpauth", "totp")
    assert query["secret"] == [secret_on(page.content())]
    assert "hedy" in unquote(uri.path)
    assert query.get("algorithm", ["SHA1"]) == ["SHA1"]
    assert query.get("digits", ["6"]) == ["6"] and query.get("period", ["30"]) == ["30"]
    hedy = finish_two_factor_setup(page, password)
    expect(page.get_by_text(ON)).to_have_count(1)
    assert len(hedy.recovery_codes) == 10
    assert inline_scripts(page) == []

    # The password alone is half-way: a code, and only then the profile.
    log_out(page, server)
    log_in(page, server, "hedy", password)
    assert path(page) == "/login/two-factor"
    page.goto(server.url("/profile"))
    assert path(page) == "/login"
    log_in(page, server, "hedy", password)
    # The code that turned it on is used up; the app's next one works.
    enter_code(page, code(hedy.secret, hedy.last))
    assert path(page) == "/login/two-factor"
    expect(page.get_by_role("alert")).to_have_text(INVALID_CODE)
    enter_code(page, hedy.next_code())
    assert path(page) == "/profile"
    assert "hedy" in words(page)

    # The phone is lost: a recovery code logs in once...
    [first, *_] = hedy.recovery_codes
    log_out(page, server)
    log_in(page, server, "hedy", password)
    enter_code(page, first)
    assert path(page) == "/profile"
    expect(page.get_by_text("You used a recovery code: 9 left.")).to_have_count(1)

    # ...and is refused the second time.
    log_out(page, server)
    log_in(page, server, "hedy", password)
    enter_code(page, first)
    assert path(page) == "/login/two-factor"
    expect(page.get_by_role("alert")).to_have_text(INVALID_CODE)
    page.goto(server.url("/profile"))
    assert path(page) == "/login"
