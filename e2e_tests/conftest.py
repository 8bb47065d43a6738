"""Fixtures for the browser tests: a real server per step, a real Chromium.

Every test that asks for `step` (or `server`) runs once per step, with the
step folder as its id, and is skipped where the step does not declare the
features it checks (`@pytest.mark.features(...)`), as in shared_tests/.
`pytest e2e_tests --step 03` picks steps the same way.
"""

import contextlib

import pytest

from chromium import HOW_TO_INSTALL
from chromium import launch_args
from harness.steps import deselect_replaced
from harness.steps import discover
from harness.steps import first_and_last
from harness.steps import select
from harness.steps import step_of
from harness.steps import step_params
from liveserver import serve


def pytest_addoption(parser):
    parser.addoption(
        "--first-and-last",
        action="store_true",
        help="run each test on the first step that teaches what it checks, and on the last step only",
    )


def pytest_configure(config):
    config.addinivalue_line("markers", "features(*names): the step features this test checks")
    config.addinivalue_line(
        "markers", "replaced_by(*names): features of later steps whose contract replaces this test's"
    )
    try:
        config.e2e_steps = select(discover(), config.getoption("step")) if config.getoption("step") else discover()
    except LookupError as error:
        raise pytest.UsageError(str(error)) from None


def pytest_generate_tests(metafunc):
    """One run per step; a step lacking a feature the test checks is skipped, saying which."""
    if "step" not in metafunc.fixturenames:
        return
    params = step_params(metafunc, metafunc.config.e2e_steps)
    metafunc.parametrize("step", params, scope="session")


def pytest_collection_modifyitems(config, items):
    """With pytest-xdist (`-n 2 --dist loadgroup`), each step's tests go to one worker.

    A worker starts the servers of the steps it meets; so each step is
    served once, whatever the number of workers. A test whose line a later
    step's contract replaces is dropped for that step; with
    `--first-and-last` (as `nox -s e2e` runs), so is every test on the
    steps between the one that first teaches what it checks and the last.
    """
    deselect_replaced(config, items)
    if config.getoption("first_and_last"):
        first_and_last(config, items)
    for item in items:
        step = step_of(item)
        if step is not None:
            item.add_marker(pytest.mark.xdist_group(step.name))


@pytest.fixture(scope="session")
def servers(tmp_path_factory):
    """Each step's live server, started on first use and stopped at the end of the run.

    Kept for the whole run, so that however pytest orders the tests, a step
    is started (and its users created) only once.
    """
    with contextlib.ExitStack() as stack:
        started = {}

        def get(step):
            if step.name not in started:
                started[step.name] = stack.enter_context(serve(step, tmp_path_factory.mktemp(step.name)))
            return started[step.name]

        yield get


@pytest.fixture
def server(step, servers):
    """The step, served by `flask run` in its own process on a free loopback port.

    It runs a copy of the step with a fresh instance folder; alice and bob
    exist (made with `create-user` where the step has a database).
    """
    return servers(step)


@pytest.fixture(autouse=True)
def no_server_errors(request):
    """Fail any test during which its step's server answered 500 or logged a traceback."""
    if "server" not in request.fixturenames:
        yield
        return
    live = request.getfixturevalue("server")
    before = len(live.errors())
    yield
    assert live.errors()[before:] == [], f"the server logged errors; see {live.log}"


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args, browser_type):
    """Launch the system's Chromium, headless; never download one.

    With none installed the run stops at once with one line saying how to
    install one, rather than a traceback in every test.
    """
    args = launch_args(bundled_path=browser_type.executable_path)
    if args is None:
        pytest.exit(HOW_TO_INSTALL, returncode=1)
    # --headed (and other command-line choices) still win.
    return {**args, **browser_type_launch_args}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args):
    """Every page at the viewport the docs' screenshots use."""
    return {**browser_context_args, "viewport": {"width": 800, "height": 600}}


@pytest.fixture(scope="session")
def base_url():
    """None: each step has a server of its own, so tests build URLs with `server.url()`.

    This also stands in for pytest-base-url's fixture of the same name, which
    newer pytest warns about (and this suite turns warnings into errors).
    """
    return None


@pytest.fixture
def new_context(new_context):
    """pytest-playwright's context factory, waiting 10 s rather than 30 for what never comes."""

    def make(**kwargs):
        context = new_context(**kwargs)
        context.set_default_timeout(10_000)
        return context

    return make
