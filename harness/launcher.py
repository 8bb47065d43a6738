"""Start `python -m flask ...`, gunicorn or `python -c ...` in seconds less: forked from a process that has the libraries.

A new Python process running a step spends more than a second importing
Flask, SQLAlchemy, Alembic and the rest before it does anything, and the
suite starts dozens (servers, `flask db`, `create-user`): most of a
production step's test time. So processes are started the way
multiprocessing's "forkserver" starts them (the standard library's, as
gunicorn's `--preload` does for its workers): one server process imports
the libraries once, then forks a child for each command, which runs the
command's module as `python -m` would (`runpy`), in its own folder and
environment, with its own standard streams. The child is a real process
of its own: it listens on its own port, stops on SIGTERM, exits with the
command's exit code. Only what it imports first is already there.

`Popen` and `run` take the subset of subprocess's arguments the tests
use. A command that is not `[sys.executable, "-m" or "-c", ...]`, or an
environment whose PYTHON* variables differ from this process's (they
shape the interpreter itself), gets a plain subprocess; so does every
command when HARNESS_FRESH_PROCESSES=1.

A script run by its path (`python my_script.py`, not `python -m` or a
console script such as `pytest`) that starts processes through this module
must keep its work under `if __name__ == "__main__":`, as multiprocessing
asks of every forkserver program: each child imports the main script
first, and an unguarded one would run it all again, servers and all.
https://docs.python.org/3/library/multiprocessing.html#the-spawn-and-forkserver-start-methods
"""

import atexit
import contextlib
import multiprocessing
import os
import runpy
import subprocess
import sys
import tempfile
import traceback
import weakref
from pathlib import Path

# What the steps' processes import first; any a virtualenv lacks is left out.
PRELOAD = [
    "flask",
    "flask.cli",
    "sqlalchemy.orm",
    "flask_sqlalchemy",
    "alembic.runtime.migration",
    "alembic.script",
    "alembic.ddl.postgresql",
    "alembic.ddl.sqlite",
    "flask_migrate",
    "flask_login",
    "flask_wtf.csrf",
    "email_validator",
    "flask_bcrypt",
    "zxcvbn",
    "flask_session.sqlalchemy",
    "flask_session.redis",
    "flask_limiter",
    "redis",
    "flask_mail",
    "psycopg",
    "gunicorn.app.wsgiapp",
    "pyotp",
    "segno",
    "cryptography.fernet",
    # Steps 11 and 12 (passkeys, OpenID Connect): together a third of a
    # second of imports at every start of a later step.
    "webauthn",
    "authlib.integrations.flask_client",
    # The checker's own runs (check_tests/): pytest itself, but none of its
    # plugins, which pytest must import after its assertion rewriter.
    "pytest",
]

_context = None
_fresh_path = None


def _forkserver():
    """The forkserver context, started on first use with PRELOAD imported."""
    global _context
    if _context is None:
        _context = multiprocessing.get_context("forkserver")
        _context.set_forkserver_preload([name for name in PRELOAD if _importable(name)])
    return _context


def _importable(name):
    try:
        from importlib.util import find_spec

        return find_spec(name.partition(".")[0]) is not None
    except (ImportError, ValueError):
        return False


def _python_path():
    """sys.path of a new interpreter here, less its first entry (the folder a command runs in)."""
    global _fresh_path
    if _fresh_path is None:
        code = "import sys, json; print(json.dumps(sys.path[1:]))"
        import json

        _fresh_path = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, check=True).stdout)
    return _fresh_path


def _forkable(args, env):
    if os.environ.get("HARNESS_FRESH_PROCESSES") == "1" or sys.platform == "win32":
        return False
    if len(args) < 2 or args[0] != sys.executable or args[1] not in ("-m", "-c"):
        return False
    env = os.environ if env is None else env
    interpreter = {k: v for k, v in env.items() if k.startswith("PYTHON")}
    return interpreter == {k: v for k, v in os.environ.items() if k.startswith("PYTHON")}


def _child(args, env, cwd, streams, sys_path):
    """In the forked child: become `python ARGS...`, run in `cwd` with `env`; exit as it would."""
    os.chdir(cwd)
    os.environ.clear()
    os.environ.update(env)
    for fd, (path, mode) in enumerate(streams):
        if path is not None:
            opened = os.open(path, mode, 0o600)
            os.dup2(opened, fd)
            os.close(opened)
    sys.stdin = open(0, closefd=False)  # noqa: SIM115 -- the child's own standard input, for its life
    sys.path[:] = [cwd, *sys_path]
    code = 0
    try:
        if args[0] == "-m":
            sys.argv = [args[1], *args[2:]]
            runpy.run_module(args[1], run_name="__main__", alter_sys=True)
        else:
            sys.argv = ["-c", *args[2:]]
            exec(compile(args[1], "<string>", "exec"), {"__name__": "__main__"})
    except SystemExit as stop:
        code = stop.code
    except BaseException:
        traceback.print_exc()
        code = 1
    finally:
        atexit._run_exitfuncs()  # what a Python process does at its end; multiprocessing skips it
    if code is not None and not isinstance(code, int):
        print(code, file=sys.stderr)
        code = 1
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)


def _remove(path):
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)


class Popen:
    """subprocess.Popen for `[sys.executable, "-m" | "-c", ...]`, forked from the forkserver when it can be."""

    def __init__(self, args, env=None, cwd=None, stdin=None, stdout=None, stderr=None, text=False):
        self.args = list(map(str, args))
        self.text = text
        if not _forkable(self.args, env):
            self._process = subprocess.Popen(
                self.args, env=env, cwd=cwd, stdin=stdin, stdout=stdout, stderr=stderr, text=text
            )
            self.pid = self._process.pid
            return
        self._process = None
        self._outputs = {}  # fd -> the file standing in for its pipe
        streams = [self._stream(0, stdin, os.O_RDONLY)]
        write = os.O_WRONLY | os.O_CREAT | os.O_APPEND
        streams.append(self._stream(1, stdout, write))
        streams.append(streams[1] if stderr == subprocess.STDOUT else self._stream(2, stderr, write))
        env = dict(os.environ if env is None else env)
        cwd = str(Path(cwd or os.getcwd()).resolve())
        self._child = _forkserver().Process(
            target=_child, args=(self.args[1:], env, cwd, streams, _python_path()), daemon=True
        )
        self._child.start()
        self.pid = self._child.pid

    def _stream(self, fd, given, mode):
        """(path, open mode) for the child's `fd`: a file's own path, /dev/null, a file of ours for PIPE; or inherit."""
        if given is None:
            return (None, mode)
        if given == subprocess.DEVNULL:
            return (os.devnull, mode)
        if given == subprocess.PIPE:
            descriptor, path = tempfile.mkstemp(prefix=f"harness-fd{fd}-")
            os.close(descriptor)
            # Removed with this object, or when communicate() has read it.
            weakref.finalize(self, _remove, path)
            self._outputs[fd] = path
            return (path, mode)
        return (given.name, mode)  # an open file: the child opens the same path

    @property
    def returncode(self):
        if self._process is not None:
            return self._process.returncode
        return self._child.exitcode

    def poll(self):
        if self._process is not None:
            return self._process.poll()
        return self._child.exitcode

    def wait(self, timeout=None):
        if self._process is not None:
            return self._process.wait(timeout)
        self._child.join(timeout)
        if self._child.exitcode is None:
            raise subprocess.TimeoutExpired(self.args, timeout)
        return self._child.exitcode

    def communicate(self, input=None, timeout=None):
        """Wait for the end; return (stdout, stderr) as read from the files standing in for pipes."""
        if self._process is not None:
            return self._process.communicate(input, timeout)
        self.wait(timeout)
        return tuple(self._read(fd) for fd in (1, 2))

    def _read(self, fd):
        if fd not in self._outputs:
            return None
        data = Path(self._outputs[fd]).read_bytes()
        _remove(self._outputs[fd])
        return data.decode(errors="replace") if self.text else data

    def send_signal(self, signum):
        if self.poll() is None:
            os.kill(self.pid, signum)

    def terminate(self):
        if self._process is not None:
            return self._process.terminate()
        self._child.terminate()

    def kill(self):
        if self._process is not None:
            return self._process.kill()
        self._child.kill()


def run(args, *, env=None, cwd=None, input=None, capture_output=False, text=False, timeout=None):
    """subprocess.run for `[sys.executable, "-m" | "-c", ...]`, through `Popen` above."""
    with tempfile.TemporaryDirectory(prefix="harness-input-") as folder:
        stdin = None
        if input is not None:
            path = Path(folder, "stdin")
            path.write_bytes(input.encode() if isinstance(input, str) else input)
            stdin = path.open("rb")
        output = subprocess.PIPE if capture_output else None
        try:
            process = Popen(args, env=env, cwd=cwd, stdin=stdin, stdout=output, stderr=output, text=text)
            try:
                stdout, stderr = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
                raise
        finally:
            if stdin is not None:
                stdin.close()
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)
