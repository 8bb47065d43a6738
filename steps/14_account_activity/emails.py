"""Sending email: through SMTP when a mail server is configured, else to the terminal.

Flask-Mail (pallets-eco, the Flask maintainers' community organisation)
does the SMTP part: a Message class and one setting per server detail.
flask-mailman, Django's mail code ported to Flask, would do as well; this
course picks the one its readers will meet in most Flask tutorials.
"""

import sys

import click
from flask import after_this_request
from flask import current_app
from flask import render_template
from flask_mail import Message

from .extensions import mail


def send_email(recipient, subject, template, **context):
    """Send one email, made from a text template, once the answer to this request has gone.

    An SMTP conversation takes tens of milliseconds to seconds, and even
    making the message takes a few. Were the answer to wait for either, the
    reset form would answer more slowly for an address that has an account
    (an email goes) than for one that has not (none goes), and a stranger
    with a stopwatch could tell them apart. So the message is made and sent
    when the server closes the response, after the browser has it all. (A
    thread would start at once, and slow the answer down while it works.)
    The context holds plain values, not database objects: the request's
    database session is closed by then.
    """
    app = current_app._get_current_object()  # the app itself, for later
    if not app.config["MAIL_SERVER"]:
        # No mail server configured (as with a bare `flask run`): show the
        # message where the developer is looking, rather than let Flask-Mail
        # try a mail server on this machine, which most machines do not run.
        print_email(app, make_message(recipient, subject, template, context))
        return

    @after_this_request
    def send_when_answered(response):
        # The server calls this once the whole answer is out. The process is
        # busy meanwhile; a busy site hands the work to a queue (RQ, Celery).
        response.call_on_close(lambda: deliver(app, recipient, subject, template, context))
        return response


def make_message(recipient, subject, template, context):
    return Message(subject, recipients=[recipient], body=render_template(template, **context))


def deliver(app, recipient, subject, template, context):
    """Make the message and hand it to the SMTP server; log a failure (in one line) rather than raise it."""
    with app.app_context():
        try:
            mail.send(make_message(recipient, subject, template, context))
        except Exception as error:  # no page is waiting to show it: the log is the place
            app.logger.error("could not send mail to %s: %r", recipient, error)


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
