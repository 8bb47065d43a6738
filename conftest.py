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
