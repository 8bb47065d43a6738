"""Forms, with Flask-WTF: each one renders and checks a hidden CSRF token."""

from email_validator import EmailNotValidError
from email_validator import validate_email
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import BooleanField
from wtforms import EmailField
from wtforms import PasswordField
from wtforms import StringField
from wtforms import SubmitField
from wtforms.validators import DataRequired
from wtforms.validators import EqualTo
from wtforms.validators import Length
from wtforms.validators import Regexp
from wtforms.validators import StopValidation
from wtforms.validators import ValidationError
from zxcvbn.frequency_lists import FREQUENCY_LISTS

from .models import find_user


def printable(form, field):
    """Refuse control characters, and stop: no later check sees them.

    No name or address contains them, and PostgreSQL cannot even compare a
    NUL byte: without this, one in a form field would be a server error.
    """
    if not field.data.isprintable():
        raise StopValidation("Control characters are not allowed here.")


def email_address(form, field):
    """Check an address's syntax, and keep it in its one normal spelling.

    "Bob@ＥＸＡＭＰＬＥ.com", "Bob@example.com" and (with Unicode) other
    spellings reach one mailbox; email-validator gives them all as one
    string, so the database sees one address and allows one account.
    """
    try:
        # Syntax only: no DNS look-up, so no network needed.
        field.data = validate_email(field.data, check_deliverability=False).normalized
    except EmailNotValidError:
        raise StopValidation("That is not a valid email address.") from None


# The 30,000 most common of ten million leaked passwords (Mark Burnett's
# corpus), as shipped by zxcvbn, the estimator behind Flask-Security-Too's check.
# zxcvbn files a password that is also a common name or word ("jennifer")
# under its names or words instead, so those are not refused here.
# A set, so that checking a password is one quick look-up.
COMMON_PASSWORDS = frozenset(FREQUENCY_LISTS["passwords"])


def not_common(form, field):
    """Refuse a password that is among the most common ones.

    Attackers try these first, on every site: such a password falls to the
    first few guesses, however well it is hashed. NIST SP 800-63B (3.1.1.2)
    and OWASP ASVS (6.2.4) ask for this check against a blocklist of common
    passwords, in place of rules about capitals and digits, which only turn
    "password" into "Password1".
    """
    # The list is all lower case. Compare in lower case too: "Password1" is
    # "password1" with the capital that guessing tools try first. (Only for
    # the look-up: the password is hashed as typed.)
    if field.data.lower() in COMMON_PASSWORDS:
        raise ValidationError("That password is too common: choose another (a few random words make a good one).")


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), printable])
    password = PasswordField("Password", validators=[DataRequired()])
    remember = BooleanField("Remember me")
    submit = SubmitField("Log in")


class RegistrationForm(FlaskForm):
    username = StringField(
        "Username",
        validators=[
            DataRequired("Choose a username."),
            printable,
            Length(3, 32, "A username is 3 to 32 characters long."),
            # \Z, not $: "$" would also accept a newline at the end.
            Regexp(r"[A-Za-z0-9._-]+\Z", message="Use only letters, digits, dots, dashes and underscores."),
        ],
    )
    email = EmailField(
        "Email",
        validators=[
            DataRequired("Enter your email address."),
            printable,
            email_address,
        ],
    )
    password = PasswordField(
        "Password",
        validators=[
            DataRequired("Choose a password."),
            Length(8, 64, "A password is 8 to 64 characters long."),
            not_common,
        ],
    )
    confirm_password = PasswordField(
        "Repeat the password",
        validators=[
            DataRequired("Type the password again."),
            EqualTo("password", "The two passwords differ."),
        ],
    )
    submit = SubmitField("Register")

    # WTForms calls validate_<field> after that field's own validators.
    # Usernames are public (they are shown on the site): saying one is
    # taken gives nothing away. An address is not said to be taken: the
    # sign-up view answers the same for every address (views.register).
    def validate_username(self, field):
        if find_user(field.data) is not None:
            raise ValidationError("That username is already taken.")

    def validate_password(self, field):
        # bcrypt reads at most 72 bytes; "é" takes 2 of them and most emoji 4.
        if len(field.data.encode()) > 72:
            raise ValidationError(
                "That password is too long: at most 72 bytes (accents and emoji count double or more)."
            )


class ResetRequestForm(FlaskForm):
    email = EmailField(
        "Email",
        validators=[
            DataRequired("Enter your email address."),
            printable,
            email_address,
        ],
    )
    submit = SubmitField("Send me a reset link")


class ConfirmRequestForm(FlaskForm):
    email = ResetRequestForm.email
    submit = SubmitField("Send me a new link")


class ResetPasswordForm(FlaskForm):
    # The sign-up form's rules for a password, shared rather than copied:
    # a reset must not allow a password that signing up would refuse.
    password = RegistrationForm.password
    confirm_password = RegistrationForm.confirm_password
    validate_password = RegistrationForm.validate_password
    submit = SubmitField("Set the new password")


class ChangePasswordForm(ResetPasswordForm):
    current_password = PasswordField("Current password", validators=[DataRequired("Enter your current password.")])
    submit = SubmitField("Change the password")

    def validate_current_password(self, field):
        # Someone at a computer left logged in must not take the account over.
        if not current_user.check_password(field.data):
            raise ValidationError("That is not your current password.")


class ChangeEmailForm(FlaskForm):
    email = EmailField(
        "New email address",
        validators=[
            DataRequired("Enter the new address."),
            printable,
            email_address,
        ],
    )
    current_password = ChangePasswordForm.current_password
    submit = SubmitField("Change the address")
    validate_current_password = ChangePasswordForm.validate_current_password

    def validate_email(self, field):
        # The user's own address: no secret to keep, and nothing to change.
        if field.data.lower() == current_user.email.lower():
            raise ValidationError("That is your address already.")


class TwoFactorCodeForm(FlaskForm):
    code = StringField(
        "Code",
        validators=[
            DataRequired("Enter the code from your app, or a recovery code."),
            # A code is 6 digits, a recovery code 29 characters: anything
            # much longer is no code, and is not worth hashing.
            Length(max=64, message="That is not a code."),
        ],
    )
    submit = SubmitField("Log in")


class TwoFactorPasswordCodeForm(FlaskForm):
    """Turning two-factor off, or making new recovery codes: the password and a code, both."""

    current_password = ChangePasswordForm.current_password
    validate_current_password = ChangePasswordForm.validate_current_password
    code = TwoFactorCodeForm.code
    submit = SubmitField("Confirm")


class EnableTwoFactorForm(TwoFactorPasswordCodeForm):
    # A code from the app only: there are no recovery codes yet.
    code = StringField(
        "The 6-digit code your app shows",
        validators=[DataRequired("Enter the code your app shows."), Length(max=64, message="That is not a code.")],
    )
    submit = SubmitField("Turn on two-factor authentication")


class AddPasskeyForm(FlaskForm):
    """The first half of adding a passkey: its name, and the password (someone at a computer left logged in has not got it)."""

    name = StringField(
        "A name for it",
        validators=[
            DataRequired("Give the passkey a name, such as the device it is on."),
            printable,
            Length(max=64, message="A name is at most 64 characters long."),
        ],
        filters=[lambda value: value.strip() if isinstance(value, str) else value],
    )
    current_password = ChangePasswordForm.current_password
    validate_current_password = ChangePasswordForm.validate_current_password
    submit = SubmitField("Add a passkey")


class RemovePasskeyForm(FlaskForm):
    current_password = ChangePasswordForm.current_password
    validate_current_password = ChangePasswordForm.validate_current_password
    submit = SubmitField("Remove the passkey")


class LinkProviderForm(FlaskForm):
    """Linking an account at the provider: the password first, as for a passkey (a new way into the account)."""

    current_password = ChangePasswordForm.current_password
    validate_current_password = ChangePasswordForm.validate_current_password
    submit = SubmitField("Link")


class ReauthenticateForm(FlaskForm):
    """The password again, for a login that is no longer fresh (admin.py)."""

    current_password = ChangePasswordForm.current_password
    validate_current_password = ChangePasswordForm.validate_current_password
    submit = SubmitField("Continue")
