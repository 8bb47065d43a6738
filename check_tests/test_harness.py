"""The harness's own parts that every suite leans on: the browser tests' selection, the process launcher."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness import launcher
from harness.steps import discover

STEPS = {step.number: step for step in discover()}
LAST_STEP = list(STEPS)[-1]
ROOT = Path(__file__).resolve().parent.parent


FIRST_AND_LAST_CONFTEST = """
import pytest
from harness.steps import deselect_replaced, discover, first_and_last, step_params

def pytest_configure(config):
    config.addinivalue_line("markers", "features(*names): -")
    config.addinivalue_line("markers", "replaced_by(*names): -")

def pytest_generate_tests(metafunc):
    if "step" in metafunc.fixturenames:
        metafunc.parametrize("step", step_params(metafunc, discover()), scope="session")

def pytest_collection_modifyitems(config, items):
    deselect_replaced(config, items)
    first_and_last(config, items)
"""

FIRST_AND_LAST_TESTS = """
import pytest

@pytest.mark.features("login")
def test_login(step): pass

@pytest.mark.features("email-confirmation")
@pytest.mark.parametrize("case", ["a", "b"])
def test_confirm(step, case): pass

@pytest.mark.features("registration")
@pytest.mark.replaced_by("email-confirmation")
def test_sign_up(step): pass

def test_without_a_step(): pass
"""


def test_first_and_last_keeps_each_test_where_it_is_first_taught_and_on_the_last_step(tmp_path):
    """`nox -s e2e`'s selection (harness.steps.first_and_last), on a suite of four tests."""
    (tmp_path / "conftest.py").write_text(FIRST_AND_LAST_CONFTEST)
    (tmp_path / "test_selection.py").write_text(FIRST_AND_LAST_TESTS)
    command = [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", "test_selection.py"]
    result = launcher.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    collected = {line.partition("::")[2] for line in result.stdout.splitlines() if "::" in line}

    def first(feature, steps=STEPS):
        return next(s.name for s in steps.values() if feature in s.features)

    last = STEPS[LAST_STEP].name
    without_confirmation = {n: s for n, s in STEPS.items() if "email-confirmation" not in s.features}
    assert collected == {
        f"test_login[{first('login')}]",
        f"test_login[{last}]",
        *(f"test_confirm[{step}-{case}]" for step in (first("email-confirmation"), last) for case in "ab"),
        f"test_sign_up[{first('registration')}]",
        # The last step whose contract it still is.
        f"test_sign_up[{list(without_confirmation.values())[-1].name}]",
        "test_without_a_step",
    }


def test_a_launched_python_runs_as_a_new_process_would(tmp_path):
    """Its folder, environment, arguments, standard input and exit code are the command's own."""
    code = "import os, sys; print(os.getcwd(), os.environ['ANSWER'], sys.stdin.read(), sys.argv[1:]); sys.exit(3)"
    env = {**os.environ, "ANSWER": "42"}
    result = launcher.run(
        [sys.executable, "-c", code, "one"], env=env, cwd=tmp_path, input="typed", capture_output=True, text=True
    )
    assert (result.returncode, result.stdout, result.stderr) == (3, f"{tmp_path} 42 typed ['one']\n", "")


def test_a_launched_python_that_fails_prints_its_traceback_and_exits_1(tmp_path):
    result = launcher.run([sys.executable, "-c", "1 / 0"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 1
    assert "ZeroDivisionError" in result.stderr and "Traceback" in result.stderr


def test_a_launched_module_runs_as_main_and_stops_on_sigterm(tmp_path):
    (tmp_path / "sleeper.py").write_text("import time\nprint(__name__, flush=True)\ntime.sleep(60)\n")
    with (tmp_path / "log").open("wb") as log:
        process = launcher.Popen([sys.executable, "-m", "sleeper"], cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 30
    while (tmp_path / "log").read_text() != "__main__\n" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert process.poll() is None
    process.terminate()
    assert process.wait(timeout=10) == -signal.SIGTERM
    assert (tmp_path / "log").read_text() == "__main__\n"


def test_other_commands_start_as_plain_subprocesses(tmp_path):
    process = launcher.Popen(["sh", "-c", "exit 5"], cwd=tmp_path)
    assert isinstance(process._process, subprocess.Popen)
    assert process.wait(timeout=10) == 5


def test_free_ports_are_never_handed_out_twice_across_processes(tmp_path):
    """Four processes each ask for 300 ports at once, as test workers and nox lanes do: no port twice.

    The kernel's pick (bind to port 0) gave one port twice in 15 calls of
    one process on this machine, before free_port() promised its ports.
    """
    script = "from harness.services import free_port\nprint(*(free_port() for _ in range(300)))"
    env = os.environ | {"XDG_CACHE_HOME": str(tmp_path)}  # promises of this test's own
    workers = [
        subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, text=True) for _ in range(4)
    ]
    ports = [int(port) for worker in workers for port in worker.communicate(timeout=60)[0].split()]
    assert len(ports) == 1200
    assert len(set(ports)) == len(ports)


FIRST_WITH_EVERY_STORE = next(
    step for step in STEPS.values() if {"database", "server-sessions", "rate-limits"} <= set(step.features)
)


@pytest.mark.parametrize(
    ("step", "options"),
    [(FIRST_WITH_EVERY_STORE.name, []), (STEPS[LAST_STEP].name, []), (FIRST_WITH_EVERY_STORE.name, ["--fresh-apps"])],
    ids=["first-step-with-every-store", "last-step", "fresh-apps"],
)
def test_a_reused_app_keeps_nothing_of_the_test_before(tmp_path, step, options):
    """The shared suite's `app` fixture gives a test the app of the test before: reset, so nothing is left over.

    shared_tests/reuse_probe.py, two tests in one process: the first adds a
    user, locks alice out and logs in; the second, given the same app,
    finds none of it (and with --fresh-apps, a new app).
    """
    command = [sys.executable, "-m", "pytest", "--step", step, *options, "-p", "no:xdist", "-p", "no:cacheprovider"]
    command += ["--basetemp", str(tmp_path / "run"), "shared_tests/reuse_probe.py"]
    result = launcher.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed" in result.stdout, result.stdout
