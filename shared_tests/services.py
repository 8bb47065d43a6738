"""Throwaway servers on free loopback ports, for the tests, the noxfile and the bench.

Standard library only: the noxfile imports this before any virtualenv exists.
"""

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path


def free_port():
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


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


def redis_server():
    """The path of Debian's (or any) redis-server, or None."""
    return shutil.which("redis-server") or next(
        (str(p) for p in (Path("/usr/bin/redis-server"), Path("/usr/sbin/redis-server")) if p.exists()), None
    )


@contextlib.contextmanager
def throwaway_redis():
    """Start redis-server in a temporary folder on a free loopback port; yield its URL.

    Nothing is saved to disk, and the server and its folder are gone afterwards.
    """
    binary = redis_server()
    if binary is None:
        raise RuntimeError("redis-server is not installed: `apt-get install redis-server` (Debian, Ubuntu)")
    folder = tempfile.mkdtemp(prefix="flask-login-steps-redis-")
    port = free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--dir", folder, "--save", ""]
    command += ["--appendonly", "no", "--loglevel", "warning"]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    try:
        wait_for_port(port, process, "redis-server")
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        stop_process(process)
        shutil.rmtree(folder, ignore_errors=True)
