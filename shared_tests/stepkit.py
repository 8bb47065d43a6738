"""Find the steps, read what each declares, and load each one in isolation.

Used by conftest.py and the noxfile; it needs nothing outside the standard
library (and tomli on Python 3.10).
"""

import importlib.util
import sys
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
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        del sys.modules[module_name]
        raise
    return module


def app_factory(module):
    """The module's `create_app`, or a factory returning its module-level `app`."""
    if hasattr(module, "create_app"):
        return module.create_app

    if hasattr(module, "app"):

        def existing_app(test_config=None):
            module.app.config.update(test_config or {})
            return module.app

        return existing_app
    raise AttributeError(f"{module.__name__} has neither create_app() nor app")
