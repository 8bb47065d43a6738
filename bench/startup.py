"""Figures 4 and 5: a step's cold start, and a warm `nox`."""

import os
import statistics
import subprocess
import sys
import sysconfig
import time

from common import ROOT
from common import env_for

COLD = """
import time
start = time.perf_counter()
from harness.steps import discover, load_module, select
[step] = select(discover(), [{name!r}])
load_module(step.path, "cold_" + step.name).create_app()
print(time.perf_counter() - start)
"""


def cold_start(tmp, step, repeats):
    """The median ms of `repeats` fresh interpreters importing the step and calling create_app(), and each."""
    code = COLD.format(name=step.name)
    times = []
    # One untimed start first: it writes the step's own bytecode.
    for _ in range(repeats + 1):
        result = subprocess.run(
            [sys.executable, "-c", code], env=env_for(tmp, step), check=True, capture_output=True, text=True
        )
        times.append(float(result.stdout.strip().splitlines()[-1]))
    times = times[1:]
    return round(statistics.median(times) * 1000, 1), [round(t * 1000, 1) for t in times]


def nox_warm(nox_cmd):
    """Seconds for the default `nox`, run a second time: every virtualenv made and filled."""
    cmd = nox_cmd.split()
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)  # warm: venvs made and filled
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True)
    return round(time.perf_counter() - start, 1)


def with_bytecode():
    """Let every Python the bench starts read and write compiled bytecode, as a deployed app does.

    Some machines set PYTHONDONTWRITEBYTECODE, and a virtualenv filled by uv
    holds no .pyc files: every import would then compile its source again,
    and a cold start would measure the compiler (about 0.8 s for SQLAlchemy
    and friends), not the app.
    """
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    sys.dont_write_bytecode = False
    purelib = sysconfig.get_paths()["purelib"]
    subprocess.run([sys.executable, "-m", "compileall", "-q", purelib], check=False, stdout=subprocess.DEVNULL)
