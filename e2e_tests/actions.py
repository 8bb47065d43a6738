"""What a learner does in the browser, as small functions on a Playwright page.

The tests and the screenshot script share them. They find fields by the
names the contract gives them (`username`, `password`, `remember`...), and
fill them in as a person would.
"""

import io
import re
import time

from harness.accounts import USERS
from harness.two_factor import TwoFactor
from harness.two_factor import code
from harness.two_factor import recovery_codes_on
from harness.two_factor import secret_on

LOG_OUT = re.compile(r"log ?out", re.IGNORECASE)


def field(page, name):
    return page.locator(f'form [name="{name}"]')


def type_into(page, name, value):
    """Click into the field and fill it in.

    `fill()` puts the whole value in at once (with the input events a
    keyboard would fire): key-by-key typing, a round trip to the browser per
    key, made these tests a third slower and tests nothing the server sees.
    """
    box = field(page, name)
    box.click()
    box.fill(value)


def log_in(page, server, username="alice", password=None, remember=False, path="/login"):
    """Open the login page, fill the form and press Enter in the password field."""
    if password is None:
        password = USERS[username]["password"]
    page.goto(server.url(path))
    type_into(page, "username", username)
    type_into(page, "password", password)
    if remember:
        field(page, "remember").check()
    # Enter submits the form, as a click on its button would.
    field(page, "password").press("Enter")
    page.wait_for_load_state()


def log_out(page, server):
    """Press the log-out button on the home page (every step has one there); return the response."""
    page.goto(server.url("/"))
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name=LOG_OUT).click()
    page.wait_for_load_state()
    return navigation.value  # the response to the last request of the redirect chain


# Step 06+'s default limit of failed logins per username (the contract's).
FAILURES_PER_USERNAME = 5


def too_many_failures(page, server, username):
    """Fail to log in as `username` until the limit, then once more; return the last response (a 429)."""
    for _ in range(FAILURES_PER_USERNAME):
        log_in(page, server, username, "not-the-password")
    with page.expect_response(lambda response: response.request.method == "POST") as last:
        log_in(page, server, username, "not-the-password")
    return last.value


BAD_SIGN_UP = {
    "username": "a b",
    "email": "not-an-address",
    "password": "short",
    "confirm_password": "different",
}


def register(page, server, fields):
    """Fill the sign-up form with `fields` and press Enter."""
    page.goto(server.url("/register"))
    for name, value in fields.items():
        type_into(page, name, value)
    field(page, "confirm_password").press("Enter")
    page.wait_for_load_state()


def start_two_factor_setup(page, server):
    """From the two-factor settings, press "Turn on": the setup page; return the response to its QR image."""
    page.goto(server.url("/two-factor"))
    with page.expect_response(lambda response: response.url == server.url("/two-factor/qr.svg")) as qr:
        page.get_by_role("button", name=re.compile("turn on", re.IGNORECASE)).click()
    page.wait_for_load_state()
    return qr.value


def finish_two_factor_setup(page, password):
    """On the setup page, type the key into an "app" (pyotp), and its code back with the password.

    Returns what the user keeps: the secret and the recovery codes that the
    next page shows once.
    """
    secret = secret_on(page.content())
    now = time.time()
    type_into(page, "code", code(secret, now))
    type_into(page, "current_password", password)
    field(page, "current_password").press("Enter")
    page.wait_for_load_state()
    return TwoFactor(secret, recovery_codes_on(page.content()), last=now)


def enter_code(page, value):
    """Type a code (from the app, or a recovery code) into the second stage of a login and press Enter."""
    type_into(page, "code", value)
    field(page, "code").press("Enter")
    page.wait_for_load_state()


def read_qr(png):
    """The text of the one QR code in a PNG image, read as a phone's camera reads it (zxing-cpp)."""
    import zxingcpp
    from PIL import Image

    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(png)))
    assert len(found) == 1, f"{len(found)} QR codes in the image"
    return found[0].text


def inline_scripts(page):
    """The page's inline JavaScript: <script> elements without src, and on... attributes."""
    return page.evaluate(
        """() => [...document.querySelectorAll("*")].flatMap((element) => [
            ...(element.localName === "script" && !element.src ? [element.outerHTML] : []),
            ...[...element.attributes].filter((a) => a.name.startsWith("on")).map((a) => `${a.name}="${a.value}"`),
        ])"""
    )


def words(page):
    """The words the page shows (punctuation around them dropped)."""
    return re.findall(r"[\w.@-]+", page.locator("body").inner_text())


def virtual_authenticator(page):
    """Give the page Chromium's own virtual authenticator (DevTools' WebAuthn domain): a platform one, keeping passkeys.

    It answers navigator.credentials at once, as a laptop's fingerprint
    reader would once the finger is on it: the user is present and verified.
    Nothing is downloaded; it is part of Chromium.
    """
    cdp = page.context.new_cdp_session(page)
    cdp.send("WebAuthn.enable")
    options = {
        "protocol": "ctap2",
        "transport": "internal",
        "hasResidentKey": True,
        "hasUserVerification": True,
        "isUserVerified": True,
        "automaticPresenceSimulation": True,
    }
    authenticator = cdp.send("WebAuthn.addVirtualAuthenticator", {"options": options})["authenticatorId"]
    return cdp, authenticator


def add_passkey(page, server, name, password):
    """From /passkeys: name the passkey, type the password, and let the authenticator make it."""
    page.goto(server.url("/passkeys"))
    type_into(page, "name", name)
    type_into(page, "current_password", password)
    field(page, "current_password").press("Enter")
    page.wait_for_load_state()
    with page.expect_navigation():
        page.get_by_role("button", name="Make the passkey").click()
    page.wait_for_load_state()


def sign_in_with_passkey(page, url):
    """Open the login page at `url` and press "Sign in with a passkey"; the alert's text if it fails, else None."""
    page.goto(url)
    button = page.get_by_role("button", name="Sign in with a passkey")
    with page.expect_response(
        lambda response: "/login/passkey?" in response.url or response.url.endswith("/login/passkey")
    ) as answer:
        button.click()
    if answer.value.ok:
        page.wait_for_url(lambda url: not url.endswith("/login"))
        page.wait_for_load_state()
        return None
    alert = page.locator("#passkey-error")
    alert.wait_for()
    return alert.inner_text()
