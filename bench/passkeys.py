"""Figure 13: what checking a passkey costs the server, at registration and at sign-in.

The first step with `passkeys`, in this process, on its SQLite database,
answered by the harness's software authenticator (an ES256 key, as most
authenticators make). Timed: py_webauthn's checks alone
(verify_registration_response, verify_authentication_response: parse the
CBOR and JSON, compare challenge, origin and relying party hash, check the
ECDSA signature), and the step's whole POST /login/passkey through Flask's
test client (that check, plus the session, the counter's UPDATE and the
login). Each sign-in asks for a challenge first, untimed.
"""

import statistics
import time

from common import in_process
from common import login_ms

from harness.accounts import USERS
from harness.apps import logged_in_browser
from harness.passkeys import SoftAuthenticator
from harness.passkeys import add_passkey
from harness.passkeys import post_json
from harness.passkeys import sign_in_options

ORIGIN = "http://localhost:5000"


def library_cost(repeats):
    """µs for py_webauthn's registration check and its sign-in check, each on a fresh answer."""
    import json

    from webauthn import generate_authentication_options
    from webauthn import generate_registration_options
    from webauthn import options_to_json
    from webauthn import verify_authentication_response
    from webauthn import verify_registration_response

    register, sign = [], []
    for _ in range(repeats):
        authenticator = SoftAuthenticator(ORIGIN)
        options = generate_registration_options(rp_id="localhost", rp_name="bench", user_name="alice")
        answer = authenticator.create(json.loads(options_to_json(options)))
        start = time.perf_counter()
        verified = verify_registration_response(
            credential=answer, expected_challenge=options.challenge, expected_rp_id="localhost", expected_origin=ORIGIN
        )
        register.append(time.perf_counter() - start)
        options = generate_authentication_options(rp_id="localhost")
        answer = authenticator.get(json.loads(options_to_json(options)))
        start = time.perf_counter()
        verify_authentication_response(
            credential=answer,
            expected_challenge=options.challenge,
            expected_rp_id="localhost",
            expected_origin=ORIGIN,
            credential_public_key=verified.credential_public_key,
            credential_current_sign_count=0,
            require_user_verification=True,
        )
        sign.append(time.perf_counter() - start)
    return {
        "verify_registration_us": round(1e6 * statistics.median(register), 1),
        "verify_authentication_us": round(1e6 * statistics.median(sign), 1),
        "repeats": repeats,
    }


def sign_in_cost(tmp, step, repeats):
    """ms for the step's POST /login/passkey, and for a password login beside it, in this process (bcrypt at 4)."""
    extra = {"FLASK_BCRYPT_LOG_ROUNDS": "4", "FLASK_WEBAUTHN_ORIGIN": ORIGIN}
    with in_process(tmp, step, "passkeys", extra=extra) as (app, _):
        authenticator = SoftAuthenticator(ORIGIN)
        response = add_passkey(logged_in_browser(app), authenticator, USERS["alice"]["password"])
        assert response.status_code == 200, response.status_code
        passkey, password = [], []
        for i in range(repeats + 1):
            client = app.test_client()
            button, options = sign_in_options(client)
            answer = authenticator.get(options)
            start = time.perf_counter()
            response = post_json(client, button["verify"], answer, button["csrf"])
            took = time.perf_counter() - start
            assert response.status_code == 200, response.get_data(as_text=True)
            # Beside it, a login with the password.
            login_took = login_ms(app)
            if i:  # the first of each is the app's first pass through the view: not counted
                passkey.append(took)
                password.append(login_took / 1e3)
    return {
        "sign_in_ms": round(1e3 * statistics.median(passkey), 2),
        "password_login_ms": round(1e3 * statistics.median(password), 2),
        "repeats": repeats,
    }


def measure(tmp, step, repeats=100):
    return {"step": step.name, "library": library_cost(repeats), "view": sign_in_cost(tmp, step, repeats)}
