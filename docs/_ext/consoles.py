"""Console blocks that the docs build runs, or that say why they are not run.

A page shows a terminal command as a `console` directive, never as a plain
```console fence (the build warns about every plain shell block):

    ```{console}
    :input: |
      wonderland
      wonderland
    :expect: Created user 'alice' with id 1.
    .venv/bin/flask --app steps/03_flask_login create-user alice
    ```

    ```{console}
    :not-run: the README's test command runs exactly this.
    .venv/bin/pytest --step 03
    ```

A block is run (`:run:`, the default) when the page is built, and shows the
output of that run under each command, with a note saying so; or it is
marked `:not-run: REASON`, and the note under it gives the reason. The
build warns, and so the strict build fails, when a command exits with any
status but 0 (or, for the block's last command, `:returncode:`), or when
the output lacks a line of `:expect:` (text to find, or `/a regex/`).

How a block runs:

- With bash, in a throwaway copy of the repository's steps/ (no instance
  folders, no databases), with a throwaway $HOME; one copy per page, so the
  page's blocks build on each other, like a learner's terminal. A block
  with `:setup:` gets a copy of its own, removed after it.
- In a pseudo-terminal of its own, as in a terminal window: click's hidden
  password prompt reads the terminal, not standard input. `:input:` lines
  are typed one by one, each when a prompt waits (output that does not end
  in a newline).
- `.venv` is the docs build's own environment (sys.prefix), and its
  `bin/` (the folder of sys.executable) is also first on PATH.
- The ports the pages name, 5000 (`flask run`'s default) and 8000, are free
  loopback ports when run: in the commands, in FLASK_RUN_PORT, and back in
  the output shown.
- `:server:` starts the block's last command on its own, waits until its
  port (the shown port in the command, else 5000) answers, and shows what
  it printed by then. It keeps running for the page's later blocks, until
  `:stop:` on a block (after that block runs) or the end of the page, and
  is stopped by its process group's id. A `:setup:` line ending in ` &` is
  started the same way.
- `:setup:` lines run before the shown commands, not shown in the block but
  listed in its note. `:substitute:` lines, `SHOWN => RUN`, replace text of
  the shown commands when run, and are listed in the note too; `{redis}`
  in RUN starts a throwaway redis-server (harness/services.py) for the
  page and stands for its URL.
- Consecutive commands run in one bash, so a variable set by one is seen
  by the next; each `:server:` or `&` line is a process of its own.

What the output shown is changed in, and nothing else (the note under a block says which applied): the
free ports are shown as the ports on the page, the throwaway copy's path as
the repository's folder (its $HOME as ~), and terminal colour codes are
dropped. Dates,
process ids and random values are as that run printed them.

The blocks of `step-install` (stepinfo.py) and `readme-command` (repofiles.py) are install
lines: they are marked not run here, with the reason why.
"""

import atexit
import contextlib
import fcntl
import os
import pty
import re
import select
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import termios
import time
from pathlib import Path

import repofiles
import stepinfo
from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

from harness import services

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]
# The ports the pages show: `flask run`'s default, and gunicorn's.
SHOWN_PORTS = (5000, 8000)
SHOWN_ADDRESS = re.compile(r"\b(127\.0\.0\.1|localhost):(5000|8000)\b")
# Fenced blocks in these languages are commands: each must be a `console` directive.
SHELL_LANGUAGES = {"console", "shell-session", "sh-session", "bash", "sh", "shell", "zsh"}
# What the build printed after each command, to split the output by command.
STATUS = re.compile(r"\n?@@consoles-exit-status=(\d+)@@\n")
STATUS_PRINT = "printf '\\n@@consoles-exit-status=%d@@\\n' $?"
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07|\x1b[()][A-Z0-9]")
# Make the pseudo-terminal the child's controlling terminal, as a terminal window's shell has
# (subprocess's start_new_session gives it a session of its own first); then run the command.
WITH_TERMINAL = (
    "import fcntl,os,sys,termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); os.execvp(sys.argv[1], sys.argv[1:])"
)
SEGMENT_TIMEOUT = 120
SERVER_TIMEOUT = 60


class ConsoleError(Exception):
    """A block that did not run as its page says: the message becomes a build warning."""


def open_terminal():
    """A pseudo-terminal of 80 by 24 characters: (the end we read and type into, the program's end)."""
    reader, program_end = pty.openpty()
    fcntl.ioctl(program_end, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
    return reader, program_end


def start_in_terminal(command, sandbox):
    """Start `command` with bash in its own session, its terminal a new pseudo-terminal."""
    reader, program_end = open_terminal()
    try:
        process = subprocess.Popen(
            [sys.executable, "-c", WITH_TERMINAL, "bash", "-c", command],
            cwd=sandbox.folder,
            env=sandbox.environment(),
            stdin=program_end,
            stdout=program_end,
            stderr=program_end,
            start_new_session=True,
        )
    finally:
        os.close(program_end)
    return process, reader


def read_some(reader, wait):
    """What the program wrote within `wait` seconds: bytes, b"" for nothing yet, None once it is gone."""
    ready, _, _ = select.select([reader], [], [], wait)
    if not ready:
        return b""
    try:
        return os.read(reader, 65536) or None
    except OSError:  # EIO: every program holding the terminal has closed it
        return None


def stop_group(process, timeout=10):
    """Stop a process and what it started, by its process group (its own pid): TERM, then KILL."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=timeout)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def terminal_text(data):
    """Bytes from a terminal as text, with plain newlines."""
    return data.decode("utf-8", errors="replace").replace("\r\n", "\n").replace("\r", "")


def converse(script, sandbox, inputs):
    """Run a bash script in a terminal, typing `inputs` at its prompts; return what it printed."""
    process, reader = start_in_terminal(script, sandbox)
    printed = b""
    typed_at = 0
    last_output = time.monotonic()
    deadline = last_output + SEGMENT_TIMEOUT
    try:
        while True:
            data = read_some(reader, 0.05)
            now = time.monotonic()
            if data is None:
                break
            if data:
                printed += data
                last_output = now
                continue
            if process.poll() is not None and now - last_output > 0.2:
                break
            waiting = len(printed) > typed_at and not printed.endswith(b"\n")
            if inputs and waiting and now - last_output > 0.1:
                # A prompt: type the next line, as a person would once it shows.
                os.write(reader, inputs.pop(0).encode() + b"\n")
                typed_at = len(printed)
            if now > deadline:
                raise ConsoleError(
                    f"still running after {SEGMENT_TIMEOUT} s; it printed:\n{terminal_text(printed)[-2000:]}"
                )
    finally:
        stop_group(process, timeout=1)  # a command's own background job, if any, ends with it
        os.close(reader)
    return terminal_text(printed)


class Server:
    """A long-running command (`flask run`, gunicorn) in a terminal of its own, kept for the page."""

    def __init__(self, command, sandbox, port):
        self.command = command
        self.port = port
        self.process, self.reader = start_in_terminal(command, sandbox)
        self.printed = b""

    def wait_until_ready(self):
        """Wait until the port answers and the server has printed what it prints at start; return that."""
        deadline = time.monotonic() + SERVER_TIMEOUT
        while True:
            try:
                services.wait_for_port(self.port, self.process, self.command, timeout=0.1)
                break
            except RuntimeError:
                self.drain(0.05)
                if self.process.poll() is not None or time.monotonic() > deadline:
                    self.drain(0.2)
                    raise ConsoleError(
                        f"the server did not answer on its port; it printed:\n{terminal_text(self.printed)}"
                    ) from None
        # The rest of its start-up lines (gunicorn boots its workers after it listens).
        quiet_since = time.monotonic()
        while time.monotonic() - quiet_since < 0.3 and time.monotonic() < deadline:
            if self.drain(0.1):
                quiet_since = time.monotonic()
        return terminal_text(self.printed)

    def drain(self, wait):
        """Read what the server printed (its terminal must not fill up); True if there was something."""
        data = read_some(self.reader, wait)
        if data:
            self.printed += data
        return bool(data)

    def stop(self):
        stop_group(self.process)
        os.close(self.reader)


class Sandbox:
    """A throwaway copy of steps/, with `.venv/bin` the build's own, free ports, and the servers started there."""

    def __init__(self):

        self.folder = Path(tempfile.mkdtemp(prefix="flask-login-steps-console-"))
        ignore = shutil.ignore_patterns("instance", "__pycache__", "*.pyc", "*.sqlite", ".pytest_cache")
        shutil.copytree(ROOT / "steps", self.folder / "steps", ignore=ignore)
        # $HOME too is throwaway (gunicorn keeps a control socket there), shown as ~.
        self.home = self.folder / "home"
        self.home.mkdir()
        # The build's own environment as .venv, whole: `.venv/bin/python` finds its
        # pyvenv.cfg one folder up, and so its packages (a lone bin/ would not).
        (self.folder / ".venv").symlink_to(sys.prefix, target_is_directory=True)
        self.ports = {shown: services.free_port() for shown in SHOWN_PORTS}
        self.servers = []
        self.redis = None
        # Which of those changes applied to the output of the block being run, to tell the reader.
        self.scrubbed = set()

    def environment(self):
        bindir = str(Path(sys.executable).parent)
        # Nothing of the builder's Flask or gunicorn settings: the page's commands say it all.
        env = services.environment_without("FLASK_", "GUNICORN_")
        env.pop("PYTHONDONTWRITEBYTECODE", None)
        env.update(
            PATH=bindir + os.pathsep + env.get("PATH", ""),
            HOME=str(self.home),
            TERM="dumb",
            # Output as it comes, as on a terminal, even when a command sends it to a file.
            PYTHONUNBUFFERED="1",
            # Compiled modules go to one throwaway folder for the whole build: an environment
            # installed without them (uv's default) would otherwise compile SQLAlchemy and the
            # rest anew in every command, seconds each time.
            PYTHONPYCACHEPREFIX=bytecode_cache(),
            FLASK_RUN_PORT=str(self.ports[5000]),
        )
        return env

    def command(self, shown, substitutions, record=True):
        """The command to run for one shown on the page: substitutions made, shown ports made free."""
        command = shown
        for old, new in substitutions:
            if "{redis}" in new:
                new = new.replace("{redis}", self.redis_url())
            command = command.replace(old, new)
        if record:
            self.scrubbed |= {int(port) for _, port in SHOWN_ADDRESS.findall(command)}
        return SHOWN_ADDRESS.sub(lambda m: f"{m.group(1)}:{self.ports[int(m.group(2))]}", command)

    def redis_url(self):
        if self.redis is None:
            self.redis = services.RedisServer()
            self.redis.start()
        return self.redis.url

    def shown(self, text, record=True):
        """Output as the page shows it (the module's docstring says how).

        With `record`, notes in `scrubbed` what that changed, for the reader.
        """
        changed = set()
        if ANSI.search(text):
            changed.add("colours")
            text = ANSI.sub("", text)
        if str(self.folder) in text:
            changed.add("path")
            text = text.replace(str(self.home), "~").replace(f"{self.folder}/", "").replace(str(self.folder), ".")
        for shown, free in self.ports.items():
            text, count = re.subn(rf":{free}\b", f":{shown}", text)
            if count:
                changed.add(shown)
        if record:
            self.scrubbed |= changed
        return text

    def serve(self, command, shown_port, record):
        server = Server(command, self, self.ports[shown_port])
        self.servers.append(server)
        return self.shown(server.wait_until_ready(), record)

    def stop_servers(self):
        while self.servers:
            self.servers.pop().stop()

    def close(self):
        self.stop_servers()
        if self.redis is not None:
            self.redis.close()
        shutil.rmtree(self.folder, ignore_errors=True)


# The sandbox of each page being read, by docname; closed once the page is read.
PAGES = {}
BYTECODE = []


def bytecode_cache(*args):
    """The build's folder for compiled modules (PYTHONPYCACHEPREFIX), made on first use.

    Made when the build starts (builder-inited), before Sphinx forks the
    processes that read pages four at a time (-j 4): each would otherwise
    make a folder of its own, which close_all, in the main process, never
    sees, leaving about 50 MB behind in the temporary folder per build.
    """
    if not BYTECODE:
        BYTECODE.append(tempfile.mkdtemp(prefix="flask-login-steps-console-pycache-"))
    return BYTECODE[0]


def close_page(app, doctree):
    sandbox = PAGES.pop(app.env.docname, None)
    if sandbox is not None:
        sandbox.close()


def close_all(*args):
    """Once the build is over (or stopped): every page's servers and copies, and the compiled modules."""
    while PAGES:
        PAGES.popitem()[1].close()
    while BYTECODE:
        shutil.rmtree(BYTECODE.pop(), ignore_errors=True)


def split_commands(text):
    """The commands of a block, each as its lines: a line continues while bash finds the command unfinished."""
    commands, lines = [], []
    for line in text.splitlines():
        if not lines and not line.strip():
            continue
        lines.append(line)
        source = "\n".join(lines)
        if line.endswith("\\"):
            continue
        check = subprocess.run(["bash", "-n"], input=source, text=True, capture_output=True)
        if check.returncode == 0:
            commands.append(lines)
            lines = []
    if lines:
        commands.append(lines)
    return commands


def option_lines(value):
    return [line.strip() for line in (value or "").splitlines() if line.strip()]


def shown_port(command, value):
    """The shown port a server listens on: given, else the one its command names, else flask run's 5000."""
    if value:
        return int(value)
    found = SHOWN_ADDRESS.search(command)
    return int(found.group(2)) if found else 5000


class Console(SphinxDirective):
    """A terminal session: commands, and (when run) what each one printed when the page was built."""

    has_content = True
    option_spec = {
        "run": directives.flag,
        "not-run": directives.unchanged_required,
        "input": directives.unchanged_required,
        "server": directives.unchanged,
        "stop": directives.flag,
        "expect": directives.unchanged_required,
        "returncode": directives.nonnegative_int,
        "setup": directives.unchanged_required,
        "substitute": directives.unchanged_required,
    }
    run_options = ("input", "server", "expect", "returncode", "setup", "substitute")

    def run(self):
        self.env.note_dependency(__file__)
        commands = split_commands("\n".join(self.content))
        if "not-run" in self.options:
            given = [name for name in ("run", *self.run_options) if name in self.options]
            if given:
                self.warn(f":not-run: and :{given[0]}: cannot both be given")
            return self.render(commands, {}, not_run(self.options["not-run"]))
        for folder in sorted(set(re.findall(r"steps/(\d\d_\w+)", self.block_text))):
            for path in (ROOT / "steps" / folder).rglob("*"):
                if path.suffix in (".py", ".html", ".toml", ".ini", ".mako"):
                    self.env.note_dependency(str(path))
        outputs = {}
        try:
            outputs = self.execute(commands)
        except ConsoleError as error:
            self.warn(str(error))
        except Exception as error:  # anything else here is a broken docs build too
            self.warn(f"could not run the block: {error!r}")
        blocks = self.render(commands, outputs, self.run_note(outputs))
        if "stop" in self.options and self.env.docname in PAGES:
            PAGES[self.env.docname].stop_servers()
        return blocks

    def warn(self, message):
        logger.warning("console block: %s", message, location=self.get_location())

    def execute(self, commands):
        """Run the block; return each shown command's output, by its index. Raises ConsoleError."""
        if not commands and "stop" not in self.options:
            raise ConsoleError("no command to run")
        substitutions = []
        for line in option_lines(self.options.get("substitute")):
            old, arrow, new = line.partition(" => ")
            if not arrow or not any(old in "\n".join(c) for c in commands):
                raise ConsoleError(f"the substitution {line!r} matches no shown command")
            substitutions.append((old, new))
        own = "setup" in self.options
        if own:
            sandbox = Sandbox()
        elif self.env.docname not in PAGES:
            sandbox = PAGES[self.env.docname] = Sandbox()
        else:
            sandbox = PAGES[self.env.docname]
        try:
            return self.execute_in(sandbox, commands, substitutions)
        finally:
            if own:
                sandbox.close()

    def execute_in(self, sandbox, commands, substitutions):
        sandbox.scrubbed.clear()
        # (index among the shown commands or None for setup, its text, a server's shown port or None)
        steps = []
        for line in option_lines(self.options.get("setup")):
            server = line.endswith(" &")
            command = line.removesuffix(" &")
            steps.append(
                (None, sandbox.command(command, [], record=False), shown_port(command, None) if server else None)
            )
        for index, lines in enumerate(commands):
            shown = "\n".join(lines)
            last_and_server = "server" in self.options and index == len(commands) - 1
            port = shown_port(shown, self.options["server"]) if last_and_server else None
            steps.append((index, sandbox.command(shown, substitutions), port))
        inputs = option_lines(self.options.get("input"))
        returncode = self.options.get("returncode", 0)
        outputs = {}
        segment = []

        def run_segment():
            if not segment:
                return
            script = "".join(f"{command}\n{STATUS_PRINT}\n" for _, command, _ in segment)
            parts = STATUS.split(converse(script, sandbox, inputs))
            for (index, command, _), output, status in zip(segment, parts[0::2], parts[1::2], strict=False):
                output = sandbox.shown(output, record=index is not None)
                wanted = returncode if index is not None and index == len(commands) - 1 else 0
                if int(status) != wanted:
                    raise ConsoleError(
                        f"`{sandbox.shown(command)}` exited with status {status}, not {wanted}; it printed:\n{output}"
                    )
                if index is not None:
                    outputs[index] = output
            if len(parts) // 2 < len(segment):
                stopped = sandbox.shown(segment[len(parts) // 2][1])
                raise ConsoleError(f"the shell stopped before `{stopped}`:\n{sandbox.shown(parts[-1])}")
            segment.clear()

        for step in steps:
            index, command, port = step
            if port is None:
                segment.append(step)
                continue
            run_segment()
            output = sandbox.serve(command, port, record=index is not None)
            if index is not None:
                outputs[index] = output
        run_segment()
        if inputs:
            raise ConsoleError(f"no prompt asked for the input {inputs!r}")
        shown_output = "\n".join(outputs.values())
        for wanted in option_lines(self.options.get("expect")):
            if wanted.startswith("/") and wanted.endswith("/") and len(wanted) > 1:
                found = re.search(wanted[1:-1], shown_output, re.MULTILINE)
            else:
                found = any(wanted in line for line in shown_output.splitlines())
            if not found:
                raise ConsoleError(f"the output has no line with {wanted!r} (:expect:); it was:\n{shown_output}")
        self.scrubbed = set(sandbox.scrubbed)
        return outputs

    def render(self, commands, outputs, note):
        lines = []
        for index, command in enumerate(commands):
            lines += [("$ " if i == 0 else "> ") + line for i, line in enumerate(command)]
            if outputs.get(index):
                lines.append(outputs[index].rstrip("\n"))
        result = []
        if lines:
            text = "\n".join(lines)
            block = nodes.literal_block(text, text, language="console")
            block["consoles"] = "run" if outputs else "not-run"
            self.set_source_info(block)
            result.append(block)
        if note is not None and lines:
            result.append(note)
        return result

    def run_note(self, outputs):
        """What the reader is told under a block that ran: that it ran, and what the run changed."""
        if not outputs:
            return None
        box = nodes.container(classes=["console-note"])
        said = nodes.paragraph()
        said += nodes.emphasis(text="Run when this page was built:")
        changes = [
            f"port {port} was a free port then, shown as {port}" for port in SHOWN_PORTS if port in self.scrubbed
        ]
        if "path" in self.scrubbed:
            changes.append("the throwaway copy's path is shown as the repository's, its home folder as ~")
        if "colours" in self.scrubbed:
            changes.append("colour codes are left out")
        said += nodes.Text(" the output is that run's" + "".join(f"; {change}" for change in changes) + ".")
        inputs = option_lines(self.options.get("input"))
        if inputs:
            said += nodes.Text(" Typed at the prompts: ")
            for i, typed in enumerate(inputs):
                said += nodes.Text(", " if i else "")
                said += nodes.literal(text=typed)
            said += nodes.Text(".")
        if "server" in self.options:
            until = "after this block" if "stop" in self.options else "at the end of the page"
            said += nodes.Text(f" The server's output is what it had printed once it answered; it was stopped {until}.")
        substitutions = [line.partition(" => ") for line in option_lines(self.options.get("substitute"))]
        if substitutions:
            said += nodes.Text(" Run with, in place of what is shown:")
            for i, (old, _, new) in enumerate(substitutions):
                said += nodes.Text(" " if i == 0 else "; ")
                if "{redis}" in new:
                    said += nodes.Text("the URL of a throwaway redis-server")
                else:
                    said += nodes.literal(text=new)
                said += nodes.Text(" for ")
                said += nodes.literal(text=old)
            said += nodes.Text(".")
        box += said
        setup = option_lines(self.options.get("setup"))
        if setup:
            box += nodes.paragraph(text="Before it, in a throwaway copy of its own, the build ran (not shown above):")
            text = "\n".join("$ " + line for line in setup)
            block = nodes.literal_block(text, text, language="console")
            block["consoles"] = "setup"
            box += block
        return box


def not_run(reason):
    box = nodes.container(classes=["console-note"])
    said = nodes.paragraph()
    said += nodes.emphasis(text="Not run when this page was built: ")
    said += nodes.Text(reason)
    box += said
    return box


def mark_not_run(result, reason):
    """Mark the console blocks a directive made as not run, and add the reason under them."""
    blocks = [node for node in result if isinstance(node, nodes.literal_block)]
    for block in blocks:
        block["consoles"] = "not-run"
        # A prompt, as on the page's other console blocks: this is a command, not output.
        text = "\n".join("$ " + line for line in block.astext().splitlines())
        block.rawsource = text
        block.children = [nodes.Text(text)]
    return result + [not_run(reason)] if blocks else result


INSTALL_REASON = "the environment that built it was made with these packages (`nox -s docs` installs them)."


class StepInstall(stepinfo.StepInstall):
    """stepinfo's `step-install`, its pip line marked as not run."""

    def run(self):
        return mark_not_run(super().run(), INSTALL_REASON)


README_REASONS = {
    "serve-command": "it makes a .venv and serves the last step until Ctrl+C; the environment that built "
    "this page was made the same way.",
    "test-command": "it runs every test session, this build among them; CI runs it (`.ci/run`).",
}


class ReadmeCommand(repofiles.ReadmeCommand):
    """repofiles' `readme-command`, its command marked as not run."""

    def run(self):
        reason = README_REASONS.get(self.arguments[0], "it is one of the README's commands, which CI runs.")
        return mark_not_run(super().run(), reason)


def check_unmarked(app, doctree):
    """Warn about each shell block that is neither run nor marked not run: a plain ```console fence, say."""
    for block in doctree.findall(nodes.literal_block):
        if block.get("language") in SHELL_LANGUAGES and not block.get("consoles"):
            logger.warning(
                "a plain ```%s block: write it as ```{console} (run when the docs are built) or with :not-run: REASON",
                block["language"],
                location=block,
            )


def setup(app):
    app.add_directive("console", Console)
    app.add_directive("step-install", StepInstall, override=True)
    app.add_directive("readme-command", ReadmeCommand, override=True)
    # check_unmarked first: close_page may take a moment, stopping servers.
    app.connect("doctree-read", check_unmarked)
    app.connect("doctree-read", close_page)
    app.connect("builder-inited", bytecode_cache)
    app.connect("build-finished", close_all)
    atexit.register(close_all)  # a build stopped by an error or Ctrl+C leaves nothing running
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
