"""Hostile and broken input: a 4xx or the form again, never a 500."""

import pytest

from harness.apps import AuthActions
from harness.apps import is_anonymous
from harness.apps import session_tables
from harness.apps import stored_strings
from harness.pages import inputs
from harness.pages import text

INVALID = "Invalid username or password."
FORM = "application/x-www-form-urlencoded"

# (id, method, body, content type). A body is bytes sent as they are;
# TOKEN in it becomes the session's CSRF token (empty where there is none).
REQUESTS = [
    ("no-fields", "POST", b"csrf_token=TOKEN", FORM),
    ("no-password", "POST", b"csrf_token=TOKEN&username=alice", FORM),
    ("no-username", "POST", b"csrf_token=TOKEN&password=wonderland", FORM),
    (
        "repeated-fields",
        "POST",
        b"csrf_token=TOKEN&username=nobody&username=alice&password=x&password=wonderland",
        FORM,
    ),
    ("100kB-username", "POST", b"csrf_token=TOKEN&password=x&username=" + b"a" * 100_000, FORM),
    ("100kB-password", "POST", b"csrf_token=TOKEN&username=alice&password=" + b"a" * 100_000, FORM),
    ("over-size-limit", "POST", b"csrf_token=TOKEN&username=alice&password=" + b"a" * 5_000_000, FORM),
    ("non-utf8", "POST", b"csrf_token=TOKEN&username=%FF%FEalice&password=%C3%28", FORM),
    ("raw-non-utf8", "POST", b"csrf_token=TOKEN&username=\xff\xfe&password=\xc3\x28", FORM),
    ("nul-bytes", "POST", b"csrf_token=TOKEN&username=ali%00ce&password=wonder%00land", FORM),
    ("control-chars", "POST", b"csrf_token=TOKEN&username=%1B%5B31m%0D%0A&password=%08%07", FORM),
    ("unicode", "POST", "csrf_token=TOKEN&username=\u00e5lice\U0001f600&password=\u202ewonderland".encode(), FORM),
    ("long-unicode-password", "POST", ("csrf_token=TOKEN&username=alice&password=" + "\U0001f600" * 40).encode(), FORM),
    ("bad-percent-escapes", "POST", b"csrf_token=TOKEN&username=%zz%&password=%", FORM),
    ("json-body", "POST", b'{"username": "alice", "password": "wonderland"}', "application/json"),
    ("broken-json", "POST", b'{"username": ', "application/json"),
    (
        "broken-multipart",
        "POST",
        b'--xyz\r\nContent-Disposition: form-data; name="username"\r\n\r\nalice',
        "multipart/form-data; boundary=xyz",
    ),
    ("multipart-no-boundary", "POST", b"garbage", "multipart/form-data"),
    ("unknown-content-type", "POST", b"\x00\x01\x02", "application/octet-stream"),
    ("put", "PUT", b"csrf_token=TOKEN&username=alice&password=wonderland", FORM),
    ("delete", "DELETE", b"", FORM),
]

# The form again is the only right answer for these: they are ordinary
# form posts with a wrong or missing value.
FORM_AGAIN = {"no-fields", "no-password", "no-username", "100kB-username", "100kB-password", "nul-bytes"}


def send(client, path, method, body, content_type):
    token = AuthActions(client).token() or ""
    return client.open(path, method=method, data=body.replace(b"TOKEN", token.encode()), content_type=content_type)


@pytest.mark.contract("Bad input to POST /login gets a 4xx or the form again, never a 500")
@pytest.mark.features("login")
@pytest.mark.parametrize(("case", "method", "body", "content_type"), REQUESTS, ids=[r[0] for r in REQUESTS])
@pytest.mark.asvs("16.5.1")
def test_hostile_login_posts(client, auth, case, method, body, content_type):
    response = send(client, "/login", method, body, content_type)
    assert response.status_code < 500
    assert "Traceback" not in response.text
    if case in FORM_AGAIN or response.status_code == 200:
        assert response.status_code == 200
        assert INVALID in text(response.text)
    elif case == "over-size-limit":
        assert response.status_code == 413
    elif response.status_code not in (302, 303):  # "repeated-fields" may log alice in
        assert 400 <= response.status_code < 500
    # Nothing was broken on the way: the real user still logs in.
    assert AuthActions(client).login("alice").headers.get("Location") == "/profile"


@pytest.mark.contract("A JSON body sent to a form, even with a good CSRF token, gets 415 and logs nobody in (step 03+)")
@pytest.mark.features("login", "csrf")
@pytest.mark.parametrize("body", [b"[]", b'"x"', b'{"username": "alice", "password": "wonderland"}'])
def test_json_sent_to_a_form_gets_415(client, auth, body):
    # Flask-WTF would read JSON as the form's fields: a list or a string raised there.
    headers = {"X-CSRFToken": auth.token()}
    response = client.post("/login", data=body, content_type="application/json", headers=headers)
    assert response.status_code == 415
    assert is_anonymous(client)


@pytest.mark.contract("A body over the size limit (1 MB) is refused with 413")
@pytest.mark.features("login", "size-limit")
def test_a_body_over_the_size_limit_is_refused(client):
    body = b"csrf_token=TOKEN&username=alice&password=" + b"a" * 2_000_000
    assert send(client, "/login", "POST", body, FORM).status_code == 413


@pytest.mark.contract("Bad input to POST /logout gets a 4xx, never a 500")
@pytest.mark.features("logout")
@pytest.mark.parametrize(("case", "method", "body", "content_type"), REQUESTS, ids=[r[0] for r in REQUESTS])
def test_hostile_logout_posts(client, case, method, body, content_type):
    response = send(client, "/logout", method, body, content_type)
    assert response.status_code < 500
    assert "Traceback" not in response.text


@pytest.mark.contract("Odd paths and query strings get a page or a 4xx, never a 500")
@pytest.mark.features("login", "profile")
@pytest.mark.parametrize(
    "path",
    [
        "/profile?x=%FF%00",
        "/login?username=%00",
        "/%00",
        "/login/..%2F..%2Fetc%2Fpasswd",
        "/" + "a" * 5000,
        "/profile/",
    ],
)
@pytest.mark.asvs("16.5.1")
def test_hostile_get_paths(client, path):
    response = client.get(path)
    assert response.status_code < 500
    assert "Traceback" not in response.text


REGISTER_REQUESTS = [
    ("no-fields", b"csrf_token=TOKEN", FORM),
    (
        "100kB-fields",
        b"csrf_token=TOKEN&username=" + b"u" * 100_000 + b"&email=" + b"e" * 100_000 + b"&password=" + b"p" * 100_000,
        FORM,
    ),
    ("over-size-limit", b"csrf_token=TOKEN&username=carol&password=" + b"p" * 5_000_000, FORM),
    (
        "non-utf8",
        b"csrf_token=TOKEN&username=%FF%FEcarol&email=%C3%28@example.com&password=%FFpassword1&confirm_password=%FFpassword1",
        FORM,
    ),
    (
        "nul-bytes",
        b"csrf_token=TOKEN&username=car%00ol&email=carol%00@example.com&password=pass%00word1&confirm_password=pass%00word1",
        FORM,
    ),
    (
        "repeated-fields",
        b"csrf_token=TOKEN&username=carol&username=alice&email=a@example.com&email=b@example.com",
        FORM,
    ),
    ("json-body", b'{"username": "carol", "email": "carol@example.com"}', "application/json"),
    (
        "broken-multipart",
        b'--xyz\r\nContent-Disposition: form-data; name="username"\r\n\r\ncarol',
        "multipart/form-data; boundary=xyz",
    ),
]


@pytest.mark.contract("Bad input to POST /register gets a 4xx or the form again, and stores nothing")
@pytest.mark.features("registration")
@pytest.mark.parametrize(("case", "body", "content_type"), REGISTER_REQUESTS, ids=[r[0] for r in REGISTER_REQUESTS])
def test_hostile_register_posts(app, client, database_url, case, body, content_type):
    # Visitors' sessions may live in the database too (step 05+): they may change.
    sessions = session_tables(app)
    before = stored_strings(database_url, skip=sessions)
    response = send(client, "/register", "POST", body, content_type)
    assert response.status_code < 500
    assert "Traceback" not in response.text
    if response.status_code == 200:
        assert "username" in inputs(response.text)  # the form again
    else:
        assert 400 <= response.status_code < 500
    assert stored_strings(database_url, skip=sessions) == before  # no account, nothing changed


def cookie_names(app, step):
    """The cookies a visitor could forge: the session's, and from step 03 the remember cookie."""
    names = [app.config["SESSION_COOKIE_NAME"]]
    if "remember" in step.features:
        names.append(app.config.get("REMEMBER_COOKIE_NAME", "remember_token"))
    return names


def a_real_cookie(app, name):
    """The value of cookie `name` that logging in with remember me gets (if the step sets it)."""
    client = app.test_client()
    AuthActions(client).login("alice", remember="y")
    cookie = client.get_cookie(name)
    return cookie.value if cookie is not None else "1|" + "0" * 128


# (id, value) of a Cookie header's value; REAL is a cookie the app really set.
HOSTILE_COOKIES = [
    ("empty", lambda real: ""),
    ("garbage", lambda real: "not-a-cookie"),
    ("pipe", lambda real: "1|"),
    ("quoted-octal-non-ascii", lambda real: '"1|\\351"'),
    ("raw-latin1", lambda real: "1|\xe9\xe9"),
    ("quoted-empty", lambda real: '""'),
    ("unbalanced-quote", lambda real: '"1|abc'),
    ("huge", lambda real: "a" * 8_000),
    ("truncated", lambda real: real[: len(real) // 2]),
    # Not the last character: in base64 its low bits may be padding, unchecked.
    ("tampered", lambda real: real[:-5] + ("A" if real[-5] != "A" else "B") + real[-4:]),
    ("real-then-junk", lambda real: real + "\\351"),
    ("control-chars", lambda real: "1|\x01\x7f"),
]
COOKIE_PATHS = ["/", "/login", "/profile", "/register"]


@pytest.mark.contract(
    "A cookie nobody issued (garbage, non-ASCII, huge, truncated, quoted, empty) means anonymous, never a 500"
)
@pytest.mark.features("login", "profile")
@pytest.mark.parametrize(("case", "make"), HOSTILE_COOKIES, ids=[c[0] for c in HOSTILE_COOKIES])
def test_hostile_cookies(step, app, case, make):
    for name in cookie_names(app, step):
        value = make(a_real_cookie(app, name))
        # A raw Cookie header, exactly as an attacker's curl would send it.
        browser = app.test_client(use_cookies=False)
        headers = {"Cookie": f"{name}={value}"}
        for path in COOKIE_PATHS:
            if path == "/register" and "registration" not in step.features:
                continue
            response = browser.get(path, headers=headers)
            assert response.status_code < 500, (name, path)
            assert "Traceback" not in response.text
        # Anonymous: the profile sends this visitor to the login page.
        assert browser.get("/profile", headers=headers).status_code in (302, 303), name
        assert browser.post("/logout", headers=headers).status_code < 500


ODD_IDS = [
    ("letters", "abc"),
    ("empty", ""),
    ("decimal-string", "1.5"),
    ("float", 1.5),
    ("negative", -1),
    ("list", [1]),
    ("dict", {"id": 1}),
    ("null", None),
    ("huge-int", 2**64 - 1),  # the largest a server-side store can hold
    ("huge-digits", "9" * 5000),
    ("full-width-digit", "\uff11"),
    ("spaced", " 1 "),
    ("no-such-user", 999_999),
]


@pytest.mark.contract("A signed cookie whose user id is not a number, or is no user's, means anonymous, never a 500")
@pytest.mark.features("login", "profile")
@pytest.mark.parametrize(("case", "user_id"), ODD_IDS, ids=[c[0] for c in ODD_IDS])
def test_signed_odd_user_ids_are_anonymous(step, app, client, case, user_id):
    # The app itself writes the session, signed with its own key (or stored
    # on its server): only someone who holds the key could send this.
    with client.session_transaction() as session:
        session["user_id"] = user_id  # steps 01-02
        session["_user_id"] = user_id  # Flask-Login's key, step 03+
    for path in COOKIE_PATHS:
        if path == "/register" and "registration" not in step.features:
            continue
        response = client.get(path)
        assert response.status_code < 500, path
        assert "Traceback" not in response.text
    assert client.get("/profile").status_code in (302, 303)


@pytest.mark.contract("A signed cookie whose user id is not a number, or is no user's, means anonymous, never a 500")
@pytest.mark.features("remember", "profile")
@pytest.mark.parametrize(("case", "user_id"), ODD_IDS, ids=[c[0] for c in ODD_IDS])
def test_signed_odd_remember_ids_are_anonymous(step, app, case, user_id):
    from flask_login.utils import encode_cookie  # here: steps 01-02 have no Flask-Login

    # Flask-Login's own "id|HMAC" format, signed with the app's key.
    with app.test_request_context():
        value = encode_cookie(str(user_id))
    browser = app.test_client(use_cookies=False)
    headers = {"Cookie": f"{app.config.get('REMEMBER_COOKIE_NAME', 'remember_token')}={value}"}
    for path in COOKIE_PATHS:
        if path == "/register" and "registration" not in step.features:
            continue
        response = browser.get(path, headers=headers)
        assert response.status_code < 500, path
        assert "Traceback" not in response.text
    assert browser.get("/profile", headers=headers).status_code in (302, 303)
