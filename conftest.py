"""The shared suite's command-line options; its fixtures are in shared_tests/.

pytest reads options only from plugins and the rootdir's conftest.py at
start-up, so they live here and `pytest --step 02` works from the root.
"""


def pytest_addoption(parser):
    parser.addoption(
        "--step",
        action="append",
        default=[],
        metavar="STEP",
        help="run only this step (folder name or number, e.g. 02); may be repeated",
    )
    # Check a learner's own app instead of the steps (shared_tests/learner_check.py).
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
