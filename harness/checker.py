"""Check a learner's own app against a step's contract: `pytest --app-path PATH --as-step NN`.

The shared suite runs unchanged; only its subject changes. learner_app()
loads the app in place of the steps (or stops with one plain sentence when
it cannot), and ContractReport prints, at the end, each line of the
contract the app keeps or breaks, with what was expected and what came back.
A test names its line with `@pytest.mark.contract("...")`.
"""

import importlib.util
import os
import re
import shutil
import sys
import tempfile
import traceback
from pathlib import Path

import pytest

from harness.apps import add_users
from harness.apps import close_database
from harness.steps import NOT_COPIED
from harness.steps import Step
from harness.steps import app_entry
from harness.steps import app_factory
from harness.steps import copy_app
from harness.steps import load_module
from harness.steps import replaced_case
from harness.steps import select


class CannotCheck(Exception):
    """Why the learner's app cannot be checked at all, in one sentence."""


# A skip with this reason is a check that cannot judge the learner's app (its
# shape, not its code): the report lists its line as not judged, saying why.
NOT_JUDGED = "not judged for your app: "
FRESH_COPY_BY_NAME = NOT_JUDGED + (
    "it starts a second copy of your app from a new folder, and your package imports itself by its own name, "
    "so that copy would run the first one's modules"
)
FRESH_COPY_FIXED = NOT_JUDGED + (
    "it starts your app again from nothing, set only by FLASK_ variables, and your app is made once, "
    "when it is imported, with settings of its own"
)
LATE_SETTING = NOT_JUDGED + (
    "it gives your app {}, and your app was made when it was imported: settings given later may come too late"
)
SECOND_APP = NOT_JUDGED + (
    "it makes a second app with other settings beside the first, and your module-level app is one app, "
    "made when it is imported"
)
# What the check gives an app that reads its settings from the environment
# when it is imported (`os.environ.get("DATABASE_URL")` in a Config class).
ENVIRONMENT = ("DATABASE_URL", "SQLALCHEMY_DATABASE_URI", "SECRET_KEY")

# The settings every check gives (conftest.test_config) and the values a
# module-level app can take late; any other (a cost of 5, a shorter limit)
# may have been read already when the app was made.
USUAL = {"TESTING": True, "BCRYPT_LOG_ROUNDS": 4}
PER_TEST = ("SECRET_KEY", "SQLALCHEMY_DATABASE_URI", "RATELIMIT_STORAGE_OPTIONS", "SESSION_KEY_PREFIX")

# The test running now, for a factory that must know when a test makes a second app.
CURRENT = {"test": None}


def learner_app(config, steps, modules):
    """The steps to run with `--app-path`: the learner's app, as a Step checked as `--as-step`.

    Its module goes into `modules`. Whatever keeps the app from starting is
    kept, and said in one sentence once collection is over: a conftest that
    pytest loads while collecting cannot end the run any earlier without a
    traceback.
    """
    step = problem = None
    # The copy of the app that is loaded, and the databases it is given.
    folder = Path(tempfile.mkdtemp(prefix="check-your-app-"))
    try:
        step = learner_step(config, steps)
        modules[step.name] = load(step, folder)
        start(step, modules[step.name], folder)
    except (CannotCheck, pytest.UsageError) as error:
        problem = error
    # A deprecation in the learner's code (the tutorials' `User.query.get()`)
    # is a warning to read, not a broken line, as under `flask run`.
    config.addinivalue_line("filterwarnings", "default::DeprecationWarning")
    # The report is the answer: no traceback or summary line per failure,
    # unless asked for on the command line (`--tb=short`, `-ra`).
    asked = [str(arg) for arg in config.invocation_params.args]
    if not any(arg.startswith("--tb") for arg in asked):
        config.option.tbstyle = "no"
    if not any(arg.startswith("-r") for arg in asked):
        config.option.reportchars = "N"
        # This conftest may load after the terminal reporter read the option.
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.reportchars = "w"  # warnings still; no line per failed or skipped test
    config.pluginmanager.register(ContractReport(step, problem, folder), "contract-report")
    return [step] if problem is None else []


def learner_step(config, steps):
    """The Step for the app at --app-path, with the features of the --as-step step."""
    if config.getoption("step"):
        raise pytest.UsageError("--app-path checks one app: name its step with --as-step, not --step")
    wanted = config.getoption("as_step")
    if not wanted:
        raise pytest.UsageError("--app-path needs --as-step NN: the step whose contract your app should keep")
    try:
        [model] = select(steps, [wanted])
    except (LookupError, ValueError) as error:
        raise pytest.UsageError(str(error)) from None
    try:
        path = app_entry(Path(config.invocation_params.dir, config.getoption("app_path")).resolve())
    except LookupError as error:
        stop(f"Cannot check your app: {error}.")
    return Step(
        name=f"your-app-as-{model.number}",
        path=path,
        title=f"your app, checked as step {model.name}",
        features=model.features,
        dependencies=model.dependencies,
        checked_as=model,
        origin=path,
    )


def stop(sentence):
    """Give up on the app, with the sentence to show instead of any test."""
    raise CannotCheck(sentence)


def load(step, folder):
    """Import a copy of the learner's app, or stop and say why not.

    The copy, in `folder`, is what every check runs: a database path fixed
    in the code (`sqlite:///site.db`, or one next to config.py) then points
    into the copy, never at the learner's own file. An app reading its
    database URL from the environment when imported gets one in `folder`.
    A package that imports itself by its own name (`from myblog import
    routes`), as `flask --app myblog` allows, is loaded under that name, with
    the folder it sits in first on sys.path; any other, under a name of the
    check's own, so that it never clashes with the course's steps.
    """
    step.path = copy_of(step.origin, folder)
    if "database" in step.features:
        for name in ENVIRONMENT:
            os.environ[name] = f"sqlite:///{folder / 'from-the-environment.sqlite'}"
        os.environ["SECRET_KEY"] = "only-for-the-check"
    name = step.name
    if step.path.is_dir() and imports_itself_by_name(step.path):
        name = step.path.name
        clash = sys.modules.get(name) or importlib.util.find_spec(name)
        if clash is not None:
            found = getattr(clash, "__file__", None) or getattr(clash, "origin", None) or "the standard library"
            stop(
                f"Your package imports itself as `{name}`, but the check already has a module of that name "
                f"({found}): rename your package's folder, and its imports, to something of your own."
            )
        step.not_judged["fresh-copy"] = FRESH_COPY_BY_NAME
        sys.path.insert(0, str(step.path.parent))
    try:
        return load_module(step.path, name)
    except SyntaxError as error:
        stop(f"Your app could not be imported: {where(error.filename, error.lineno)} has a syntax error ({error.msg}).")
    except (Exception, SystemExit) as error:  # not Ctrl-C: that still stops the run
        stop(f"Your app could not be imported: {raised(error, step)}{hint(error, step)}.")
    finally:
        if name != step.name:  # for the load only: a module the suite imports later must be its own
            sys.path.remove(str(step.path.parent))


def copy_of(path, folder):
    """Copy the app into `folder`: a module with its folder; a package with the .py files beside it.

    Those files (a Mega-Tutorial's config.py, a run.py) are where a package
    importing itself by name finds its neighbours. Databases, instance
    folders and virtualenvs are not copied (harness.steps.NOT_COPIED).
    """
    copy = copy_app(path, folder)
    if path.is_dir():
        for neighbour in path.parent.glob("*.py"):
            if not NOT_COPIED(str(path.parent), [neighbour.name]):
                shutil.copy2(neighbour, folder / neighbour.name)
    return copy


def imports_itself_by_name(package):
    """Whether a module of the package imports it by its folder's name: `from myblog import db`."""
    name = re.escape(package.name)
    by_name = re.compile(rf"^\s*(from\s+{name}(\.\w+)*\s+import|import\s+{name}\b)", re.MULTILINE)
    return any(by_name.search(path.read_text(encoding="utf-8", errors="replace")) for path in package.rglob("*.py"))


def hint(error, step):
    """What to do about a module that was not found, if that is the error."""
    if not isinstance(error, ModuleNotFoundError):
        return ""
    return "; install it (`nox -s check` installs what the step declares, and your requirements.txt)"


def start(step, module, folder):
    """Make the app once, as the tests will; stop with one sentence if it cannot start."""
    try:
        factory = app_factory(module)
    except AttributeError as error:
        stop(f"Cannot check your app: {error}.")
    # An app that takes its settings only after it is made keeps the database
    # it opened when made: each check's own database is put in that file's place.
    fixed = getattr(factory, "late_config", False) and "database" in step.features
    if fixed:
        step.factory = factory = on_the_given_database(factory, folder)
        step.not_judged["fresh-copy"] = step.not_judged.get("fresh-copy", FRESH_COPY_FIXED)
    with tempfile.TemporaryDirectory(prefix="start-", dir=folder) as started:
        database = Path(started, "start.sqlite")
        settings = {
            "SECRET_KEY": "only-for-the-check",
            "SQLALCHEMY_DATABASE_URI": f"sqlite:///{database}",
            **USUAL,
        }
        try:
            app = factory(settings)
        except (Exception, SystemExit) as error:
            stop(f"Your app crashed while starting: {raised(error, step)}{hint(error, step)}.")
        if not hasattr(app, "test_client"):
            stop(f"Cannot check your app: its factory returned {type(app).__name__}, not a Flask app.")
        if "database" not in step.features:
            return
        if "sqlalchemy" in app.extensions and not fixed:
            try:
                with app.app_context():
                    used = app.extensions["sqlalchemy"].engine.url.database
            except Exception:  # not Flask-SQLAlchemy as we know it: the tests will tell
                used = str(database)
            if used is None or Path(used).resolve() != database.resolve():
                stop(
                    "Your app did not use the database the check gave it (SQLALCHEMY_DATABASE_URI in "
                    "test_config): apply test_config before db.init_app(app), or the check would write into your data."
                )
        try:
            add_users(app, step)
        except AssertionError as error:
            # The command's output, then pytest's "assert 1 == 0": its last line says most.
            output = str(error).split("\nassert ")[0].strip().splitlines()
            said = output[-1].strip() if output else "no output"
            stop(f"Your app started, but `flask create-user alice` failed ({said}); the checks need it to make users.")
        except Exception as error:
            stop(f"Your app started, but `flask create-user alice` crashed: {raised(error, step)}.")
        finally:
            close_database(app)


def on_the_given_database(factory, folder):
    """A factory for an app whose database is fixed when it is made: each check's database goes in its place.

    Such an app (a module-level `app`, or a `create_app()` taking no
    settings) opens the file its code names whatever test_config says. Made
    from the copy in `folder`, that file is in the copy. Before each use it
    becomes a link to the database the check gave: the test's own, empty or
    seeded, as for any app. The tables are made as the tutorials have you
    make them once (`db.create_all()`). A test that asks for a second app with
    other settings is not judged: this app cannot be two.
    """
    last = {}
    hashers = []

    def create_app(test_config=None):
        settings = dict(test_config or {})
        others = {key: value for key, value in settings.items() if key != "SQLALCHEMY_DATABASE_URI"}
        late = [f"{key}={value!r}" for key, value in others.items() if key not in PER_TEST and USUAL.get(key) != value]
        if late:
            pytest.skip(LATE_SETTING.format(", ".join(late)))
        if CURRENT["test"] is not None and last.get("test") == CURRENT["test"] and last["others"] != others:
            pytest.skip(SECOND_APP)
        last.update(test=CURRENT["test"], others=others)
        app = factory(settings)
        # For speed only: flask-bcrypt reads BCRYPT_LOG_ROUNDS in init_app, so a
        # Bcrypt made at import would hash at cost 12 in every check. Its
        # init_app again takes the check's cost (4), as a factory app would.
        hashers[:] = hashers or bcrypt_extensions(folder)
        for hasher in hashers:
            hasher.init_app(app)
        if "sqlalchemy" not in app.extensions:
            stop(
                "Your app opens its database when it is made, and not through Flask-SQLAlchemy: give it a "
                "create_app(test_config=None) factory, so that every check gets a fresh database."
            )
        given = Path(settings["SQLALCHEMY_DATABASE_URI"].removeprefix("sqlite:///"))
        db = app.extensions["sqlalchemy"]
        with app.app_context():
            for engine in db.engines.values():
                engine.dispose()
            url = db.engine.url
            # Not resolved: after the first use the file is a link to some test's database.
            opened = Path(os.path.abspath(url.database or "")) if url.get_backend_name() == "sqlite" else None
            if opened is None or not opened.is_relative_to(folder):
                stop(
                    f"Your app opens the database {url.render_as_string()} when it is imported, outside the copy "
                    "the check made, and the check would write into it: read its URL from DATABASE_URL, or make "
                    "the app in a create_app(test_config=None) factory."
                )
            opened.parent.mkdir(parents=True, exist_ok=True)
            opened.unlink(missing_ok=True)
            opened.symlink_to(given)
            db.create_all()
        return app

    return create_app


def bcrypt_extensions(folder):
    """The flask_bcrypt.Bcrypt objects that the modules loaded from `folder` made."""
    modules = [
        m for m in list(sys.modules.values()) if Path(getattr(m, "__file__", None) or "/").is_relative_to(folder)
    ]
    found = {id(value): value for module in modules for value in vars(module).values()}.values()
    return [value for value in found if type(value).__module__ == "flask_bcrypt" and type(value).__name__ == "Bcrypt"]


def where(filename, lineno):
    return f"{Path(filename or '?').name}, line {lineno}"


def raised(error, step):
    """`NameError: name 'x' is not defined (views.py, line 3)`: the error, and the learner's line it came from."""
    folder = step.path if step.path.is_dir() else step.path.parent
    frames = [f for f in traceback.extract_tb(error.__traceback__) if Path(f.filename).is_relative_to(folder)]
    place = f" ({where(frames[-1].filename, frames[-1].lineno)})" if frames else ""
    message = str(error).strip().splitlines()[0] if str(error).strip() else ""
    if isinstance(error, SyntaxError):  # its place is the bad line, not the import that found it
        place, message = f" ({where(error.filename, error.lineno)})", error.msg
    return f"{type(error).__name__}{': ' + message if message else ''}{place}"


# What a test's report carries for the contract report: (its place, its line, its outcome).
RESULT = "contract-result"


class ContractReport:
    """Collects each test's outcome under its contract line; prints them at the end."""

    def __init__(self, step, problem=None, folder=None):
        self.step = step
        self.problem = problem
        self.folder = folder  # the copy of the app, removed at the end
        self.lines = {}  # contract line -> [(place, (test id, outcome, message, checked source))]
        self.places = {}  # test node id -> its place among the tests kept

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item):
        CURRENT["test"] = item.nodeid

    def pytest_unconfigure(self, config):
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)

    @pytest.hookimpl(tryfirst=True)
    def pytest_collection_modifyitems(self, config, items):
        """Keep exactly the tests of the step's features; the others are not this step's contract."""
        if isinstance(self.problem, pytest.UsageError):
            raise self.problem
        keep, drop = [], []
        for item in items:
            callspec = getattr(item, "callspec", None)
            needed = [name for marker in item.iter_markers("features") for name in marker.args]
            ours = self.problem is None and callspec is not None and callspec.params.get("step") is self.step
            ours = ours and not replaced_case(item)
            (keep if ours and not self.step.missing(needed) else drop).append(item)
        if drop:
            config.hook.pytest_deselected(items=drop)
            items[:] = keep
        # Each test's place, for the report's order: the same in every worker.
        self.places = {item.nodeid: place for place, item in enumerate(keep)}

    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_makereport(self, item, call):
        """Note the outcome on the report, under its line, with what went wrong.

        On the report itself: with pytest-xdist (`-n 2`) this runs in a
        worker, and only what a report carries reaches the process that
        prints (pytest_runtest_logreport, there and here alike).
        """
        report = yield
        if report.when == "call" or report.outcome != "passed":
            message, checked = explain(call.excinfo, self.step) if report.failed else ("", "")
            if report.skipped and isinstance(report.longrepr, tuple):
                message = str(report.longrepr[2]).removeprefix("Skipped: ")
            if report.failed and report.when != "call":
                stage = "start" if report.when == "setup" else "clean up"
                message = f"the check could not {stage}: {message}"
            result = (self.short_id(item), report.outcome, message, checked)
            report.user_properties.append((RESULT, (self.places[item.nodeid], contract_line(item), result)))
        return report

    def pytest_runtest_logreport(self, report):
        for name, value in report.user_properties:
            if name == RESULT:
                order, line, result = value
                self.lines.setdefault(line, []).append((order, result))

    def short_id(self, item):
        """The test's name and case, without the step's id that every case shares."""
        params = item.name.partition("[")[2].rstrip("]").replace(self.step.name, "").strip("-").replace("--", "-")
        return f"{item.originalname}[{params}]" if params else item.originalname

    def pytest_sessionfinish(self, session):
        if self.problem is not None:
            session.exitstatus = pytest.ExitCode.USAGE_ERROR

    def pytest_terminal_summary(self, terminalreporter):
        if self.problem is not None:
            terminalreporter.write_sep("=", "your app could not be checked")
            terminalreporter.write_line(str(self.problem), red=True, bold=True)
            return
        write = terminalreporter.write_line
        model = self.step.checked_as
        terminalreporter.write_sep("=", f"your app, checked as step {model.number}: {model.title}")
        write(f"app: {self.step.origin}")
        write("")
        kept = broken = unjudged = 0
        # In the order of the tests, however the workers finished them.
        ordered = sorted(self.lines.items(), key=lambda entry: min(order for order, _ in entry[1]))
        for line, results in ((line, [result for _, result in sorted(found)]) for line, found in ordered):
            failed = [r for r in results if r[1] == "failed"]
            not_judged = [r for r in results if r[1] == "skipped" and r[2].startswith(NOT_JUDGED)]
            if failed:
                broken += 1
                write(f"BROKEN  {line}", red=True, bold=True)
                for test, _, message, checked in failed[:3]:
                    write(f"          {test}: {message}")
                    if checked:
                        write(f"            checked: {checked}")
                if len(failed) > 3:
                    write(f"          ... and {len(failed) - 3} more checks of this line")
            elif not_judged:
                unjudged += 1
                write(f"NOT JUDGED  {line}", yellow=True, bold=True)
                tests = ", ".join(dict.fromkeys(r[0].partition("[")[0] for r in not_judged))
                write(f"          {tests}: {not_judged[0][2].removeprefix(NOT_JUDGED)}")
                passed = sum(r[1] == "passed" for r in results)
                if passed:
                    write(f"          (its other {passed} checks passed)")
            elif any(r[1] == "passed" for r in results):
                kept += 1
                write(f"kept    {line}", green=True)
        write("")
        total = kept + broken
        if broken:
            write(f"Your app breaks {broken} of the {total} contract lines checked for step {model.number}.", red=True)
        elif total:
            write(f"Your app keeps all {total} contract lines checked for step {model.number}.", green=True)
        elif not unjudged:
            write("Nothing was checked.")
        if unjudged:
            write(f"{unjudged} more could not be judged for an app of this shape (NOT JUDGED above).", yellow=True)


def contract_line(item):
    """The contract line a test checks: its marker; else its docstring, else its name in words."""
    marker = item.get_closest_marker("contract")
    if marker:
        return marker.args[0]
    doc = (getattr(item, "function", None) and item.function.__doc__ or "").strip()
    return doc.splitlines()[0] if doc else item.originalname.removeprefix("test_").replace("_", " ")


def explain(excinfo, step):
    """What a failed check expected and what came back, in a line; and the check's source, if it helps."""
    if excinfo is None:
        return "failed", ""
    error = excinfo.value
    if isinstance(error, AssertionError):
        said = str(error).strip().splitlines()
        # A message the test wrote in words says it best; a bare value (`assert x, x`) does not.
        if said and not said[0].startswith("assert ") and len(re.findall(r"[A-Za-z]{2,}", said[0])) >= 2:
            return shorten(said[0], 160), ""
        comparison = next((line for line in said if line.startswith("assert ")), None)
        if comparison:
            return compare(comparison), failing_statement(excinfo)
        return shorten(said[0] if said else "the check failed", 160), failing_statement(excinfo)
    if isinstance(error, KeyError) and error.args == ("Location",):
        return "expected a redirect, got no Location header", failing_statement(excinfo)
    if raised_by_app(excinfo, step):
        return f"your app raised {raised(error, step)}", ""
    return shorten(f"{type(error).__name__}: {error}", 160), failing_statement(excinfo)


def raised_by_app(excinfo, step):
    folder = step.path if step.path.is_dir() else step.path.parent
    return any(Path(str(entry.path)).is_relative_to(folder) for entry in excinfo.traceback)


def failing_statement(excinfo):
    """The source of the assertion that failed, on one line."""
    try:
        return shorten(str(excinfo.traceback[-1].statement), 160).removeprefix("assert ")
    except Exception:  # no source to show: the message alone must do
        return ""


# Comparisons as pytest's assertion messages spell them, widest first.
OPERATORS = [" not in ", " == ", " != ", " <= ", " >= ", " in ", " < ", " > "]


def compare(first_line, width=160):
    """`assert 200 == 405` -> `expected 405, got 200`."""
    expression = first_line.removeprefix("assert ")
    for operator, left, right in split_comparison(expression):
        left, right = shorten(left, 70), shorten(right, 70)
        if operator == "==":
            return f"expected {right}, got {left}"
        if operator == "!=":
            return f"expected anything but {right}"
        if operator == "in" and re.fullmatch(r"[(\[{].*[)\]}]", right):
            return f"expected one of {right}, got {left}"
        if operator == "in":
            return f"expected {left} in what came back: {right}"
        if operator == "not in":
            return f"expected no {left} in what came back: {right}"
        return f"expected {left} {operator} {right}"
    if expression.startswith("not "):
        return f"expected false, got {shorten(expression.removeprefix('not '), width)}"
    return f"expected true or something not empty, got {shorten(expression, width)}"


def split_comparison(expression):
    """The top-level comparison in `expression`: (operator, left, right), outside quotes and brackets."""
    depth, quote, i = 0, None, 0
    while i < len(expression):
        char = expression[i]
        if quote:
            if char == "\\":
                i += 1
            elif char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        elif depth == 0:
            for operator in OPERATORS:
                if expression.startswith(operator, i):
                    yield operator.strip(), expression[:i], expression[i + len(operator) :]
                    return
        i += 1


def shorten(value, width):
    value = " ".join(value.split())
    return value if len(value) <= width else value[: width - 3] + "..."
