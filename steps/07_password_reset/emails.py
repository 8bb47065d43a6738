"""Sending email: through SMTP when a mail server is configured, else to the terminal.

Flask-Mail (pallets-eco, the Flask maintainers' community organisation)
does the SMTP part: a Message class and one setting per server detail.
flask-mailman, Django's mail code ported to Flask, would do as well; this
course picks the one its readers will meet in most Flask tutorials.
"""

import sys
import threading

import click
from flask import current_app
from flask import render_template
from flask_mail import Message

from .extensions import mail


def send_email(recipient, subject, template, **context):
    """Send one email, made from a text template, without making the request wait for it.

    An SMTP conversation takes tens of milliseconds to seconds. Were the
    request to wait for it, the reset form would answer more slowly for an
    address that has an account (an email goes) than for one that has not
    (none goes), and a stranger with a stopwatch could tell them apart. So
    the message goes from a thread of its own, after the page has been made.
    """
    app = current_app._get_current_object()  # the app itself, for the thread
    message = Message(subject, recipients=[recipient], body=render_template(template, **context))
    if not app.config["MAIL_SERVER"]:
        # No mail server configured (as with a bare `flask run`): show the
        # message where the developer is looking, rather than let Flask-Mail
        # try a mail server on this machine, which most machines do not run.
        print_email(app, message)
        return
    threading.Thread(target=deliver, args=(app, message), daemon=True).start()


def deliver(app, message):
    """Hand the message to the SMTP server; log a failure (in one line) rather than raise it."""
    with app.app_context():
        try:
            mail.send(message)
        except Exception as error:  # no page is waiting to show it: the log is the place
            app.logger.error("could not send mail to %s: %r", ", ".join(message.recipients), error)


def print_email(app, message):
    """Print the message to the terminal that runs the server."""
    sender = message.sender or app.config["MAIL_DEFAULT_SENDER"]
    lines = [
        "-" * 72,
        "No mail server is configured (FLASK_MAIL_SERVER), so here is the email:",
        f"From: {sender}",
        f"To: {', '.join(message.recipients)}",
        f"Subject: {message.subject}",
        "",
        message.body,
        "-" * 72,
    ]
    click.echo("\n".join(lines), file=sys.stdout)
