"""Step 08 behind a real nginx that ends TLS, set up with the very lines the step's page shows.

The page includes docs/steps/nginx-proxy.conf; this test includes the same
file in an nginx configuration of its own (Debian's `nginx` package), on a
free loopback port that is not 443, with a throwaway self-signed certificate
(`openssl`), in front of the step under gunicorn with FLASK_PRODUCTION=1.
Without nginx or openssl installed the test is not collected, as the
scale-out tests are not without PostgreSQL or Redis: a skip in this suite
only ever means "this step does not teach that yet". Like them, it runs in
the plain run only.
"""

import http.client
import json
import os
import shutil
import ssl
import subprocess
import urllib.parse
from http.cookies import SimpleCookie
from pathlib import Path

import pytest

from harness import launcher
from harness.pages import csrf_token
from harness.services import environment_without
from harness.services import free_port
from harness.services import gunicorn_command
from harness.services import stop_process
from harness.services import wait_for_port
from harness.smtp import links
from harness.smtp import smtp_server

RECIPE = Path(__file__).resolve().parent.parent / "docs" / "steps" / "nginx-proxy.conf"
NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if Path(p).exists()), None)
OPENSSL = shutil.which("openssl")
# What this tests is the proxy in front, not the stores behind: collected once,
# in the plain run, not again in `tests-postgres` and `tests-redis`.
OWN_STORES_ONLY = not (os.environ.get("FLASK_REDIS_URL") or os.environ.get("FLASK_SQLALCHEMY_DATABASE_URI"))
CAN_RUN = NGINX is not None and OPENSSL is not None and OWN_STORES_ONLY
# The site's name, as the browser has it (its DNS would lead to 127.0.0.1).
HOST = "login.example"

CONFIG = """
daemon off;
pid {folder}/nginx.pid;
error_log {folder}/error.log;
events {{}}
http {{
    access_log {folder}/access.log;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    server {{
        listen 127.0.0.1:{port} ssl;
        server_name {host};
        ssl_certificate {folder}/cert.pem;
        ssl_certificate_key {folder}/key.pem;
        location / {{
            proxy_pass http://127.0.0.1:{app_port};
            include {recipe};
        }}
    }}
}}
"""


@pytest.fixture
def nginx(tmp_path):
    """start(app_port): nginx on a free port, ending TLS, passing requests to 127.0.0.1:app_port; its port."""
    folder = tmp_path / "nginx"
    folder.mkdir()
    subprocess.run(
        [OPENSSL, "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1"]
        + ["-keyout", folder / "key.pem", "-out", folder / "cert.pem", "-subj", f"/CN={HOST}"]
        + ["-addext", f"subjectAltName=DNS:{HOST},IP:127.0.0.1"],
        check=True,
        capture_output=True,
    )
    processes = []

    def start(app_port):
        port = free_port()
        config = folder / "nginx.conf"
        config.write_text(CONFIG.format(folder=folder, port=port, host=HOST, app_port=app_port, recipe=RECIPE))
        process = subprocess.Popen([NGINX, "-p", folder, "-c", config, "-e", folder / "error.log"])
        processes.append(process)
        wait_for_port(port, process, f"nginx (see {folder / 'error.log'})")
        return port

    try:
        yield start
    finally:
        for process in processes:
            stop_process(process)


class Browser:
    """A browser at https://login.example:PORT/: it keeps cookies, and sends a same-origin Referer with each form."""

    def __init__(self, port, cafile):
        self.port = port
        self.origin = f"https://{HOST}:{port}"
        self.context = ssl.create_default_context(cafile=cafile)
        self.cookies = {}

    def request(self, path, form=None, page="/"):
        """GET `path`, or POST `form` to it from the page at `page`: (status, Location or page text)."""
        connection = http.client.HTTPSConnection("127.0.0.1", self.port, context=self.context, timeout=30)
        headers = {"Host": f"{HOST}:{self.port}"}
        body = None
        if form is not None:
            body = urllib.parse.urlencode(form)
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Referer"] = self.origin + page
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{name}={value}" for name, value in self.cookies.items())
        try:
            connection.request("POST" if form is not None else "GET", path, body, headers)
            response = connection.getresponse()
            for header in response.headers.get_all("Set-Cookie") or []:
                cookie = SimpleCookie(header)
                for name, morsel in cookie.items():
                    if morsel.value and morsel["max-age"] != "0":
                        self.cookies[name] = morsel.value
                    else:
                        self.cookies.pop(name, None)
            page = response.read().decode(errors="replace")
            return response.status, response.headers.get("Location") or page
        finally:
            connection.close()

    def submit(self, page, fields, action=None):
        """Open the page, fill in its form's `fields` and send it (to `action`, or back to the page)."""
        status, text = self.request(page)
        assert status == 200, (page, status, text)
        return self.request(action or page, {**fields, "csrf_token": csrf_token(text)}, page=page)


if CAN_RUN:

    @pytest.mark.contract(
        "Behind nginx set up as step 08's page shows, ending TLS on a port other than 443: sign-up, login and logout "
        "succeed, and a reset link keeps the port"
    )
    @pytest.mark.features("production-settings", "registration", "login", "logout", "password-reset", "csrf", "email")
    def test_behind_nginx_on_another_port(step, nginx, database_url, tmp_path):
        with smtp_server() as inbox:
            env = environment_without()
            env.update(
                FLASK_PRODUCTION="1",
                FLASK_PROXY_COUNT="1",
                FLASK_SECRET_KEY="only-for-tests" * 4,
                FLASK_TRUSTED_HOSTS=json.dumps([HOST]),
                FLASK_SQLALCHEMY_DATABASE_URI=database_url,
                FLASK_BCRYPT_LOG_ROUNDS="4",
                FLASK_MAIL_SERVER=inbox.host,
                FLASK_MAIL_PORT=str(inbox.port),
            )
            app_port = free_port()
            log = tmp_path / "gunicorn.log"
            with log.open("wb") as output:
                # Forked from a process with the step's libraries imported already (harness/launcher.py).
                server = launcher.Popen(
                    gunicorn_command(step.path, app_port, 1), env=env, cwd=tmp_path, stdout=output, stderr=output
                )
            try:
                wait_for_port(app_port, server, "gunicorn", timeout=60)
                browser = Browser(nginx(app_port), tmp_path / "nginx" / "cert.pem")
                password = "a long enough password"
                form = {"username": "carol", "email": "carol@example.com"}
                form |= {"password": password, "confirm_password": password}
                # Flask-WTF compares each form's Referer with the host the app was told: port and all.
                signed_up = browser.submit("/register", form)
                if "email-confirmation" in step.features:
                    # From step 09 the sign-up sends a link instead of logging in; it keeps the port too.
                    assert signed_up[0] == 200
                    [message] = inbox.wait_for(1)
                    [link] = links(message)
                    assert link.startswith(f"{browser.origin}/confirm/"), link
                    assert browser.request(urllib.parse.urlsplit(link).path) == (302, "/login")
                    signed_up = browser.submit("/login", {"username": "carol", "password": password})
                assert signed_up == (302, "/profile")
                assert browser.request("/profile")[0] == 200
                assert browser.submit("/profile", {}, action="/logout")[0] in (302, 303)
                assert browser.request("/profile")[0] in (302, 303)  # logged out: sent to log in
                assert browser.submit("/login", {"username": "carol", "password": password}) == (302, "/profile")
                assert browser.submit("/profile", {}, action="/logout")[0] in (302, 303)

                already = len(inbox.messages)  # from step 09, the confirmation
                assert browser.submit("/reset-password", {"email": "carol@example.com"})[0] == 200
                [message] = inbox.wait_for(already + 1)[already:]
                [link] = links(message)
                assert link.startswith(f"{browser.origin}/reset-password/"), link
                assert browser.request(urllib.parse.urlsplit(link).path)[0] == 200
            finally:
                stop_process(server)
