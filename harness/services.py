"""Throwaway servers on free loopback ports, for the tests, the noxfile and the bench.

Standard library only: the noxfile imports this before any virtualenv exists.
"""

import contextlib
import glob
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path


def environment_without(*prefixes):
    """This process's environment less every variable with one of `prefixes` (default FLASK_).

    For a server or command a test starts: it gets only the settings the
    test gives it, never the ones a nox session set for the suite.
    """
    return {name: value for name, value in os.environ.items() if not name.startswith(prefixes or ("FLASK_",))}


# Where free_port() notes the ports it has handed out, for every process of
# the user: one file per port (nox's lanes each have a TMPDIR of their own).
PORTS = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "flask-login-steps" / "ports"
# How long a port stays promised to its caller: time enough to start a server on it.
PROMISED_FOR = 120
# Below Linux's ephemeral range (32768-60999), where the kernel picks the
# ports of outgoing connections and of bind(("...", 0)).
PORT_RANGE = (20000, 32000)
# Not the random module's own generator, which a test may seed: every process would then try the same ports.
_pick = random.SystemRandom()


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on, promised to this caller for two minutes.

    The kernel's own pick (bind to port 0, read it, close) is free at that
    moment only: it hands the same port to the next caller until someone
    listens on it. With two nox lanes and four test workers each starting
    servers, two of them got one port (a Flask server found "Address
    already in use"; a test asked an SMTP server for a page). So each port
    is promised by a file in PORTS that only one caller can create, and
    not handed out again until PROMISED_FOR seconds have passed.
    """
    PORTS.mkdir(parents=True, exist_ok=True)
    while True:
        port = _pick.randint(*PORT_RANGE)
        promise = PORTS / str(port)
        try:
            os.close(os.open(promise, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            with contextlib.suppress(FileNotFoundError):
                if time.time() - promise.stat().st_mtime > PROMISED_FOR:
                    promise.unlink()  # an old promise: free to make again, by whoever creates it first
            continue
        with socket.socket() as probe:
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                continue  # something of another program's listens there: keep the promise, try another
        return port


def wait_for_port(port, process, what, timeout=30):
    """Wait until something accepts connections on `port`; fail if `process` dies first."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start on port {port}") from None
            time.sleep(0.05)


def stop_process(process, timeout=10):
    """Ask a process to stop (SIGTERM); kill it if it has not after `timeout` seconds."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def gunicorn_command(step_path, port, workers):
    """The command that serves the step at `step_path` with gunicorn on 127.0.0.1:`port`.

    For this interpreter's gunicorn; the caller adds any options after it.
    """
    command = [sys.executable, "-m", "gunicorn", "--workers", str(workers), "--bind", f"127.0.0.1:{port}"]
    if int(metadata.version("gunicorn").split(".")[0]) >= 25:
        # Newer gunicorns open a control socket in ~/.gunicorn, one path for every server.
        command.append("--no-control-socket")
    return command + ["--chdir", str(step_path.parent), f"{step_path.name}:create_app()"]


def redis_server():
    """The path of Debian's (or any) redis-server, or None."""
    return shutil.which("redis-server") or next(
        (str(p) for p in (Path("/usr/bin/redis-server"), Path("/usr/sbin/redis-server")) if p.exists()), None
    )


class RedisServer:
    """A redis-server of our own in a temporary folder, on a free loopback port.

    `start()`, `stop()` and `start()` again on the same port: a test can take
    Redis away under a running app and bring it back. `pause()` and
    `resume()` freeze it and let it go on: a Redis that takes connections
    and never answers, as a stuck one does. With `durable=True` it
    keeps its data across that (an append-only file); otherwise nothing is
    ever written to disk. `close()` stops it and removes its folder.
    """

    def __init__(self, durable=False):
        self.binary = redis_server()
        if self.binary is None:
            raise RuntimeError("redis-server is not installed: `apt-get install redis-server` (Debian, Ubuntu)")
        self.folder = tempfile.mkdtemp(prefix="flask-login-steps-redis-")
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.durable = durable
        self.process = None

    def start(self):
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", self.folder, "--save", ""]
        command += ["--appendonly", "yes" if self.durable else "no", "--loglevel", "warning"]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
        wait_for_port(self.port, self.process, "redis-server")

    def pause(self):
        self.process.send_signal(signal.SIGSTOP)

    def resume(self):
        self.process.send_signal(signal.SIGCONT)

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.resume()  # a paused server would not act on SIGTERM
            self.process.terminate()  # redis-server writes its append-only file and exits
            self.process.wait(timeout=30)

    def close(self):
        self.stop()
        shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def throwaway_redis():
    """Start redis-server in a temporary folder on a free loopback port; yield its URL.

    Nothing is saved to disk, and the server and its folder are gone afterwards.
    """
    server = RedisServer()
    try:
        server.start()
        yield server.url
    finally:
        server.close()


def postgres_bindir():
    """The folder holding initdb and pg_ctl: on PATH, or where Debian puts them; or None."""
    if shutil.which("initdb") and shutil.which("pg_ctl"):
        return Path(shutil.which("pg_ctl")).resolve().parent
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    return Path(found[-1]).parent if found else None


class PostgresServer:
    """A PostgreSQL server of our own in a temporary folder, on a free loopback port.

    `start()`, `stop()` and `start()` again keep the data (a clean shutdown
    writes it all); `close()` stops it and removes its folder.
    """

    def __init__(self):
        self.bindir = postgres_bindir()
        if self.bindir is None:
            raise RuntimeError("PostgreSQL is not installed: `apt-get install postgresql` (Debian, Ubuntu)")
        # initdb refuses to run as root; the Debian package makes a "postgres" user.
        self.as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="flask-login-steps-pg-"))
        if self.as_user:
            shutil.chown(self.folder, "postgres")
        self.data = self.folder / "data"
        self.url = f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        try:
            self._run("initdb", "-D", self.data, "-U", "postgres", "-A", "trust", "-E", "UTF8")
        except BaseException:  # Ctrl+C (or nox's SIGTERM) too: nobody else knows of the folder yet
            shutil.rmtree(self.folder, ignore_errors=True)
            raise

    def _run(self, program, *args):
        """Run one of PostgreSQL's programs to its end, even through Ctrl+C (or nox's SIGTERM).

        Killing it would not stop what it started: the initdb below runuser
        (as root), or the server pg_ctl starts, whose postmaster.pid, by
        which close() finds it, may not be written yet.
        """
        try:
            process = subprocess.Popen([*self.as_user, self.bindir / program, *args], stdout=subprocess.DEVNULL)
        except OSError as error:
            raise RuntimeError(f"PostgreSQL's {program} failed: {error}") from None
        try:
            process.wait()
        except KeyboardInterrupt:
            process.wait()
            raise
        if process.returncode:
            log = self.folder / "log"
            raise RuntimeError(
                f"PostgreSQL's {program} failed with exit code {process.returncode}\n"
                f"{log.read_text() if log.exists() else ''}"
            )

    def start(self):
        # A throwaway server: durability off, for speed.
        options = (
            f"-p {self.port} -k {self.folder} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off"
        )
        self._run("pg_ctl", "-D", self.data, "-o", options, "-l", self.folder / "log", "-w", "start")

    def stop(self):
        # fast: disconnect every client now rather than wait for them to leave.
        self._run("pg_ctl", "-D", self.data, "-m", "fast", "-w", "stop")

    def close(self):
        subprocess.run(
            [*self.as_user, self.bindir / "pg_ctl", "-D", self.data, "-m", "fast", "stop"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        shutil.rmtree(self.folder, ignore_errors=True)


@contextlib.contextmanager
def throwaway_postgres():
    """Start PostgreSQL in a temporary folder on a free loopback port; yield its SQLAlchemy URL."""
    server = PostgresServer()
    try:
        server.start()
        yield server.url
    finally:
        server.close()
