"""Sign up (step 04+) and the `next` round trip, through the forms in a browser."""

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from actions import BAD_SIGN_UP
from actions import field
from actions import log_in
from actions import register
from actions import words

# The text between each field and the next one: its label, and any message about it.
TEXT_AFTER_FIELDS = """form => {
    const fields = [...form.querySelectorAll("input[name]:not([type=hidden]):not([type=submit])")];
    return Object.fromEntries(fields.map((input, i) => {
        const range = document.createRange();
        range.setStartAfter(input);
        if (i + 1 < fields.length) range.setEndBefore(fields[i + 1]);
        else range.setEndAfter(form.lastChild);
        return [input.name, range.toString().replace(/\\s+/g, " ").trim()];
    }));
}"""


def text_after_fields(page):
    return field(page, "username").locator("xpath=ancestor::form").evaluate(TEXT_AFTER_FIELDS)


@pytest.mark.features("registration")
def test_bad_sign_up_shows_a_message_at_each_field(page, server):
    page.goto(server.url("/register"))
    clean = text_after_fields(page)
    register(page, server, BAD_SIGN_UP)
    assert urlsplit(page.url).path == "/register"
    after = text_after_fields(page)
    for name in BAD_SIGN_UP:
        assert len(after[name]) > len(clean[name]), f"no message at {name}: {after[name]!r}"
    # What was typed stays (but never a password).
    expect(field(page, "username")).to_have_value(BAD_SIGN_UP["username"])
    expect(field(page, "email")).to_have_value(BAD_SIGN_UP["email"])
    expect(field(page, "password")).to_have_value("")


@pytest.mark.features("registration", "profile", "login")
@pytest.mark.replaced_by("email-confirmation")  # from step 09 a sign-up logs no one in
def test_sign_up_then_log_in_again(page, server):
    password = "a-long-passphrase"
    fields = {"username": "carol", "email": "carol@example.com", "password": password, "confirm_password": password}
    register(page, server, fields)
    assert urlsplit(page.url).path == "/profile"
    assert "carol" in words(page)
    # The same name again is refused, at the username field.
    page.context.clear_cookies()
    page.goto(server.url("/register"))
    clean = text_after_fields(page)
    register(page, server, {**fields, "email": "carol2@example.com"})
    assert len(text_after_fields(page)["username"]) > len(clean["username"])
    log_in(page, server, "carol", password)
    assert urlsplit(page.url).path == "/profile"


@pytest.mark.features("login-next", "flash")
def test_profile_sends_you_to_log_in_and_back(page, server):
    page.goto(server.url("/profile"))
    assert urlsplit(page.url).path == "/login"
    expect(page.get_by_text("Please log in to access this page.")).to_have_count(1)
    # Log in on the page the redirect landed on, keeping its ?next=.
    log_in(page, server, path=page.url.removeprefix(server.base_url))
    assert urlsplit(page.url).path == "/profile"


@pytest.mark.features("safe-next")
@pytest.mark.parametrize(
    ("next_page", "lands_on"),
    [("/", "/"), ("//example.com/", "/profile"), ("/\\example.com", "/profile"), ("https://example.com/", "/profile")],
    ids=["own-path", "other-host", "backslash", "other-site"],
)
def test_next_is_followed_only_on_this_site(page, server, next_page, lands_on):
    page.goto(server.url("/login"))
    log_in(page, server, path=f"/login?next={next_page}")
    assert page.url.startswith(server.base_url)
    assert urlsplit(page.url).path == lands_on
