"""The checker itself (`pytest --app-path`), run as a learner runs it, on copies of the steps.

Each check is a fresh pytest process on a copy made in tmp_path: an
unchanged copy must keep its step's whole contract; a copy with one
deliberate break must fail with a report that names the broken line; an
app that cannot start must get one sentence, not a traceback.
"""

import re
import shutil
import sys
from pathlib import Path

import pytest

from harness import launcher
from harness.services import environment_without
from harness.steps import app_entry
from harness.steps import copy_app
from harness.steps import discover
from harness.steps import requirements_near
from harness.suite import read_suite

ROOT = Path(__file__).resolve().parent.parent

STEPS = {step.number: step for step in discover()}
BY_FEATURE = {
    feature: [n for n, s in STEPS.items() if feature in s.features] for s in STEPS.values() for feature in s.features
}


def check(app, as_step, *args):
    """Check `app` as step `as_step` in a new process, as `nox -s check` does; return (exit code, output)."""
    env = environment_without("FLASK_", "PYTEST_")
    command = [sys.executable, "-m", "pytest", f"--app-path={app}", "--as-step", as_step, "-p", "no:cacheprovider"]
    result = launcher.run(command + list(args), cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    return result.returncode, result.stdout + result.stderr


def learner_copy(number, tmp_path):
    """A copy of step `number` in a folder with a name of the learner's own."""
    folder = tmp_path / "my_login_app"
    shutil.copytree(STEPS[number].path, folder, ignore=shutil.ignore_patterns("instance", "__pycache__"))
    return folder


def edit(path, old, new):
    """Replace `old` by `new` in the file; `old` must be there, or the break would test nothing."""
    source = path.read_text(encoding="utf-8")
    assert old in source, f"{path.name} no longer holds {old!r}: update this break"
    path.write_text(source.replace(old, new), encoding="utf-8")


def broken_lines(output):
    return re.findall(r"^BROKEN  (.+)$", output, re.MULTILINE)


# The checker is tried on the first step and the first with a database, each
# with its whole suite, and on the last with one case of one test of each of
# its lines, two at a time (pytest-xdist, as a learner may ask with `-n 2`,
# and as nox runs the steps): the ways a learner's app is loaded and
# reported. Every step's own suite already runs whole in `nox -s tests`;
# the last one's, through the checker too, would be a tenth of the whole
# matrix again.
FIRST_STEPS = list(dict.fromkeys([next(iter(STEPS)), BY_FEATURE["database"][0]]))
LAST_STEP = list(STEPS)[-1]


@pytest.mark.parametrize("number", [*FIRST_STEPS, LAST_STEP])
def test_a_copy_of_a_step_keeps_its_contract(tmp_path, number):
    app = learner_copy(number, tmp_path)
    options = () if number in FIRST_STEPS else ("-n", "2", "-k", first_cases(app, number, one_test_per_line(number)))
    code, output = check(app, number, *options)
    assert code == 0, output
    assert broken_lines(output) == []
    kept = re.findall(r"^kept    (.+)$", output, re.MULTILINE)
    # Every line the step has, each once.
    assert len(kept) == len(set(kept)) == len(line_tests(number)), output
    assert f"Your app keeps all {len(kept)} contract lines checked for step {number}." in output


@pytest.mark.parametrize(
    "ending",
    ["\n\napp = _make_app()\n", "\n\ndef create_app():\n    return _make_app()\n"],
    ids=["module-level-app", "factory-without-arguments"],
)
def test_a_single_module_app_is_checked_too(tmp_path, ending):
    """A flat app.py beside its templates and modules, as many tutorials have it."""
    step = STEPS["01"]
    folder = tmp_path / "flat"
    shutil.copytree(step.path / "templates", folder / "templates")
    for name in ("models.py", "views.py"):
        (folder / name).write_text((step.path / name).read_text().replace("from .models", "from models"))
    package = (step.path / "__init__.py").read_text()
    (folder / "app.py").write_text(
        package.replace("from . import views", "import views").replace("def create_app(", "def _make_app(") + ending
    )
    code, output = check(folder / "app.py", "01")
    assert code == 0, output
    assert "Your app keeps all" in output


# (id, step numbers, file, [(old, new)], the contract line the report must name, words of its explanation)
BREAKS = [
    (
        "get-logout-accepted",
        BY_FEATURE["logout"],
        "views.py",
        [('@bp.route("/logout", methods=("POST",))', '@bp.route("/logout", methods=("GET", "POST"))')],
        "GET /logout (and /logout-everywhere) answers 405: logging out is by POST only",
        "expected 405, got 302",
    ),
    (
        "flash-shown-twice",
        BY_FEATURE["flash"],
        "views.py",
        [('    flash("You have been logged out.", "info")\n', '    flash("You have been logged out.", "info")\n' * 2)],
        "Flash messages appear on the next page rendered, once",
        "expected 1, got 2",
    ),
    (
        "next-followed-to-another-host",
        BY_FEATURE["safe-next"],
        "views.py",
        [("next_page if is_safe_next(next_page) else", "next_page or")],
        "next pointing anywhere else (another host or scheme, slash and control-character tricks) falls back to /profile",
        "expected '/profile', got 'https://evil.example'",
    ),
    (
        "profile-raises",
        ["01"],
        "views.py",
        [('    return render_template("profile.html")', '    return render_template("profile.html", user=g.nobody)')],
        "GET /profile when logged in: 200, shows the username and the numeric user id",
        "your app raised AttributeError: nobody (views.py, line 57)",
    ),
    (
        "login-keeps-the-session-id",
        BY_FEATURE.get("server-sessions", []),
        "views.py",
        [
            (
                "            # After login_user wrote to it: a new id for the logged-in session.\n            new_session_id()\n",
                "",
            )
        ],
        "Logging in issues a new session id; the id from before the login is dead",
        "expected anything but",
    ),
    (
        "password-in-plain-text",
        BY_FEATURE["password-hash"],
        "models.py",
        [
            ("self.password_hash = bcrypt.generate_password_hash(password).decode()", "self.password_hash = password"),
            ("return bcrypt.check_password_hash(password_hash, password)", "return password_hash == password"),
        ],
        "Users live in the database with a bcrypt hash of their password, never the password itself",
        "expected false, got True",
    ),
    (
        "successful-logins-counted",
        BY_FEATURE["rate-limits"],
        "views.py",
        [("    if request.endpoint in FAILURES_ONLY and not failed_login(response):", "    if False:")],
        "A successful login does not count towards the limit",
        'checked: logged_in(auth.login("alice"))',
    ),
    (
        "empty-username-key",
        BY_FEATURE["rate-limits"],
        "views.py",
        [('return "username:" + request.form.get("username", "")', 'return request.form.get("username", "")')],
        "A missing, garbled or huge username still counts towards a limit, and never causes a 500",
        "expected [200, 200, 200, 429], got [200, 200, 200, 200]",
    ),
    (
        "reset-link-works-twice",
        BY_FEATURE.get("password-reset", []),
        "models.py",
        [
            (
                'if user is None or not hmac.compare_digest(user.password_fingerprint(), data["password"]):',
                "if user is None:",
            )
        ],
        "A used reset link redirects to /reset-password flashing 'That reset link is invalid or has expired.'",
        "checked: refused(thief, link)",
    ),
    (
        "reset-link-to-any-host",
        BY_FEATURE.get("password-reset", []),
        "config.py",
        [('TRUSTED_HOSTS = ["127.0.0.1", "localhost"]', "TRUSTED_HOSTS = None")],
        "A request's untrusted Host header never yields a reset link to that host (a 400, or a trusted host)",
        "http://evil.example/reset-password/",
    ),
    (
        "half-way-logged-in",
        BY_FEATURE.get("two-factor", []),
        "two_factor.py",
        [
            (
                '    session["two_factor_user"] = user.get_id()\n',
                '    session["two_factor_user"] = user.get_id()\n    login_user(user)\n',
            )
        ],
        "Between the password and the code every page treats the visitor as anonymous: private pages send them to "
        "/login, the home page shows no username, /login shows its form (step 10+)",
        "expected one of (302, 303), got 200",
    ),
    (
        "passkey-from-any-origin",
        BY_FEATURE.get("passkeys", []),
        "passkeys.py",
        [
            (
                "            expected_origin=origin,\n            credential_public_key",
                '            expected_origin=[origin, "http://localhost:8000"],\n            credential_public_key',
            )
        ],
        "A sign-in answer is refused (4xx) and logs no one in when it is replayed, altered, signed for another origin "
        "or relying party id, made without user verification, by an unknown passkey, with a sign counter that did not "
        "go up, for another session's challenge, for a challenge already answered once, after the challenge expired, "
        "naming another user handle, or without the CSRF token (step 11+)",
        "test_a_bad_sign_in_is_refused[other origin]: expected 400 <= 200",
    ),
    (
        "provider-links-by-address",
        BY_FEATURE.get("openid-connect", []),
        "oidc.py",
        [
            (
                "    if find_user_by_email(email) is not None:\n",
                "    if find_user_by_email(email) is not None:\n        return log_in(find_user_by_email(email))\n",
            )
        ],
        "A provider account whose address an account here already uses links nothing and logs no one in: the user "
        "is told to log in with the password and link the provider from the profile (step 12+)",
        "test_an_address_in_use_links_nothing: expected '/login', got '/profile'",
    ),
    (
        "disabling-keeps-the-sessions",
        BY_FEATURE.get("admin-area", []),
        "models.py",
        [(".values(disabled_at=now(), session_version=User.session_version + 1)", ".values(disabled_at=now())")],
        "POST /admin/users/<id>/disable ends every session of that account at once, remembered ones and copies "
        "included, and stops it logging in: after the right password it is told This account is disabled., after a "
        "wrong one the usual message; enable lets it log in again, but no old session comes back (step 13+)",
        "checked: is_anonymous(client)",
    ),
    (
        "sessions-list-keeps-ended-ones",
        BY_FEATURE.get("device-sessions", []),
        "sessions.py",
        [("d.sid in alive and d.version == version and", "d.sid in alive and")],
        "The list stays exactly the live sessions however one ends: logout, a new id at re-authentication, log out "
        "everywhere, a new password, a reset, an admin, and expiry (step 14)",
        "test_the_list_stays_true_however_sessions_end: expected ['Firefox'], got ['Firefox', 'Firefox']",
    ),
]
# Each break is tried on the first step that can have it: each try is a
# whole suite, and the checker reports alike on the later steps (the last
# step is checked whole, unbroken, above).
CASES = [
    pytest.param(numbers[0], file, edits, line, words, id=f"{name}-{numbers[0]}")
    for name, numbers, file, edits, line, words in BREAKS
    if numbers
]


SUITE = sorted((ROOT / "shared_tests").glob("test_*.py"))


def marked_with(line):
    """The names of the shared tests marked `@pytest.mark.contract(line)`."""
    return [name for name, test in read_suite(SUITE, "contract").items() if test.values == (line,)]


@pytest.mark.parametrize(("number", "file", "edits", "line", "words"), CASES)
def test_a_copy_with_one_break_fails_naming_the_line(tmp_path, number, file, edits, line, words):
    app = learner_copy(number, tmp_path)
    for old, new in edits:
        edit(app / file, old, new)
    # Only the tests of the broken line, as a learner narrows a check with -k:
    # the whole checks above already show that an unbroken copy keeps the rest.
    names = marked_with(line)
    assert names, f"no shared test is marked with the contract line {line!r}: update this break"
    code, output = check(app, number, "-k", " or ".join(names))
    assert code == 1, output
    assert line in broken_lines(output), output
    report = output[output.index(f"BROKEN  {line}") :]
    assert words in report.split("\nBROKEN  ")[0], output
    assert "Traceback" not in output
    assert f"Your app breaks {len(broken_lines(output))} of the" in output


def write_module(tmp_path, source):
    path = tmp_path / "app.py"
    path.write_text(source)
    return path


# (id, how to make the app, the start of the one sentence the learner gets)
UNSTARTABLE = [
    ("nothing-there", lambda tmp: tmp / "no-such-app", "Cannot check your app: there is no file or folder at"),
    (
        "not-a-package",
        lambda tmp: (tmp / "empty").mkdir() or tmp / "empty",
        "Cannot check your app:",
    ),
    (
        "syntax-error",
        lambda tmp: write_module(tmp, "from flask import Flask\napp = Flask(__name__\n"),
        "Your app could not be imported: app.py, line 2 has a syntax error",
    ),
    (
        "missing-package",
        lambda tmp: write_module(tmp, "import flask_no_such_extension\n"),
        "Your app could not be imported: ModuleNotFoundError: No module named 'flask_no_such_extension' (app.py, line 1)",
    ),
    (
        "no-factory",
        lambda tmp: write_module(tmp, "from flask import Flask\n"),
        "Cannot check your app:",
    ),
    (
        "crash-at-start",
        lambda tmp: write_module(
            tmp, "def create_app(test_config=None):\n    raise RuntimeError('the disk is full')\n"
        ),
        "Your app crashed while starting: RuntimeError: the disk is full (app.py, line 2)",
    ),
    (
        "not-a-flask-app",
        lambda tmp: write_module(tmp, "def create_app(test_config=None):\n    return 'hello'\n"),
        "Cannot check your app: its factory returned str, not a Flask app.",
    ),
]


def without_create_user(tmp):
    app = learner_copy("03", tmp)
    edit(app / "commands.py", '@click.command("create-user")', '@click.command("make-account")')
    return app


def importing_itself_by_a_taken_name(tmp):
    """A package called `harness` (the checker's own) that imports itself by that name."""
    app = shutil.copytree(learner_copy("03", tmp), tmp / "harness")
    edit(app / "__init__.py", "\nfrom . import views\n", "\nfrom harness import views\n")
    return app


UNSTARTABLE += [
    (
        "package-importing-itself-by-a-taken-name",
        importing_itself_by_a_taken_name,
        "Your package imports itself as `harness`, but the check already has a module of that name (",
    ),
    (
        "no-create-user-command",
        without_create_user,
        "Your app started, but `flask create-user alice` failed (Error: No such command 'create-user'.)",
    ),
]


@pytest.mark.parametrize(("make", "sentence"), [u[1:] for u in UNSTARTABLE], ids=[u[0] for u in UNSTARTABLE])
def test_an_app_that_cannot_start_gets_one_sentence(tmp_path, make, sentence):
    app = make(tmp_path)
    code, output = check(app, "03" if (tmp_path / "my_login_app").exists() else "01")
    assert code == pytest.ExitCode.USAGE_ERROR, output
    assert "Traceback" not in output
    block = output.split("your app could not be checked")[1].partition("\n")[2].split("\n=")[0]
    [said] = [line for line in block.splitlines() if line.strip()]  # one sentence, nothing else
    assert said.startswith(sentence), output
    assert said.endswith(".")


LEARNER_APPS = Path(__file__).resolve().parent / "learner_apps"


def one_test_per_line(number):
    """`-k` naming one shared test of each contract line step `number` has: the report still has every line.

    Of a line's tests that the step's features allow, one with no cases of
    its own, and whose name is in no other test's name (`-k` matches parts
    of names), where there is one.
    """
    tests = line_tests(number)
    names = {name for found in tests.values() for _, name in found}
    chosen = set()
    for found in tests.values():
        chosen.add(min(found, key=lambda t: (t[0], any(t[1] in other for other in names - {t[1]})))[1])
    return " or ".join(sorted(chosen))


# A case's name that `-k` can spell: its parameters in brackets, of letters,
# digits and `_-./` only (not `?`, `%`, quotes or spaces).
SPELLABLE = re.compile(r"\w+\[[\w./-]+\]")


def first_cases(app, number, names):
    """`-k` naming, of each test that `-k names` selects for `app`, its first case that `-k` can spell.

    A line's only test may have dozens of cases (a table of hostile
    bodies, say): one is enough to show that the line is reported. A test
    none of whose cases can be spelled runs whole.
    """
    code, output = check(app, number, "--collect-only", "-q", "-k", names)
    assert code == 0, output
    cases = {}  # test name -> its cases, in order
    for line in output.splitlines():
        if line.startswith("shared_tests/") and "::" in line:
            case = line.strip().partition("::")[2]
            cases.setdefault(case.partition("[")[0], []).append(case)
    assert cases, output
    return " or ".join(next(filter(SPELLABLE.fullmatch, found), name) for name, found in cases.items())


def line_tests(number):
    """Each contract line step `number` has: {line: [(how many parametrize marks, test name)]}."""
    tests = {}
    for name, test in read_suite(SUITE, "contract").items():
        if test.runs_on(STEPS[number]):
            tests.setdefault(test.values[0], []).append((test.parametrized, name))
    return tests


def report_of(output, label):
    return re.findall(rf"^{label}  (.+)$", output, re.MULTILINE)


def snapshot(folder):
    """Every file under `folder`, with its bytes and modification time."""
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mtime_ns) for p in folder.rglob("*") if p.is_file()
    }


# The tutorials' shapes (check_tests/learner_apps, each with a README): the
# path a learner gives, the database file their code names (where
# Flask-SQLAlchemy 3 puts a relative sqlite:/// URL: the instance folder),
# and why the lines needing a fresh copy of the app are not judged.
TUTORIAL_SHAPES = {
    "corey-schafer-flaskblog": (
        "flaskblog_project/flaskblog",
        "instance/site.db",
        "your package imports itself by its own name",
    ),
    "mega-tutorial-microblog": ("microblog/microblog.py", "app.db", "made once, when it is imported"),
}
# Broken in both, each with what the report must say came back.
BROKEN_IN_BOTH = {
    "GET /profile when logged in: 200, shows the username and the numeric user id": "expected 200, got 404",
    "GET /logout (and /logout-everywhere) answers 405: logging out is by POST only": "expected 405, got 302",
    "A password over 72 bytes is just a wrong password at login": "your app raised ValueError: password cannot be",
    "POST /login with the right credentials redirects to /profile": "expected '/profile', got '/",
}
KEPT_IN_BOTH = [
    "GET /login: 200, a form with the inputs username and password",
    "Users live in the database with a bcrypt hash of their password, never the password itself",
    "Each hash has its own salt: the same password never gives the same hash",
    "The session holds the user id, never the password or its hash",
]
# Lines whose checks start the app again with no settings: not judged for
# an app made at import (nor a package importing itself by name).
NOT_JUDGED = [
    "No secret key in the code: each copy of the app makes its own random key",
    "Configuration comes from FLASK_ environment variables, e.g. FLASK_SECRET_KEY",
    "No default accounts: a new copy has no users, and admin/admin and the like get 'Invalid username or password.'",
]


@pytest.mark.parametrize("shape", TUTORIAL_SHAPES)
def test_a_tutorial_shaped_app_gets_a_report_line_by_line(tmp_path, shape):
    """A module-level app with its database URL in the code, as the popular tutorials write it: checked, not refused.

    It runs from a copy: the learner's own database file (and folder) stay
    exactly as they were. One test per contract line keeps this cheap; the
    report still names every line of step 03.
    """
    entry, database, why = TUTORIAL_SHAPES[shape]
    project = shutil.copytree(LEARNER_APPS / entry.split("/")[0], tmp_path / "project")
    (project / database).parent.mkdir(exist_ok=True)
    (project / database).write_bytes(b"the learner's own data")
    before = snapshot(project)
    code, output = check(project / entry.partition("/")[2], "03", "-k", one_test_per_line("03"))
    assert snapshot(project) == before, "the check wrote into the learner's folder"
    assert code == 1, output
    assert "Traceback" not in output
    kept, broken, not_judged = (report_of(output, label) for label in ("kept  ", "BROKEN", "NOT JUDGED"))
    for line, words in BROKEN_IN_BOTH.items():
        assert line in broken, output
        assert words in output.split(f"BROKEN  {line}\n")[1].split("\n")[0], output
    assert set(KEPT_IN_BOTH) <= set(kept), output
    assert set(NOT_JUDGED) <= set(not_judged), output
    for line in NOT_JUDGED:
        assert why in output.split(f"NOT JUDGED  {line}\n")[1].split("\n")[0], output
    # A cost factor given after import comes too late for flask-bcrypt, which read it at init_app.
    timing = "A login attempt costs the same for unknown users as for known ones (no timing clue)"
    assert timing in not_judged, output
    assert "BCRYPT_LOG_ROUNDS=5" in output.split(f"NOT JUDGED  {timing}\n")[1].split("\n")[0], output
    # Every line of step 03, once.
    lines = len(line_tests("03"))
    assert len(kept) + len(broken) + len(not_judged) == len(set(kept + broken + not_judged)) == lines, output
    assert (
        f"Your app breaks {len(broken)} of the {len(kept) + len(broken)} contract lines checked for step 03." in output
    )
    assert f"{len(not_judged)} more could not be judged for an app of this shape" in output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--as-step", "99"], "no step '99'"),
        (["--step", "01", "--as-step", "01"], "name its step with --as-step, not --step"),
    ],
)
def test_wrong_options_are_usage_errors(tmp_path, args, message):
    command = [sys.executable, "-m", "pytest", f"--app-path={learner_copy('01', tmp_path)}", *args]
    result = launcher.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == pytest.ExitCode.USAGE_ERROR
    assert message in result.stdout + result.stderr


def test_every_shared_test_names_its_contract_line():
    """The report groups tests by contract line: a test without one would show as its bare name."""
    marked = read_suite(SUITE, "contract")
    missing = [f"{test.path.name}::{name}" for name, test in read_suite(SUITE).items() if name not in marked]
    assert missing == [], "add @pytest.mark.contract(...) to these"


def test_app_entry_reads_paths_as_flask_does(tmp_path):
    (tmp_path / "package").mkdir()
    (tmp_path / "package" / "__init__.py").touch()
    (tmp_path / "project").mkdir()
    (tmp_path / "project" / "wsgi.py").touch()
    (tmp_path / "module.py").touch()
    assert app_entry(tmp_path / "package") == tmp_path / "package"
    assert app_entry(tmp_path / "project") == tmp_path / "project" / "wsgi.py"
    assert app_entry(tmp_path / "module.py") == tmp_path / "module.py"
    for wrong in ("notes.txt", "missing"):
        (tmp_path / "notes.txt").touch()
        with pytest.raises(LookupError):
            app_entry(tmp_path / wrong)


def test_copy_app_takes_a_module_with_its_folder_but_not_its_state(tmp_path):
    project = tmp_path / "project"
    for name in ("app.py", "templates/base.html", "instance/secret_key", ".venv/bin/python", "site.db"):
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).touch()
    copy = copy_app(project / "app.py", tmp_path / "copy")
    assert copy == tmp_path / "copy" / "project" / "app.py"
    copied = sorted(str(p.relative_to(copy.parent)) for p in copy.parent.rglob("*"))
    assert copied == ["app.py", "templates", "templates/base.html"]


def test_requirements_beside_the_app_or_in_its_package(tmp_path):
    (tmp_path / "package").mkdir()
    (tmp_path / "module.py").touch()
    assert requirements_near(tmp_path / "module.py") == []
    (tmp_path / "requirements.txt").touch()
    (tmp_path / "package" / "requirements.txt").touch()
    assert requirements_near(tmp_path / "module.py") == [tmp_path / "requirements.txt"]
    assert requirements_near(tmp_path / "package") == [
        tmp_path / "package" / "requirements.txt",
        tmp_path / "requirements.txt",
    ]


def test_without_app_path_the_suite_runs_as_before():
    """The report and the deselection belong to --app-path alone: the steps' own runs are untouched."""
    command = [sys.executable, "-m", "pytest", "--step", "01", "-p", "no:cacheprovider", "-q"]
    result = launcher.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout
    assert "deselected" not in result.stdout
    assert "contract lines" not in result.stdout
    assert "does not teach" in result.stdout  # the usual skip summary is still there
