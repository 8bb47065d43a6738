"""After login, back to where you were going: only to a path on this site."""

from urllib.parse import quote
from urllib.parse import urljoin

import pytest

from harness.pages import forms

SAFE = [
    "/profile",
    "/profile?tab=settings",
    "/profile?next=/profile",
    "/?greeting=hello#top",
    "/profile/../profile",
    "/%2F%2Fevil.example",  # an odd path, but a path here: browsers keep %2F as it is
]

HOSTILE = [
    # Other hosts and schemes.
    "https://evil.example",
    "http://evil.example/profile",
    "HTTPS://EVIL.EXAMPLE",
    "ftp://evil.example",
    "https:evil.example",
    "https:/evil.example",
    "http:\\\\evil.example",
    "evil.example",
    "evil.example/profile",
    # Scheme-relative: "same scheme, other host".
    "//evil.example",
    "///evil.example",
    "////evil.example",
    "//evil.example/profile",
    "//localhost@evil.example",
    # Backslashes count as slashes in browsers.
    "/\\evil.example",
    "\\\\evil.example",
    "\\/evil.example",
    "/\\/evil.example",
    "/profile\\..\\\\evil.example",
    # Whitespace and control characters that browsers drop or trip over.
    " //evil.example",
    " /profile",
    "\t//evil.example",
    "/\t/evil.example",
    "/\n/evil.example",
    "/\r\n/evil.example",
    "\x00//evil.example",
    "/\x00/evil.example",
    "/\x0b/evil.example",
    "/\x7f/evil.example",
    "\u3000//evil.example",
    "/\u2215evil.example",  # division slash
    "/\uff0fevil.example",  # fullwidth solidus
    # Script and data URLs.
    "javascript:alert(1)",
    "JaVaScRiPt:alert(1)",
    " javascript:alert(1)",
    "java\tscript:alert(1)",
    "javascript://%0aalert(1)",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:msgbox(1)",
    # User-info and encoding tricks.
    "https://localhost@evil.example",
    "https://localhost:5000@evil.example/profile",
    "@evil.example",
    "%2F%2Fevil.example",
    "%2f%2fevil.example",
    "%5C%5Cevil.example",
    "https%3A%2F%2Fevil.example",
    # Nothing useful at all.
    "",
    " ",
    ".",
    "profile",
    "?next=//evil.example",
    "#//evil.example",
]


def login_url(target):
    return "/login?next=" + quote(target, safe="")


@pytest.mark.contract("After login, next is followed when it is a path on this site (step 04+)")
@pytest.mark.features("safe-next")
@pytest.mark.parametrize("target", SAFE)
def test_login_follows_next_to_a_path_on_this_site(auth, target):
    response = auth.login("alice", path=login_url(target))
    assert response.status_code in (302, 303)
    assert response.headers["Location"] == target


@pytest.mark.contract(
    "next pointing anywhere else (another host or scheme, slash and control-character tricks) falls back to /profile"
)
@pytest.mark.features("safe-next")
@pytest.mark.parametrize("target", HOSTILE, ids=[repr(t) for t in HOSTILE])
def test_login_refuses_next_elsewhere(auth, target):
    response = auth.login("alice", path=login_url(target))
    assert response.status_code in (302, 303)
    assert response.headers["Location"] == "/profile"


@pytest.mark.contract("Sent from /profile to log in, you land back on /profile")
@pytest.mark.features("safe-next", "login-next", "profile")
def test_round_trip_from_profile_through_login(client, auth):
    to_login = client.get("/profile")
    response = auth.login("alice", path=to_login.headers["Location"])
    assert response.headers["Location"] == "/profile"
    assert client.get("/profile").status_code == 200


@pytest.mark.contract("next survives a failed login attempt")
@pytest.mark.features("safe-next")
def test_next_survives_a_failed_login(client, auth):
    url = login_url("/profile?tab=settings")
    failed = auth.login("alice", "wrong password", path=url)
    assert failed.status_code == 200
    [form] = [f for f in forms(failed.text) if "password" in f["inputs"]]
    # The form posts back to where it was shown, next included.
    again = urljoin(url, form["action"]) if form["action"] else url
    response = auth.login("alice", path=again)
    assert response.headers["Location"] == "/profile?tab=settings"


@pytest.mark.contract(
    "next pointing anywhere else (another host or scheme, slash and control-character tricks) falls back to /profile"
)
@pytest.mark.features("safe-next")
@pytest.mark.parametrize(
    "query", ["next=/profile&next=//evil.example", "next=%00", "next=%FF%FE", "next=" + "a" * 10_000]
)
def test_odd_next_parameters_never_break_login(auth, query):
    response = auth.login("alice", path="/login?" + query)
    assert response.status_code in (302, 303)
    assert response.headers["Location"] == "/profile"
