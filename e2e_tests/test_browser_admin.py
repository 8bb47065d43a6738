"""The admin area (step 13+), in real browsers: an admin disables an account, and its other browsers are out."""

from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect

from actions import log_in

# Users of this test's own: the server lives for the whole run, and others log in as alice and bob.
ADMIN, ABUSER = ("radia", "a-long-admin-passphrase"), ("mona", "a-long-passphrase-of-mona")


def path(page):
    return urlsplit(page.url).path


@pytest.mark.features("login", "profile", "roles", "admin-area")
def test_disabling_an_account_logs_out_its_other_browsers(new_context, server):
    for username, password in (ADMIN, ABUSER):
        server.create_user(username, password)
    granted = server.flask("roles", "grant", ADMIN[0], "admin", timeout=60)
    assert granted.returncode == 0, granted.stdout + granted.stderr
    # mona in two browsers of her own, one remembered; ada in a third.
    laptop, phone, admin = (new_context().new_page() for _ in range(3))
    log_in(laptop, server, *ABUSER)
    log_in(phone, server, *ABUSER, remember=True)
    log_in(admin, server, *ADMIN)
    for page in (laptop, phone, admin):
        assert path(page) == "/profile"

    admin.goto(server.url("/"))
    admin.get_by_role("link", name="every account, and what you can do to it").click()
    admin.get_by_role("button", name=f"Disable {ABUSER[0]}").click()
    admin.wait_for_load_state()
    assert path(admin) == "/admin/users"
    expect(admin.get_by_text(f"{ABUSER[0]} is disabled")).to_have_count(1)
    expect(admin.get_by_role("button", name=f"Enable {ABUSER[0]}")).to_have_count(1)

    # Neither of mona's browsers did anything, yet the next page finds each logged out.
    for page in (laptop, phone):
        page.goto(server.url("/profile"))
        assert path(page) == "/login"
    log_in(laptop, server, *ABUSER)
    expect(laptop.get_by_text("This account is disabled.")).to_have_count(1)
    assert path(laptop) == "/login"
