"""Every route the app has, sent hostile input by a visitor and by a logged-in user: never a 500.

The other files send hostile input to the forms they know. These tests ask
the app itself what it serves (Flask's `app.url_map`), so that a route
added in a later step, or in a learner's own app, is covered without a new
line here; the fields they fill are every named input of every page the
same browser can see. From step 12 the app has an OpenID provider to talk
to (the suite's real one), so that its sign-in routes are live too.
"""

import json

import pytest

from harness.accounts import USERS
from harness.apps import browser
from harness.apps import can_log_in
from harness.apps import grant
from harness.apps import logged_in_browser
from harness.pages import inputs

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"

# What each field of a form is set to, already percent-encoded: bytes sent as they are.
HOSTILE_VALUES = [
    ("empty", b""),
    ("100kB", b"a" * 100_000),
    ("nul-and-bad-escapes", b"%00%FF%FE%C3%28%zz%"),
    ("raw-bytes", b"\xff\xfe\x00\xc3\x28"),
    ("control-and-bidi", "\x1b[31m\r\n\u202e\U0001f600".encode()),
    ("number-like", b"-1e999"),
]

# Bodies with the JSON content type, as the passkey ceremonies send theirs.
HOSTILE_JSON = [
    ("broken-json", b'{"id": '),
    ("json-array", b"[]"),
    ("json-string", b'"x"'),
    ("json-wrong-types", json.dumps({"id": 1, "rawId": [], "type": None, "response": "x"}).encode()),
    ("json-deep", b"[" * 100_000 + b"]" * 100_000),  # 200 kB, under the 1 MB limit
]

# Values for a route's variable parts, each tried where the part takes it:
# the other user's id and nobody's, and odd text (tokens, session ids).
PART_VALUES = [USERS["bob"]["id"], 0, "x", "\x00%\u202e", "a" * 32, "z" * 5_000]
# What every GET is also sent: the query strings a form or a link could carry, made odd.
HOSTILE_QUERY = "?next=%FF%00&page=-1&page=99999999999999999999&token=%00&code=%zz&error=%FF"

# Headers every route is also sent, beside the browser's own (its session cookie kept).
HOSTILE_HEADERS = {
    "X-Forwarded-For": "203.0.113.9, not-an-address, ::zz, " + "9" * 1_000,
    "X-Forwarded-Proto": "gopher",
    "X-Forwarded-Host": "evil.example",
    "X-Forwarded-Port": "-1",
    "User-Agent": "\xff\xfe\x7f" * 2_000,
    "Accept-Language": "*;q=abc, xx-" * 100,
    "Referer": "http://evil.example/%FF%00",
    "Origin": "null",
    "If-Modified-Since": "yesterday",
    "Range": "bytes=99-1",
}
# Host headers that name another site, or no host at all (the browser's cookies still sent).
HOSTILE_HOSTS = ["evil.example", "localhost:99999", "[::1", "localhost:", "a" * 300, "local host"]


@pytest.fixture(name="test_config")
def with_a_provider_where_taught(request, step, test_config):
    """From step 12 (openid-connect), the suite's real OpenID provider configured: its routes answer, not 404."""
    if "openid-connect" not in step.features:
        return test_config
    return test_config | request.getfixturevalue("provider").config("Example ID")


def urls(app):
    """[(endpoint, methods, url)]: every route of `app`, its variable parts filled in every way above."""
    adapter = app.url_map.bind("localhost")
    found = []
    for rule in app.url_map.iter_rules():
        if rule.endpoint == "static":
            continue  # files, served by Werkzeug (test_hostile_get_paths sends it odd paths)
        methods = sorted(rule.methods - {"HEAD", "OPTIONS"})
        fillings = [{}]
        for name in rule.arguments:
            fillings = [{**filled, name: value} for filled in fillings for value in PART_VALUES]
        for values in fillings:
            try:
                url = adapter.build(rule.endpoint, values)
                # Only a value the part takes: "x" is no id, 5,000 letters no session id.
                reached = adapter.match(url, method=methods[0])[0]
            except Exception:  # Werkzeug's converters refuse a value each in its own way
                continue
            if reached == rule.endpoint:
                found.append((rule.endpoint, methods, url))
    return found


def field_names(client, urls):
    """Every named input on every page of `urls` this browser can GET, but the CSRF token."""
    names = set()
    for url in urls:
        response = client.get(url)
        if response.status_code == 200 and response.mimetype == "text/html":
            names |= set(inputs(response.text))
    return names - {"csrf_token"}


def bodies(names, token):
    """[(id, body, content type)]: every field set to each hostile value, a valid CSRF token first; then JSON."""
    start = b"csrf_token=" + token.encode() if token else b""
    sent = []
    for case, value in HOSTILE_VALUES:
        sent.append((case, b"&".join([start, *(name.encode() + b"=" + value for name in names)]), FORM))
    repeated = [name.encode() + b"=" + value for name in names for value in (b"x", b"%00")]
    sent.append(("repeated-fields", b"&".join([start, *repeated]), FORM))
    sent += [(case, body, JSON) for case, body in HOSTILE_JSON]
    return sent


def empty_counts(app):
    """The rate limits' counts emptied (step 06+), as the `app` fixture does between tests."""
    for limiter in app.extensions.get("limiter", ()):
        limiter.reset()


def server_errors(app, make_browser):
    """[(what was sent, its status)]: each request to each route from a new `make_browser()` that answered 500 or more.

    A new browser (at an address of its own) for each route, and the
    counts emptied before each request: a request that logs it out, or a
    limit it reaches, must not change what the next one is answered.
    """
    routes = urls(app)
    gettable = [url for _, methods, url in routes if "GET" in methods]
    # The fields a visitor's pages have (the login form's) and this browser's
    # (a logged-in user's forms): a field a form lacks is only ignored.
    names = sorted(
        field_names(browser(app, "198.51.100.252").client, gettable)
        | field_names(make_browser("198.51.100.251").client, gettable)
    )
    # The sweep reaches what every step has: the login form's route, and its fields.
    assert "/login" in [url for _, _, url in routes] and {"username", "password"} <= set(names), (routes, names)
    errors = []
    for index, (endpoint, methods, url) in enumerate(routes):
        empty_counts(app)
        auth = make_browser(f"198.51.100.{index % 250 + 1}")
        token = auth.token() or ""
        csrf = {"X-CSRFToken": token} if token else {}  # how a script's JSON carries it
        sent = []  # (what, the test client's open() arguments)
        if "GET" in methods:
            sent += [(f"GET {url}{query}", {"path": url + query}) for query in ("", HOSTILE_QUERY)]
            sent.append((f"GET {url}, hostile headers", {"path": url, "headers": HOSTILE_HEADERS}))
            sent += [
                (f"GET {url}, Host {host[:20]}", {"path": url, "headers": {"Host": host}}) for host in HOSTILE_HOSTS
            ]
        if "POST" in methods:
            posts = bodies(names, token)
            sent += [
                (f"POST {url}, {case}", {"path": url, "data": body, "content_type": kind}) for case, body, kind in posts
            ]
            # The first body (every field empty, the CSRF token good) again, with the headers above.
            _, body, kind = posts[0]
            sent.append(
                (
                    f"POST {url}, hostile headers",
                    {"path": url, "data": body, "content_type": kind, "headers": HOSTILE_HEADERS},
                )
            )
        for what, request in sent:
            empty_counts(app)  # or a limit reached would answer 429 before the view reads the rest
            headers = csrf | request.get("headers", {})
            response = auth.client.open(method=what.split()[0], **(request | {"headers": headers}))
            if response.status_code >= 500 or "Traceback" in response.text:
                errors.append((f"{what} ({endpoint})", response.status_code))
    return errors


@pytest.mark.contract(
    "Every route, sent hostile bodies, query strings, headers, hosts and variable parts, by a visitor or a logged-in user "
    "(an admin where there is an admin area), answers a page, a redirect or a 4xx, never a 500"
)
@pytest.mark.features("login", "profile")
@pytest.mark.asvs("16.5.1")
def test_every_route_takes_hostile_input_from_a_visitor(app):
    assert server_errors(app, lambda address: browser(app, address)) == []
    # Nothing a visitor sent changed an account: both still log in.
    assert (can_log_in(app, "alice"), can_log_in(app, "bob")) == (True, True)


@pytest.mark.contract(
    "Every route, sent hostile bodies, query strings, headers, hosts and variable parts, by a visitor or a logged-in user "
    "(an admin where there is an admin area), answers a page, a redirect or a 4xx, never a 500"
)
@pytest.mark.features("login", "profile")
@pytest.mark.asvs("16.5.1")
def test_every_route_takes_hostile_input_from_a_user(step, app):
    if "admin-area" in step.features:
        grant(app)  # alice as an admin, logged in just now: the admin area's forms take her input too
    assert server_errors(app, lambda address: logged_in_browser(app, "alice", address)) == []
    # Her password is still hers: no hostile change of it went through.
    assert can_log_in(app, "alice")
