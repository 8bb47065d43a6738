"""The accounts every test, browser run, docs page and benchmark uses, and how a step gets them.

Steps 01-02 ship alice and bob; from step 03 they are made with the step's
own `flask create-user` command, as a learner makes them.
"""

from harness.pages import text

# The accounts every step has: steps 01-02 ship them, later steps get them
# through their `create-user` command.
USERS = {
    "alice": {"id": 1, "password": "wonderland", "email": "alice@example.com"},
    "bob": {"id": 2, "password": "can-we-fix-it", "email": "bob@example.com"},
}

# Passwords that every path setting one refuses (step 04+), each with the
# words one of which its message must hold. The common ones are among the
# first any guessing tool tries; letter case aside, "Password1" is one too.
REFUSED_PASSWORDS = {
    "password": ("password", ["common"]),
    "12345678": ("12345678", ["common"]),
    "qwertyuiop": ("qwertyuiop", ["common"]),
    "iloveyou": ("iloveyou", ["common"]),
    "sunshine": ("sunshine", ["common"]),
    "password1": ("password1", ["common"]),
    "Password1": ("Password1", ["common"]),
    "trustno1": ("trustno1", ["common"]),
    "65-characters": ("p" * 65, ["64"]),
    "73-bytes": ("\u00e9" * 36 + "x", ["72"]),  # 37 characters
}
# The longest password the rules allow: 64 characters (and bytes).
LONGEST_PASSWORD = ("a-long-passphrase " * 4)[:64]


# The answer to a sign-up from step 09 (email-confirmation), taken or not.
CHECK_INBOX = "Check your inbox: we have sent you a link to confirm your address."


def took_sign_up(step, response):
    """Whether the sign-up form took what was sent, as the step answers that.

    Until step 09 it logs in and redirects to /profile; from step 09
    (email-confirmation) it answers that a link is on its way, whether or
    not the address has an account. `response`: a test client's response,
    or (status, Location or page text).
    """
    if isinstance(response, tuple):
        status, where = response
    else:
        status, where = response.status_code, response.headers.get("Location") or response.text
    if "email-confirmation" in step.features:
        return status == 200 and CHECK_INBOX in text(where)
    return status in (302, 303) and where == "/profile"
