"""Find the steps, read what each declares, and load each one in isolation.

Used by conftest.py and the noxfile; it needs nothing outside the standard
library (and tomli on Python 3.10).
"""

import importlib.util
import inspect
import shutil
import sys
import weakref
from dataclasses import dataclass
from dataclasses import field
from pathlib import Path

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent.parent
STEPS_DIR = ROOT / "steps"


@dataclass
class Step:
    """One step: its folder, and what its step.toml declares."""

    name: str
    path: Path
    title: str = ""
    features: frozenset = field(default_factory=frozenset)
    dependencies: tuple = ()
    # For a learner's own app (`pytest --app-path`): the step it is checked as,
    # the path the learner gave (`path` is then the copy that is loaded), the
    # factory the tests call if not the module's own, and the kinds of check
    # that cannot judge this app, each with the reason (harness/checker.py).
    checked_as: "Step | None" = None
    origin: "Path | None" = None
    factory: "object | None" = None
    not_judged: dict = field(default_factory=dict)

    @classmethod
    def from_dir(cls, path):
        meta = tomllib.loads((path / "step.toml").read_text(encoding="utf-8"))
        return cls(
            name=path.name,
            path=path,
            title=meta["title"],
            features=frozenset(meta["features"]),
            dependencies=tuple(meta.get("dependencies", ())),
        )

    @property
    def number(self):
        return self.name.split("_", 1)[0]

    def missing(self, features):
        """The features, of those given, that this step does not have."""
        return sorted(set(features) - self.features)


def step_params(metafunc, steps):
    """One pytest param per step; a step lacking a feature the test checks is skipped, saying which.

    The features come from the test's `features` marks. A skip therefore
    always means "this step does not teach that yet", never anything else.
    A test (or one case) marked `replaced_by(feature)` is deselected for the
    steps with that feature (`deselect_replaced`): their contract says
    otherwise, in a test of its own.
    """
    import pytest

    needed = [name for marker in metafunc.definition.iter_markers("features") for name in marker.args]
    params = []
    for step in steps:
        missing = step.missing(needed)
        marks = [pytest.mark.skip(reason=f"{step.name} does not teach {', '.join(missing)} yet")] if missing else []
        params.append(pytest.param(step, id=step.name, marks=marks))
    return params


def step_of(item):
    """The Step a collected test runs for, or None for a test without one."""
    step = getattr(item, "callspec", None) and item.callspec.params.get("step")
    return step if isinstance(step, Step) else None


def replaced_case(item):
    """Whether a later step's contract replaces this collected test for the step it runs for.

    A line a later step rewrites (step 09's sign-up no longer logs in) is
    marked `replaced_by(feature)`, on the test function or on one case,
    `pytest.param(..., marks=pytest.mark.replaced_by(feature))`: the item
    carries both.
    """
    step = step_of(item)
    if step is None:
        return False
    return any(not step.missing(marker.args) for marker in item.iter_markers("replaced_by"))


def deselect_replaced(config, items):
    """Drop the tests (and cases) that the step's own contract replaces (`replaced_case`): not a skip, nothing is missing."""
    replaced = [item for item in items if replaced_case(item)]
    if replaced:
        config.hook.pytest_deselected(items=replaced)
        dropped = {id(item) for item in replaced}
        items[:] = [item for item in items if id(item) not in dropped]


def first_and_last(config, items):
    """Keep each test for the first step that teaches all it checks, and for the last step it runs on; deselect the rest.

    The browser tests' selection in `nox -s e2e`: the shared suite checks
    every step's contract over HTTP, so a real browser goes once where a
    lesson first shows, and once more on the last step it applies to,
    which carries every lesson before it. Run after `deselect_replaced`.
    """

    def key(item, step):  # the test and its other parameters, whatever the step
        return item.nodeid.replace(f"[{step.name}", "[")

    runs = {}  # each test (and case) -> the names of the steps it is collected for, in order
    for item in items:
        step = step_of(item)
        if step is not None:
            needed = [name for marker in item.iter_markers("features") for name in marker.args]
            if not step.missing(needed):  # a step that does not teach it yet is a skip: dropped too
                runs.setdefault(key(item, step), []).append(step.name)
    chosen = {test: {names[0], names[-1]} for test, names in runs.items()}
    kept, dropped = [], []
    for item in items:
        step = step_of(item)
        keep = step is None or step.name in chosen.get(key(item, step), ())
        (kept if keep else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = kept


def discover(steps_dir=STEPS_DIR):
    """Every step folder (one holding a step.toml), in order."""
    return [Step.from_dir(p.parent) for p in sorted(steps_dir.glob("*/step.toml"))]


def select(steps, wanted):
    """The steps named by `wanted`: full folder names or their numbers."""
    chosen = []
    for want in wanted:
        found = [s for s in steps if want in (s.name, s.number, s.number.lstrip("0"))]
        if not found:
            names = ", ".join(s.name for s in steps)
            raise LookupError(f"no step {want!r}; the steps are: {names}")
        chosen += found
    return chosen


# Where `flask run` looks for an app in a folder when --app names none.
APP_FILES = ("app.py", "wsgi.py")

# Left out of a copy: generated state (a copy starts with none) and tools' folders.
NOT_COPIED = shutil.ignore_patterns("instance", "__pycache__", ".*", "venv", "node_modules", "*.db", "*.sqlite*")


def app_entry(path):
    """The package folder or .py file that `path` names, read the way `flask --app` reads it.

    A package folder (with __init__.py) or a .py file is itself the app; a
    plain folder stands for the app.py or wsgi.py inside it.
    """
    path = Path(path)
    if path.is_dir() and not (path / "__init__.py").is_file():
        for name in APP_FILES:
            if (path / name).is_file():
                return path / name
        raise LookupError(f"{path} is neither a package (it has no __init__.py) nor a folder holding app.py or wsgi.py")
    if path.is_dir() or (path.is_file() and path.suffix == ".py"):
        return path
    if not path.exists():
        raise LookupError(f"there is no file or folder at {path}")
    raise LookupError(f"{path} is neither a .py file nor a package folder")


def copy_app(path, folder, name=None):
    """Copy the app at `path` (a package, or a module with its folder) into `folder`.

    Returns the copy's path, to give to load_module(). A module is copied with
    the folder it sits in, since its templates and neighbour modules live there.
    The copied folder keeps its name, or takes `name`.
    """
    path = Path(path)
    source = path if path.is_dir() else path.parent
    target = Path(folder) / (name or source.name)
    if not target.exists():
        shutil.copytree(source, target, ignore=NOT_COPIED)
    return target if path.is_dir() else target / path.name


def requirements_near(path):
    """The requirements.txt files that go with the app at `path`: beside it, or in its package."""
    path = Path(path)
    places = [path, path.parent] if path.is_dir() else [path.parent]
    return [place / "requirements.txt" for place in places if (place / "requirements.txt").is_file()]


def load_module(path, module_name):
    """Import the package (a folder) or module (a .py file) at `path`.

    It is loaded under `module_name`, so that two steps' `models` or `views`
    modules never share a name in sys.modules: step 01's are
    `01_sessions.models`, step 02's `02_login_required.models`.
    """
    path = Path(path)
    if path.is_dir():
        spec = importlib.util.spec_from_file_location(
            module_name, path / "__init__.py", submodule_search_locations=[str(path)]
        )
    else:
        spec = importlib.util.spec_from_file_location(module_name, path)
        # A lone module may import its neighbours (`import models`), as it can
        # under `flask --app app.py`. Appended, so the suite's modules still win.
        if str(path.parent) not in sys.path:
            sys.path.append(str(path.parent))
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


# A module-level app's settings as imported, before any test changed them.
_IMPORTED_CONFIG = weakref.WeakKeyDictionary()


def app_factory(module):
    """The module's `create_app`, or a factory returning its module-level `app`.

    Flask's own names are accepted too (`make_app`, `application`). A factory
    that takes no test_config, or a module-level app, gets the test settings
    only after the app is made: the returned factory's `late_config` says so.
    """
    for name in ("create_app", "make_app"):
        factory = getattr(module, name, None)
        if callable(factory):
            if inspect.signature(factory).parameters:
                return factory

            def configured_after(test_config=None, factory=factory):
                app = factory()
                app.config.update(test_config or {})
                return app

            configured_after.late_config = True
            return configured_after

    app = next((getattr(module, name) for name in ("app", "application") if hasattr(module, name)), None)
    if app is not None:
        # One app for every test: each starts from the settings it had when imported.
        imported = _IMPORTED_CONFIG.setdefault(app, dict(app.config))

        def existing_app(test_config=None):
            app.config.clear()
            app.config.update(imported)
            app.config.update(test_config or {})
            return app

        existing_app.late_config = True
        return existing_app
    where = getattr(module, "__file__", None) or module.__name__
    raise AttributeError(f"{where} has neither a create_app() factory nor a module-level app")
