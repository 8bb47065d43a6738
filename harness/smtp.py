"""A real SMTP server on a free loopback port that keeps every message it receives.

The app under test talks SMTP to it exactly as it would to a mail provider
(aiosmtpd, in a thread of its own); the tests then read the messages, as
a user reads their inbox. Nothing in the app is replaced or patched.
"""

import contextlib
import email
import email.policy
import re
import threading
import time

from aiosmtpd.controller import Controller

from harness.services import free_port

# A link in a plain-text email: up to the first white space.
LINK = re.compile(r"https?://[^\s<>\"']+")


class Inbox:
    """What the SMTP server received: parsed messages, in order of arrival."""

    def __init__(self, delay=0.0):
        self.messages = []
        # How long the server takes to accept each message: a slow provider.
        self.delay = delay
        self._arrived = threading.Condition()
        self.host = "127.0.0.1"
        self.port = free_port()
        # Whether a sender may still be sending after its answer has come back
        # (a server in another process, an app sending from a thread of its
        # own): then settle() waits for a quiet spell.
        self.senders_in_background = True

    async def handle_DATA(self, server, session, envelope):
        """aiosmtpd calls this for each message; keep it, answer "250"."""
        if self.delay:
            import asyncio

            await asyncio.sleep(self.delay)
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        message.envelope_to = list(envelope.rcpt_tos)
        with self._arrived:
            self.messages.append(message)
            self._arrived.notify_all()
        return "250 Message accepted for delivery"

    def clear(self):
        """Forget every message received so far: the inbox of a new test, on the same server."""
        with self._arrived:
            self.messages.clear()

    def config(self):
        """The app settings (Flask-Mail's names, FLASK_MAIL_* in the environment) that send mail here."""
        return {"MAIL_SERVER": self.host, "MAIL_PORT": self.port, "MAIL_DEFAULT_SENDER": "steps@example.com"}

    def wait_for(self, count, timeout=10):
        """Wait until `count` messages have arrived in all; return them all."""
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.messages) >= count, timeout)
            return list(self.messages)

    def settle(self, quiet=0.4):
        """Wait until no message has arrived for `quiet` seconds; return them all.

        How to know that a message was *not* sent: the app sends in the
        background, so a message may still be on its way when a page answers.
        With no sender in the background (senders_in_background False: a
        step's app in the test's process, whose test client hands every
        message over before its answer returns), what has arrived is all.
        """
        if not self.senders_in_background:
            return list(self.messages)
        seen = -1
        while seen != len(self.messages):
            seen = len(self.messages)
            time.sleep(quiet)
        return list(self.messages)

    def to(self, address):
        """The messages addressed to `address`."""
        return [m for m in self.messages if address in m.envelope_to]

    def wait_to(self, address, count=1, timeout=10):
        """Wait until `count` messages addressed to `address` have arrived; return those."""
        with self._arrived:
            self._arrived.wait_for(lambda: len(self.to(address)) >= count, timeout)
            return self.to(address)


def body(message):
    """The plain-text body of a message, decoded."""
    return message.get_body(preferencelist=("plain", "html")).get_content()


def links(message):
    """Every URL in a message's body."""
    return LINK.findall(body(message))


@contextlib.contextmanager
def smtp_server(delay=0.0):
    """Start an SMTP server on a free loopback port; yield its Inbox; stop it."""
    inbox = Inbox(delay)
    controller = Controller(inbox, hostname=inbox.host, port=inbox.port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()
