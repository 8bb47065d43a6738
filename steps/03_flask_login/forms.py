"""Forms, with Flask-WTF: each one renders and checks a hidden CSRF token."""

from flask_wtf import FlaskForm
from wtforms import BooleanField
from wtforms import PasswordField
from wtforms import StringField
from wtforms import SubmitField
from wtforms.validators import DataRequired
from wtforms.validators import StopValidation


def printable(form, field):
    """Refuse control characters, and stop: no later check sees them.

    No name or address contains them, and PostgreSQL cannot even compare a
    NUL byte: without this, one in a form field would be a server error.
    """
    if not field.data.isprintable():
        raise StopValidation("Control characters are not allowed here.")


class LoginForm(FlaskForm):
    username = StringField("Username", validators=[DataRequired(), printable])
    password = PasswordField("Password", validators=[DataRequired()])
    remember = BooleanField("Remember me")
    submit = SubmitField("Log in")
