"""Passkeys (step 11+), driven from outside: a software authenticator, and the ceremonies through a step's JSON endpoints.

`SoftAuthenticator` does what a phone or a security key does in a WebAuthn
ceremony, with `cryptography` keys: it makes a discoverable ES256
credential ("none" attestation), and signs the authenticator data and the
hash of the client data, as CTAP2 and the WebAuthn spec lay them out. A
browser writes the client data (type, challenge, origin); here the caller
says what to write, so a test can also be the phishing site (another
origin), an altered answer or a cloned authenticator. The browser tests
use Chromium's own virtual authenticator instead.
"""

import base64
import hashlib
import json
import os
import struct
from dataclasses import dataclass

from harness.pages import data_elements

# Flags of the authenticator data (WebAuthn, 6.1): user present, user verified, attested credential data.
UP, UV, AT = 0x01, 0x04, 0x40


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def from_b64url(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass
class Credential:
    """One passkey the authenticator keeps: its id, private key, relying party, user handle and counter."""

    id: bytes
    key: object  # a cryptography EllipticCurvePrivateKey
    rp_id: str
    user_handle: bytes
    sign_count: int = 0


def client_data(kind: str, challenge: str, origin: str) -> bytes:
    """The client data JSON a browser writes for the ceremony (`kind`: "create" or "get")."""
    return json.dumps(
        {"type": f"webauthn.{kind}", "challenge": challenge, "origin": origin, "crossOrigin": False}
    ).encode()


def cose_key(public_key) -> bytes:
    """An EC2 P-256 public key as a COSE_Key (RFC 9053): kty 2, alg -7 (ES256), crv 1, x, y."""
    import cbor2  # here, not on top: only steps with passkeys install it (webauthn needs it)

    numbers = public_key.public_numbers()
    return cbor2.dumps({1: 2, 3: -7, -1: 1, -2: numbers.x.to_bytes(32, "big"), -3: numbers.y.to_bytes(32, "big")})


class SoftAuthenticator:
    """A platform authenticator in software: it keeps discoverable credentials, verifies its user and counts signatures.

    `origin` is where "the browser" is: what it writes into the client
    data. `counter`: whether it keeps a signature counter (many passkeys
    synced between devices send 0 every time).
    """

    def __init__(self, origin: str, counter: bool = True):
        self.origin = origin
        self.counter = counter
        self.credentials: list[Credential] = []

    def create(self, options: dict, origin: str | None = None, user_verified: bool = True) -> dict:
        """Answer navigator.credentials.create() for the server's options (JSON): a new credential, as toJSON() gives it."""
        import cbor2
        from cryptography.hazmat.primitives.asymmetric import ec

        key = ec.generate_private_key(ec.SECP256R1())
        credential = Credential(os.urandom(32), key, options["rp"]["id"], from_b64url(options["user"]["id"]))
        data = client_data("create", options["challenge"], origin or self.origin)
        flags = UP | AT | (UV if user_verified else 0)
        # Attested credential data: AAGUID (none: zeros), the id's length and the id, the public key.
        attested = bytes(16) + struct.pack(">H", len(credential.id)) + credential.id + cose_key(key.public_key())
        auth_data = self.rp_hash(credential.rp_id) + bytes([flags]) + struct.pack(">I", 0) + attested
        attestation = cbor2.dumps({"fmt": "none", "attStmt": {}, "authData": auth_data})
        self.credentials.append(credential)
        return as_json(
            credential, clientDataJSON=b64url(data), attestationObject=b64url(attestation), transports=["internal"]
        )

    def get(
        self,
        options: dict,
        origin: str | None = None,
        rp_id: str | None = None,
        user_verified: bool = True,
        sign_count: int | None = None,
        credential: Credential | None = None,
    ) -> dict:
        """Answer navigator.credentials.get(): sign with the newest credential of the options' relying party.

        The keywords make what a real authenticator would not: a signature
        for another relying party id, a counter set back, no user verification.
        """
        if credential is None:
            allowed = {from_b64url(c["id"]) for c in options.get("allowCredentials", [])}
            mine = [c for c in self.credentials if c.rp_id == options["rpId"] and (not allowed or c.id in allowed)]
            assert mine, f"no passkey for {options['rpId']} on this authenticator"
            credential = mine[-1]
        if self.counter:
            credential.sign_count += 1
        count = credential.sign_count if sign_count is None else sign_count
        data = client_data("get", options["challenge"], origin or self.origin)
        flags = UP | (UV if user_verified else 0)
        auth_data = self.rp_hash(rp_id or credential.rp_id) + bytes([flags]) + struct.pack(">I", count)
        return self.assertion(credential, auth_data, data)

    @staticmethod
    def rp_hash(rp_id: str) -> bytes:
        return hashlib.sha256(rp_id.encode()).digest()

    @staticmethod
    def assertion(credential: Credential, auth_data: bytes, data: bytes) -> dict:
        """The signed answer: ECDSA over the authenticator data and the client data's hash."""
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        signature = credential.key.sign(auth_data + hashlib.sha256(data).digest(), ec.ECDSA(hashes.SHA256()))
        return as_json(
            credential,
            clientDataJSON=b64url(data),
            authenticatorData=b64url(auth_data),
            signature=b64url(signature),
            userHandle=b64url(credential.user_handle),
        )


def as_json(credential: Credential, **response) -> dict:
    """An authenticator's answer as PublicKeyCredential.toJSON() gives it (and passkeys.js sends it)."""
    return {
        "id": b64url(credential.id),
        "rawId": b64url(credential.id),
        "type": "public-key",
        "response": response,
        "authenticatorAttachment": "platform",
        "clientExtensionResults": {},
    }


def post_json(client, path: str, body, token: str | None):
    """A JSON POST as passkeys.js sends it: the CSRF token in the X-CSRFToken header."""
    headers = {"X-CSRFToken": token} if token is not None else {}
    return client.post(path, json=body, headers=headers)


def registration_options(html: str) -> dict:
    """The options that the "add a passkey" page hands to passkeys.js: {"options", "verify", "csrf"}."""
    [button] = data_elements(html, "data-passkey")
    assert button["data-passkey"] == "register", button
    return {"options": json.loads(button["data-options"]), "verify": button["data-verify"], "csrf": button["data-csrf"]}


def add_passkey(auth, authenticator: SoftAuthenticator, password: str, name: str = "laptop"):
    """Add a passkey for the logged-in user of `auth` (an AuthActions): the form, then the ceremony. The JSON answer."""
    page = auth.post("/passkeys/add", {"name": name, "current_password": password})
    assert page.status_code == 200, page.status_code
    found = registration_options(page.text)
    return post_json(auth.client, found["verify"], authenticator.create(found["options"]), found["csrf"])


def login_button(html: str) -> dict:
    """What the "Sign in with a passkey" button on a page holds: {"options", "verify", "csrf"} (URLs and the token)."""
    [button] = data_elements(html, "data-passkey")
    assert button["data-passkey"] == "login", button
    return {"options": button["data-options"], "verify": button["data-verify"], "csrf": button["data-csrf"]}


def sign_in_options(client, page: str = "/login") -> tuple[dict, dict]:
    """Press "Sign in with a passkey" on `page`: the button's settings, and the options (with a challenge) the server gives."""
    button = login_button(client.get(page).text)
    response = post_json(client, button["options"], {}, button["csrf"])
    assert response.status_code == 200, (response.status_code, response.text[:200])
    return button, response.get_json()


def sign_in(client, authenticator: SoftAuthenticator, page: str = "/login", **answer):
    """Sign in with a passkey from `page`, as passkeys.js does; `answer` goes to authenticator.get(). The JSON answer."""
    button, options = sign_in_options(client, page)
    return post_json(client, button["verify"], authenticator.get(options, **answer), button["csrf"])
