"""The shared suite's command-line options; its fixtures are in shared_tests/.

pytest reads options only from plugins and the rootdir's conftest.py at
start-up, so they live here and `pytest --step 02` works from the root.
"""

from harness.checker import learner_app
from harness.steps import discover


def pytest_addoption(parser):
    parser.addoption(
        "--step",
        action="append",
        default=[],
        metavar="STEP",
        help="run only this step (folder name or number, e.g. 02); may be repeated",
    )
    # Check a learner's own app instead of the steps (harness/checker.py).
    parser.addoption(
        "--app-path",
        metavar="PATH",
        help="check your own app (a package folder, or a .py file, with create_app() or app) instead of the steps",
    )
    parser.addoption(
        "--as-step",
        metavar="STEP",
        help="with --app-path: the step (e.g. 03) whose contract your app should keep",
    )
    parser.addoption(
        "--fresh-apps",
        action="store_true",
        help="make a new app for every test, as a learner's own app always gets, instead of resetting one per step",
    )


def pytest_configure(config):
    """With pytest-xdist (`-n 2`), start the checker's report in the process that prints it too.

    That process runs and collects no test, so shared_tests/conftest.py,
    which starts the checker in every process that does, never loads there.
    """
    if (
        config.getoption("app_path")
        and getattr(config.option, "numprocesses", None)
        and not hasattr(config, "workerinput")
    ):
        learner_app(config, discover(), {})
