"""Every task of this repository, as a nox session.

`nox` runs the default sessions, the whole test matrix; `nox -l` lists them
all. Each step's tests run in a virtualenv holding only what that step's
step.toml declares, plus the test tools from pyproject.toml.
"""

import sys
from pathlib import Path

import nox

ROOT = Path(__file__).parent
sys.path.insert(0, str(ROOT / "shared_tests"))
from stepkit import discover  # noqa: E402
from stepkit import select  # noqa: E402

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.reuse_venv = "yes"

PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")
STEPS = {step.name: step for step in discover()}
FINAL_STEP = list(STEPS)[-1]


def install_step(session, step, *groups):
    """Install what `step` declares, and the named dependency groups."""
    extra = [req for group in groups for req in nox.project.dependency_groups(PYPROJECT, group)]
    session.install(*STEPS[step].dependencies, *extra)


@nox.session
@nox.parametrize("step", list(STEPS), ids=list(STEPS))
def tests(session, step):
    """Run the shared suite on one step, with only that step's dependencies."""
    install_step(session, step, "test")
    session.run("pytest", "--step", step, *session.posargs)


@nox.session
def lint(session):
    """Check style and formatting with ruff (`nox -s lint -- --fix` is not a thing: run ruff yourself)."""
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session(default=False)
def serve(session):
    """Serve a step on http://127.0.0.1:5000: the last one, or `nox -s serve -- 01`.

    Anything after the step goes to `flask run`: `nox -s serve -- 03 --port 5001`.
    """
    args = list(session.posargs)
    step = FINAL_STEP
    if args and not args[0].startswith("-"):
        try:
            [found] = select(STEPS.values(), [args.pop(0)])
        except (LookupError, ValueError) as error:
            session.error(str(error))
        step = found.name
    install_step(session, step)
    session.run("flask", "--app", f"steps/{step}", "run", *args)
