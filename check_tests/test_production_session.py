"""`nox -s production`: one SIGTERM to nox, whatever it is doing, stops every server it started.

For each phase it starts the real session (PostgreSQL, Redis, `flask db
upgrade`, gunicorn), waits for that phase, sends nox a single SIGTERM, and
then looks for what is left: every process nox had started by then (found in
/proc), any process that names the session's temporary folder (PostgreSQL's
main process does, even one that nox never heard of), and the servers'
folders in it.

The nox to run comes from NOX_COMMAND (`nox -s check-selftest` passes its
own); without it, or without PostgreSQL or Redis, the tests are not collected.
"""

import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

from harness.services import environment_without
from harness.services import free_port
from harness.services import postgres_bindir
from harness.services import redis_server
from harness.services import stop_process

ROOT = Path(__file__).resolve().parent.parent

NOX = shlex.split(os.environ.get("NOX_COMMAND", ""))
CAN_RUN = bool(NOX and postgres_bindir() and redis_server() and Path("/proc").is_dir())


def processes():
    """{pid: (parent pid, state, command line)} for every process on the machine."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:  # it ended meanwhile
            continue
        # "pid (name) state ppid ...": the name may hold spaces and brackets.
        state, parent = stat[stat.rindex(")") + 2 :].split()[:2]
        found[int(entry.name)] = (int(parent), state, command)
    return found


def descendants(pid, table):
    """The processes below `pid`: its children, theirs, and so on."""
    below, todo = set(), [pid]
    while todo:
        parent = todo.pop()
        children = {child for child, (ppid, _, _) in table.items() if ppid == parent}
        below |= children
        todo.extend(children)
    return below


def started_by(nox, folder):
    """Every process the session started and that is running: nox's descendants, and PostgreSQL's.

    pg_ctl starts PostgreSQL apart from its caller: its main process is
    named by postmaster.pid in its data folder.
    """
    table = processes()
    pids = descendants(nox.pid, table)
    for pid_file in folder.glob("flask-login-steps-pg-*/data/postmaster.pid"):
        postmaster = int(pid_file.read_text().split()[0])
        pids |= {postmaster} | descendants(postmaster, table)
    return pids


def alive(pids):
    """Those of `pids` still running (a zombie has ended), with their command lines."""
    table = processes()
    return {pid: table[pid][2] for pid in pids if pid in table and table[pid][1] != "Z"}


def naming(folder):
    """The processes whose command line names `folder`: PostgreSQL's and Redis's name their own folders."""
    return {pid: command for pid, (_, state, command) in processes().items() if str(folder) in command and state != "Z"}


def answers(url):
    """Whether `url` answers 200."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def running_below(nox, word):
    """Whether a process below nox has `word` in its command line."""
    table = processes()
    return any(word in table[pid][2] for pid in descendants(nox.pid, table) if pid in table)


# When to send the SIGTERM: while initdb makes PostgreSQL's folder, while
# pg_ctl starts it, while `flask db upgrade` runs, or once gunicorn answers.
PHASES = {"initdb": "bin/initdb", "pg_ctl": "pg_ctl", "db upgrade": " db upgrade", "serving": None}


def sigterm_during(phase, log):
    """Start `nox -s production`, send it one SIGTERM during `phase`; what is left once nox has ended.

    Its PostgreSQL and Redis make their folders in a temporary folder of
    the test's own (TMPDIR), not under pytest's tmp_path: PostgreSQL runs as
    the `postgres` user, which must reach its folder.
    """
    folder = Path(tempfile.mkdtemp(prefix="nox-production-"))
    folder.chmod(0o755)
    port = free_port()
    env = environment_without("FLASK_", "PYTEST_")
    env["TMPDIR"] = str(folder)
    command = [*NOX, "-f", str(ROOT / "noxfile.py"), "-s", "production", "--reuse-venv", "yes"]
    command += ["--", "--bind", f"127.0.0.1:{port}", "--workers", "2"]
    with log.open("w") as output:
        nox = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=output)
    try:
        deadline = time.monotonic() + 300
        came = (lambda: answers(f"http://127.0.0.1:{port}/healthz")) if phase == "serving" else None
        while not (came() if came else running_below(nox, PHASES[phase])):
            assert nox.poll() is None, f"nox ended before {phase}:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"no {phase} in 300 s:\n{log.read_text()}"
            time.sleep(0.01)
        pids = started_by(nox, folder)
        assert pids, f"nox had started nothing by {phase}"
        nox.send_signal(signal.SIGTERM)  # once
        try:
            nox.wait(timeout=120)
        except subprocess.TimeoutExpired:
            pytest.fail(f"nox was still running 120 s after a SIGTERM during {phase}:\n{log.read_text()}")
        return alive(pids), naming(folder), sorted(path.name for path in folder.iterdir())
    finally:
        stop_process(nox)
        shutil.rmtree(folder, ignore_errors=True)


if CAN_RUN:

    def test_one_sigterm_stops_every_server_and_removes_its_folder(tmp_path):
        """One phase after another (they share the session's virtualenv, which nox may be making)."""
        for phase in PHASES:
            log = tmp_path / f"nox-{phase.replace(' ', '-')}.log"
            running, naming_the_folder, folders = sigterm_during(phase, log)
            assert running == {}, f"left running after a SIGTERM during {phase}: {running}\n{log.read_text()}"
            assert naming_the_folder == {}, f"left running after {phase}: {naming_the_folder}\n{log.read_text()}"
            assert folders == [], f"left behind after a SIGTERM during {phase}: {folders}\n{log.read_text()}"
