"""Write the docs' screenshots: `nox -s screenshots` (or `python e2e_tests/screenshots.py`).

For each step: its login page showing an error, the profile page and, where
the step teaches registration, the sign-up form showing its field errors;
where it limits failed logins, the page after too many of them; where it
has two-factor, the setup page (QR code and key) and the second stage of
a login refusing a code; where it has passkeys, the passkeys page and the
login page with its passkey button; where it has an admin area, the list of accounts; where it lists sessions, two of them.
Each step is served and driven exactly as the browser tests do it, at one
fixed viewport, and every image must stay under MAX_BYTES.
"""

import argparse
import sys
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from actions import BAD_SIGN_UP
from actions import add_passkey
from actions import enter_code
from actions import finish_two_factor_setup
from actions import log_in
from actions import log_out
from actions import register
from actions import start_two_factor_setup
from actions import too_many_failures
from actions import virtual_authenticator
from chromium import HOW_TO_INSTALL
from chromium import launch_args
from harness.accounts import USERS
from harness.steps import discover
from harness.steps import select
from harness.two_factor import code
from liveserver import serve

HERE = Path(__file__).resolve().parent


OUT = HERE.parent / "docs" / "_static" / "screenshots"
VIEWPORT = {"width": 800, "height": 600}
MAX_BYTES = 100_000


def shots(step):
    """(file name, what to do on a fresh page) for each picture of this step."""
    yield "login-error", lambda page, server: log_in(page, server, "alice", "not-her-password")
    yield "profile", lambda page, server: log_in(page, server, "alice")
    if "registration" in step.features:
        yield "register-errors", lambda page, server: register(page, server, BAD_SIGN_UP)
    if "rate-limits" in step.features:
        yield "too-many-attempts", lambda page, server: too_many_failures(page, server, "alice")
    if "two-factor" in step.features:
        # bob, since alice has just reached the limit of failed logins.
        yield "two-factor-setup", setup_page
        yield "login-two-factor", code_refused
    if "passkeys" in step.features:
        yield "passkeys", passkey_added
        yield "login-passkey", lambda page, server: page.goto(server.url("/login"))
    if "admin-area" in step.features:
        yield "admin-users", admin_list
    if "device-sessions" in step.features:
        yield "account-sessions", two_sessions


def setup_page(page, server):
    """bob presses "Turn on": the page with the QR code and the key (two-factor is not on until he gives a code)."""
    log_in(page, server, "bob")
    start_two_factor_setup(page, server)


def code_refused(page, server):
    """bob turns two-factor on, logs out, logs in, and gives the code that turned it on: used up, so refused."""
    log_in(page, server, "bob")
    start_two_factor_setup(page, server)
    bob = finish_two_factor_setup(page, USERS["bob"]["password"])
    log_out(page, server)
    log_in(page, server, "bob")
    enter_code(page, code(bob.secret, bob.last))


def passkey_added(page, server):
    """carol adds a passkey, made by Chromium's virtual authenticator: the list of her passkeys.

    carol, since alice has reached the limit of failed logins and bob has turned two-factor on.
    """
    password = "carol-a-long-passphrase"
    server.create_user("carol", password)
    virtual_authenticator(page)
    log_in(page, server, "carol", password)
    add_passkey(page, server, "laptop", password)


def admin_list(page, server):
    """dana, made admin with `flask roles grant`, opens the admin area: every account, and its buttons."""
    password = "dana-a-long-passphrase"
    server.create_user("dana", password)
    granted = server.flask("roles", "grant", "dana", "admin", timeout=60)
    assert granted.returncode == 0, granted.stdout + granted.stderr
    log_in(page, server, "dana", password)
    page.goto(server.url("/admin/users"))  # linked from the home page, for admins


def two_sessions(page, server):
    """erin, logged in in another browser too, opens her sessions page: both, this one marked."""
    password = "erin-a-long-passphrase"
    server.create_user("erin", password)
    other = page.context.browser.new_context(user_agent="Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/133.0")
    log_in(other.new_page(), server, "erin", password)
    log_in(page, server, "erin", password)
    page.goto(server.url("/account/sessions"))
    other.close()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("steps", nargs="*", help="only these steps (folder names or numbers)")
    parser.add_argument("--out", type=Path, default=OUT, help=f"where to write them (default: {OUT})")
    options = parser.parse_args(argv)
    steps = select(discover(), options.steps) if options.steps else discover()
    too_big = []
    with sync_playwright() as playwright:
        launch = launch_args(bundled_path=playwright.chromium.executable_path)
        if launch is None:
            sys.exit(HOW_TO_INSTALL)
        browser = playwright.chromium.launch(**launch)
        for step in steps:
            folder = options.out / step.name
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory() as temp, serve(step, Path(temp)) as server:
                for name, act in shots(step):
                    # A new context each time: no cookies from the picture before.
                    context = browser.new_context(viewport=VIEWPORT, device_scale_factor=1)
                    page = context.new_page()
                    act(page, server)
                    path = folder / f"{name}.png"
                    page.screenshot(path=path, animations="disabled", caret="hide")
                    context.close()
                    size = path.stat().st_size
                    print(f"{path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}: {size} bytes")
                    if size >= MAX_BYTES:
                        too_big.append(f"{path} is {size} bytes, over {MAX_BYTES}")
        browser.close()
    if too_big:
        sys.exit("\n".join(too_big))


if __name__ == "__main__":
    main()
