"""Sphinx helpers that keep the docs tied to the code in steps/.

- `literalinclude` with `:diff:` names both files by their path in the
  repository (stock Sphinx prints the absolute paths of the machine that
  built the docs), and makes the old file a rebuild dependency too.
- `step-table` lists the steps from their step.toml files; each links to
  its page, so a new step without a page breaks the build.
- `step-install` shows the pip command for what a step.toml declares
  (and, with `:with-tests:`, pytest).
- `screenshots` shows a step's browser screenshots, once they exist.
- `readme-command` shows a Quickstart command read from README.md, found the
  same way .ci/run finds it, so the docs show what CI really runs.
- `session-cookie` logs in to a step with Flask's test client and shows the
  session cookie it got, decoded: real output, made at build time.
- `check-report` breaks a copy of a step on purpose, runs the checker on
  it, and shows the report it printed: real output, made at build time.
- `contract-line` states one line of the contract (docs/contract.md) and
  names the shared tests that check it, read from shared_tests/ with `ast`.
  A line that names no test, or a test that does not exist, is a warning;
  so is a test marked `@pytest.mark.contract(...)` that no line names.
- After an HTML build, every page and stylesheet is checked for resources
  loaded from another host (scripts, fonts, styles, images): there must be
  none, so the docs work offline and tell no third party who reads them.
"""

import base64
import json
import re
import shlex
import subprocess
import sys
import tempfile
import zlib
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx import addnodes
from sphinx.directives.code import LiteralInclude
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

from harness import steps as stepkit
from harness.suite import read_suite

logger = logging.getLogger(__name__)

ROOT = Path(__file__).resolve().parents[2]


class RepoLiteralInclude(LiteralInclude):
    """`literalinclude`, whose `:diff:` headers show repository-relative paths.

    With `:diff:`, a `changed` option may list, one per line, the changed
    lines the page's text talks about, each with its "+" or "-": the build
    warns when the diff no longer holds one, so the text cannot drift from
    the code it explains.
    """

    option_spec = {**LiteralInclude.option_spec, "changed": directives.unchanged_required}

    def run(self):
        if "diff" not in self.options:
            return super().run()
        old_rel, old_abs = self.env.relfn2path(self.options["diff"])
        _, new_abs = self.env.relfn2path(self.arguments[0])
        # Stock Sphinx only rebuilds the page when the new file changes.
        self.env.note_dependency(old_rel)
        result = super().run()
        for block in (found for node in result for found in node.findall(nodes.literal_block)):
            text = block.astext()
            if not text:
                logger.warning(
                    "%s and %s are identical: there is no diff to show",
                    repo_path(old_abs),
                    repo_path(new_abs),
                    location=self.get_location(),
                )
                continue
            self.check_changed(text, repo_path(new_abs))
            header = f"--- {old_abs}\n+++ {new_abs}\n"
            if text.startswith(header):
                text = f"--- {repo_path(old_abs)}\n+++ {repo_path(new_abs)}\n" + text[len(header) :]
                block.rawsource = text
                block.children = [nodes.Text(text)]
        return result

    def check_changed(self, diff, name):
        """Warn about each line of the `changed` option that the diff lacks."""
        changed = [line for line in diff.splitlines()[2:] if line[:1] in "+-"]
        for wanted in self.options.get("changed", "").splitlines():
            wanted = wanted.strip()
            if not wanted:
                continue
            sign, fragment = wanted[0], wanted[1:].strip()
            if sign not in "+-" or not any(line[0] == sign and fragment in line for line in changed):
                logger.warning(
                    "the diff of %s has no changed line %r that the text talks about",
                    name,
                    wanted,
                    location=self.get_location(),
                )


def repo_path(path):
    """`path` relative to the repository root, with forward slashes."""
    return Path(path).resolve().relative_to(ROOT).as_posix()


class ReadmeCommand(SphinxDirective):
    """Show the command that follows `<!-- NAME -->` in README.md."""

    required_arguments = 1

    def run(self):
        readme = ROOT / "README.md"
        self.env.note_dependency(str(readme))
        marker = f"<!-- {self.arguments[0]} -->"
        found = False
        # The rule .ci/run uses: after the marker, the first line that starts with "python3 ".
        for line in readme.read_text(encoding="utf-8").splitlines():
            if line.strip() == marker:
                found = True
            elif found and line.startswith("python3 "):
                block = nodes.literal_block(line, line, language="console")
                self.set_source_info(block)
                return [block]
        logger.warning("README.md has no command after %s", marker, location=self.get_location())
        return []


class StepTable(SphinxDirective):
    """A table of every step: its page, its title, what it adds, what it needs."""

    def run(self):
        table = nodes.table()
        group = nodes.tgroup(cols=4)
        table += group
        for width in (10, 25, 40, 25):
            group += nodes.colspec(colwidth=width)
        head = nodes.thead()
        head += row(nodes.Text(text) for text in ("step", "title", "new features", "needs"))
        body = nodes.tbody()
        before = frozenset()
        for step in stepkit.discover():
            self.env.note_dependency(str(step.path / "step.toml"))
            link = addnodes.pending_xref(
                "",
                nodes.inline(text=step.number),
                refdomain="std",
                reftype="doc",
                reftarget=f"/steps/{step.name}",
                refexplicit=True,
                refdoc=self.env.docname,
            )
            added = sorted(step.features - before)
            needs = [re.split(r"[\s<>=!~;\[]", req, maxsplit=1)[0] for req in step.dependencies]
            body += row(
                [
                    link,
                    nodes.Text(step.title),
                    literals(added),
                    literals(needs),
                ]
            )
            before = step.features
        group += head
        group += body
        self.check_readme_install(stepkit.discover())
        return [table]

    def check_readme_install(self, steps):
        """Warn when the README's one-environment `pip install` line misses a step's dependency."""
        readme = ROOT / "README.md"
        self.env.note_dependency(str(readme))
        lines = [
            line
            for line in readme.read_text(encoding="utf-8").splitlines()
            if line.startswith(".venv/bin/pip install ")
        ]
        listed = {project_name(word) for line in lines for word in line.split()[2:]}
        missing = sorted({project_name(req) for step in steps for req in step.dependencies} - listed)
        if not lines or missing:
            logger.warning(
                "README.md's `.venv/bin/pip install` line lacks what the steps need: %s",
                ", ".join(missing) or "there is no such line",
                location=self.get_location(),
            )


def project_name(requirement):
    """The normalised project name of a requirement: `Flask-WTF>=1.3` -> `flask-wtf`."""
    name = re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0]
    return re.sub(r"[-_.]+", "-", name).lower()


class StepDirective(SphinxDirective):
    """A directive whose first argument names a step: 03_flask_login, 03 or 3."""

    required_arguments = 1

    def find_step(self):
        """The step named by the argument, or None (and a warning, which fails the build)."""
        try:
            [step] = stepkit.select(stepkit.discover(), [self.arguments[0]])
        except (LookupError, ValueError) as error:
            logger.warning("%s", error, location=self.get_location())
            return None
        return step


class StepInstall(StepDirective):
    """The pip command that installs what a step's step.toml declares.

    With the `:with-tests:` flag, the command also installs the test tools
    of pyproject.toml's `test` dependency group (pytest), as `nox -s tests`
    does.
    """

    option_spec = {"with-tests": directives.flag}

    def run(self):
        step = self.find_step()
        if step is None:
            return []
        self.env.note_dependency(str(step.path / "step.toml"))
        requirements = list(step.dependencies)
        if "with-tests" in self.options:
            pyproject = ROOT / "pyproject.toml"
            self.env.note_dependency(str(pyproject))
            groups = stepkit.tomllib.loads(pyproject.read_text(encoding="utf-8"))["dependency-groups"]
            requirements += [req for req in groups["test"] if isinstance(req, str)]
        command = " ".join([".venv/bin/pip", "install", *(shlex.quote(req) for req in requirements)])
        block = nodes.literal_block(command, command, language="console")
        self.set_source_info(block)
        return [block]


# What each screenshot from `nox -s screenshots` shows, in the order shown.
SCREENSHOTS = {
    "login-error.png": "The login form after a failed attempt: one message, whatever was wrong.",
    "profile.png": "The profile page of a logged-in user: the username and the user id.",
    "register-errors.png": "The sign-up form sent with bad values: each message sits under its own field.",
    "too-many-attempts.png": "After too many failed logins: 429, and how long to wait, even for the right password.",
}
# The feature a step needs for a screenshot; the others every step has.
SCREENSHOT_FEATURE = {"register-errors.png": "registration", "too-many-attempts.png": "rate-limits"}


class Screenshots(StepDirective):
    """The step's screenshots from docs/_static/screenshots/<step>/, with captions.

    Until the screenshots have been made for a step, its folder does not
    exist and this shows nothing. Once it exists, every picture the step
    should have must be there (the sign-up form only where the step has
    the `registration` feature, and so on), and every file there must be
    known here.
    """

    def run(self):
        step = self.find_step()
        if step is None:
            return []
        base = Path(self.env.srcdir) / "_static" / "screenshots"
        folders = [base / name for name in (step.name, step.number) if (base / name).is_dir()]
        if not folders:
            return []
        folder = folders[0]
        expected = [name for name in SCREENSHOTS if SCREENSHOT_FEATURE.get(name, "login") in step.features]
        present = sorted(path.name for path in folder.glob("*.png"))
        for name in sorted(set(expected) - set(present)):
            logger.warning("%s has no %s", repo_path(folder), name, location=self.get_location())
        for name in sorted(set(present) - set(SCREENSHOTS)):
            logger.warning("%s: no caption for %s", repo_path(folder), name, location=self.get_location())
        result = []
        for name in (name for name in SCREENSHOTS if name in present):
            uri = "/" + (folder / name).relative_to(Path(self.env.srcdir)).as_posix()
            figure = nodes.figure()
            figure += nodes.image(uri=uri, alt=SCREENSHOTS[name])
            figure += nodes.caption(text=SCREENSHOTS[name])
            self.set_source_info(figure)
            result.append(figure)
        return result


def row(cells):
    tr = nodes.row()
    for content in cells:
        entry = nodes.entry()
        entry += nodes.paragraph("", "", content)
        tr += entry
    return tr


def literals(words):
    """`a`, `b`, `c` as inline code, separated by commas."""
    inline = nodes.inline()
    for i, word in enumerate(words):
        if i:
            inline += nodes.Text(", ")
        inline += nodes.literal(text=word)
    return inline


def decode_cookie(cookie):
    """Read a Flask session cookie without the secret key: it is signed, not encrypted.

    The cookie is three parts joined by dots: the data, a timestamp and a
    signature. The data is JSON in URL-safe base64; a leading dot means it
    was also compressed with zlib, which Flask does when that is shorter.
    """
    compressed = cookie.startswith(".")
    payload, timestamp, signature = cookie.lstrip(".").split(".")
    data = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
    if compressed:
        data = zlib.decompress(data)
    return json.loads(data)


class SessionCookie(StepDirective):
    """Log in to a step and show its session cookie: raw and decoded, or forged.

    The step's own create_app() runs with a fixed, public test key and a
    throwaway database; from step 03, alice and bob are added with the
    step's `create-user` command (steps 01-02 ship them). Then alice logs
    in through the login form, CSRF token and all when the form has one. `:keys:` lists the keys the text explains: if the cookie
    ever holds others, the build warns, so the page cannot quietly go
    stale. `:show: forgery` instead rewrites the cookie's data to claim
    bob's id, keeps alice's signature, and shows what the step answers.
    """

    option_spec = {
        "keys": directives.unchanged_required,
        "show": lambda value: directives.choice(value, ("cookie", "forgery")),
    }

    def run(self):
        found = self.find_step()
        if found is None:
            return []
        step = found.path
        for path in step.rglob("*"):
            if path.suffix in (".py", ".html", ".toml"):
                self.env.note_dependency(str(path))
        try:
            visit = log_in(step)
        except Exception as error:  # any failure here is a broken docs build
            logger.warning("could not log in to %s: %r", step.name, error, location=self.get_location())
            return []
        if self.options.get("show") == "forgery":
            blocks = self.forgery(visit)
        else:
            blocks = self.cookie(visit["cookie"], step.name)
        for block in blocks:
            self.set_source_info(block)
        return blocks

    def cookie(self, cookie, step_name):
        data = decode_cookie(cookie)
        expected = set(self.options.get("keys", "").split())
        if expected and set(data) != expected:
            logger.warning(
                "the session cookie of %s holds %s, but the page explains %s",
                step_name,
                sorted(data),
                sorted(expected),
                location=self.get_location(),
            )
        # The three parts one under the other: the dots are the point.
        raw_text = f"session={cookie}\n\n" + "\n".join(f"{name:<10} {part}" for name, part in split_cookie(cookie))
        decoded_text = json.dumps(data, indent=2, sort_keys=True)
        return [
            nodes.literal_block(raw_text, raw_text, language="text"),
            nodes.literal_block(decoded_text, decoded_text, language="json"),
        ]

    def forgery(self, visit):
        if visit["forged_status"] == 200:
            logger.warning("the step accepted a forged session cookie", location=self.get_location())
        text = (
            f"session={visit['forged']}\n\n"
            + "\n".join(f"{name:<10} {part}" for name, part in split_cookie(visit["forged"]))
            + "\n\nGET /profile\n"
            + f"  with alice's cookie:    {visit['real_answer']}\n"
            + f"  with the forged cookie: {visit['forged_answer']}"
        )
        return [nodes.literal_block(text, text, language="text")]


def split_cookie(cookie):
    """The cookie's three parts, named; a leading dot stays with the data."""
    names = ("data", "timestamp", "signature")
    parts = list(zip(names, cookie.lstrip(".").split("."), strict=True))
    if cookie.startswith("."):
        parts[0] = ("data", "." + parts[0][1])
    return parts


def encode_cookie_data(data, compressed):
    """The reverse of decode_cookie()'s first part: anyone can do it, no key needed."""
    payload = json.dumps(data, separators=(",", ":")).encode()
    if compressed:
        payload = zlib.compress(payload)
    return ("." if compressed else "") + base64.urlsafe_b64encode(payload).decode().rstrip("=")


def answer(response):
    """What a response said, in one line: "200 OK" or "302 FOUND -> /login?next=..."."""
    location = response.headers.get("Location")
    return response.status + (f" -> {location}" if location else "")


def log_in(step_dir):
    """Start the step with a test key, add alice and bob, log alice in, then forge her cookie."""
    sys.path.insert(0, str(ROOT / "shared_tests"))
    try:
        from harness.pages import csrf_token
    finally:
        sys.path.remove(str(ROOT / "shared_tests"))

    module = stepkit.load_module(step_dir, f"docs_{step_dir.name}")
    with tempfile.TemporaryDirectory() as folder:
        app = stepkit.app_factory(module)(
            {
                "TESTING": True,
                "SECRET_KEY": "a-key-for-the-docs-only",
                "SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder}/docs.sqlite",
                "BCRYPT_LOG_ROUNDS": 4,
            }
        )
        # Steps 01-02 ship alice and bob; later steps make them with create-user.
        if "create-user" in app.cli.commands:
            for name, password in (("alice", "wonderland"), ("bob", "can-we-fix-it")):
                args = ["create-user", name]
                if "email" in {param.name for param in app.cli.commands["create-user"].params}:
                    args += ["--email", f"{name}@example.com"]
                with app.app_context():  # as `flask` runs every command
                    result = app.test_cli_runner().invoke(args=args, input=f"{password}\n{password}\n")
                if result.exit_code != 0:
                    raise RuntimeError(result.output)
        client = app.test_client()
        form = {"username": "alice", "password": "wonderland"}
        token = csrf_token(client.get("/login").text)
        if token is not None:
            form["csrf_token"] = token
        response = client.post("/login", data=form)
        if response.status_code not in (302, 303):
            raise RuntimeError(f"logging in answered {response.status_code}")
        # Follow the redirect, as a browser would: the profile page adds to the session.
        real = client.get(response.headers["Location"])
        if real.status_code != 200:
            raise RuntimeError("the profile page did not answer 200")
        cookie = client.get_cookie("session").value

        # Claim to be bob (id 2), keeping alice's timestamp and signature.
        # Step 01 stores the id as a number under "user_id"; Flask-Login as
        # a string under "_user_id".
        data = decode_cookie(cookie)
        key = "_user_id" if "_user_id" in data else "user_id"
        data[key] = "2" if isinstance(data[key], str) else 2
        _, timestamp, signature = cookie.lstrip(".").split(".")
        forged = f"{encode_cookie_data(data, cookie.startswith('.'))}.{timestamp}.{signature}"
        attacker = app.test_client()
        attacker.set_cookie("session", forged)
        forged_response = attacker.get("/profile")
        return {
            "cookie": cookie,
            "real_answer": answer(real),
            "forged": forged,
            "forged_status": forged_response.status_code,
            "forged_answer": answer(forged_response),
        }


# marked_tests' answers, by mark, with the files they were read from: every
# contract line and ASVS row asks, and reading the suite takes half a second.
SCANNED = {}


def marked_tests(mark=None):
    """Every test in shared_tests/ marked `@pytest.mark.<mark>(...)`, found with `ast`, by name.

    With `mark=None`, every test function, marked or not. Each maps to a
    harness.suite.SharedTest (file, line, features, the `mark` marker's
    constant arguments, ...). Nothing is imported and no test runs. The suite is read again only when one of
    its files changed (`docs-serve` rebuilds while you edit).
    """
    paths = sorted((ROOT / "shared_tests").glob("*.py"))
    files = tuple((path, path.stat().st_mtime_ns) for path in paths)
    if SCANNED.get(mark, (None,))[0] != files:
        SCANNED[mark] = (files, read_suite(paths, mark))
    return SCANNED[mark][1]


def contract_tests():
    """Every test marked `@pytest.mark.contract(...)`: see `marked_tests`."""
    return marked_tests("contract")


def step_span(numbers, every):
    """The steps a line applies to, in words: every step, step 03, steps 01, 02 or steps 03-04."""
    if not numbers:
        return "no step yet"
    if numbers == every:
        return "every step"
    if len(numbers) == 1:
        return f"step {numbers[0]}"
    runs, start = [], 0
    for i in range(1, len(numbers) + 1):
        if i == len(numbers) or every.index(numbers[i]) != every.index(numbers[i - 1]) + 1:
            run = numbers[start:i]
            runs.append(run[0] if len(run) == 1 else f"{run[0]}\u2013{run[-1]}")
            start = i
    return "steps " + ", ".join(runs)


class ContractLine(SphinxDirective):
    """One line of the contract: what a step must do, and the shared tests that check it.

    :::{contract-line} What every step must do, in one sentence.
    :tests: test_one test_two
    :::

    (A colon fence, because a backtick fence cannot hold `code` on its first line.)

    `:tests:` names test functions in shared_tests/ (spaces or commas
    between them). The line is shown with those names and the steps whose
    features those tests need; any content is shown under it. The build
    warns when the line names no test or a test that does not exist; the
    check that every contract-marked test is named somewhere runs once all
    pages are read (`check_contract_coverage`).
    """

    required_arguments = 1
    final_argument_whitespace = True
    has_content = True
    option_spec = {"tests": directives.unchanged}

    def run(self):
        known = contract_tests()
        for path in (ROOT / "shared_tests").glob("*.py"):
            self.env.note_dependency(str(path))
        names = [name for name in re.split(r"[\s,]+", self.options.get("tests", "")) if name]
        if not names:
            logger.warning(
                "contract line %r names no test (give them in :tests:)",
                self.arguments[0],
                location=self.get_location(),
            )
        for name in names:
            if name not in known:
                logger.warning(
                    "contract line %r names %s, which is no test in shared_tests/ with a contract marker",
                    self.arguments[0],
                    name,
                    location=self.get_location(),
                )
        if not hasattr(self.env, "contract_named"):
            self.env.contract_named = {}
        self.env.contract_named.setdefault(self.env.docname, set()).update(names)

        steps = stepkit.discover()
        every = [step.number for step in steps]
        applies = [step.number for step in steps if any(name in known and known[name].runs_on(step) for name in names)]

        box = nodes.container(classes=["contract-line"])
        self.set_source_info(box)
        text, messages = self.parse_inline(self.arguments[0], lineno=self.lineno)
        box += nodes.paragraph("", "", *text, classes=["contract-text"])
        box += messages
        meta = nodes.paragraph(classes=["contract-meta"])
        meta += nodes.emphasis(text=step_span(applies, every))
        meta += nodes.Text(" \u00b7 checked by ")
        for i, name in enumerate(names):
            if i:
                meta += nodes.Text(", ")
            meta += nodes.literal(text=name)
            if name in known:
                meta += nodes.Text(f" ({known[name][0].name})")
        box += meta
        if self.content:
            box += self.parse_content_to_nodes()
        return [box]


def check_contract_fences(app, doctree):
    """Warn about a `contract-line` that Markdown read as text, not as a directive.

    A backtick fence cannot carry backticks on its first line, so a line
    with code in it must be written in a colon fence, `:::{contract-line}`.
    """
    for text in doctree.findall(nodes.Text):
        if "{contract-line}" in text and not isinstance(text.parent, nodes.literal | nodes.literal_block):
            logger.warning(
                "a contract-line was read as plain text: write it as :::{contract-line} ... :::",
                location=text.parent,
            )


def purge_contract(app, env, docname):
    getattr(env, "contract_named", {}).pop(docname, None)


def merge_contract(app, env, docnames, other):
    if not hasattr(env, "contract_named"):
        env.contract_named = {}
    env.contract_named.update(getattr(other, "contract_named", {}))


def check_contract_coverage(app, env):
    """Warn about each contract-marked test that no `contract-line` names."""
    named = set().union(*getattr(env, "contract_named", {}).values())
    for name, (path, lineno, *_) in sorted(contract_tests().items()):
        if name not in named:
            logger.warning(
                "%s is marked as a contract test, but no contract-line in the docs names it",
                name,
                location=f"{path}:{lineno}",
            )


# A resource the browser fetches by itself, from another host (or "//host").
REMOTE_IN_HTML = re.compile(
    r"<(?:script|img|iframe|source|audio|video|embed)\b[^>]*\bsrc\s*=\s*[\"']?(?:https?:)?//"
    r"|<link\b(?=[^>]*\brel\s*=\s*[\"']?(?:stylesheet|preload|modulepreload|icon|prefetch|preconnect))"
    r"[^>]*\bhref\s*=\s*[\"']?(?:https?:)?//",
    re.IGNORECASE,
)
REMOTE_IN_CSS = re.compile(r"(?:url\(\s*[\"']?|@import\s+[\"'])(?:https?:)?//", re.IGNORECASE)


def check_offline(app, exception):
    """Warn about every page or stylesheet that would load something from the network."""
    if exception is not None or app.builder.format != "html":
        return
    outdir = Path(app.outdir)
    for path in sorted(outdir.rglob("*")):
        if path.suffix == ".html":
            pattern = REMOTE_IN_HTML
        elif path.suffix == ".css":
            pattern = REMOTE_IN_CSS
        else:
            continue
        for match in pattern.finditer(path.read_text(encoding="utf-8", errors="replace")):
            logger.warning("%s loads a remote resource: %s", path.relative_to(outdir), match.group(0)[:120])


class CheckReport(StepDirective):
    """The report `pytest --app-path` prints for a copy of a step with deliberate breaks.

    The breaks are named by their ids in check_tests/test_check.py, which
    tests that each one is reported; this shows what a learner would read.
    The copy's temporary path is shown as `~/my_login_app`.
    """

    optional_arguments = 10

    def run(self):
        step = self.find_step()
        if step is None:
            return []
        checks = load_check_tests()
        breaks = {name: (file, edits) for name, _, file, edits, *_ in checks.BREAKS}
        for path in [*step.path.rglob("*.py"), *step.path.rglob("*.html"), ROOT / "check_tests" / "test_check.py"]:
            self.env.note_dependency(str(path))
        with tempfile.TemporaryDirectory() as tmp:
            app = checks.learner_copy(step.number, Path(tmp))
            try:
                for name in self.arguments[1:]:
                    file, edits = breaks[name]
                    for old, new in edits:
                        checks.edit(app / file, old, new)
                code, output = checks.check(app, step.number)
            except (KeyError, AssertionError, subprocess.SubprocessError) as error:
                logger.warning("could not make the report: %r", error, location=self.get_location())
                return []
            output = output.replace(str(app), "~/my_login_app")
        lines = output.splitlines()
        start = next((i for i, line in enumerate(lines) if "your app, checked as step" in line), None)
        if code != 1 or start is None:
            logger.warning("the checker did not report a broken app:\n%s", output, location=self.get_location())
            return []
        text = "\n".join(lines[start:])
        block = nodes.literal_block(text, text, language="text")
        self.set_source_info(block)
        return [block]


def load_check_tests():
    """Import check_tests/test_check.py: its broken copies of the steps, and how it runs the checker."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("docs_check_tests", ROOT / "check_tests" / "test_check.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def setup(app):
    app.add_directive("literalinclude", RepoLiteralInclude, override=True)
    app.add_directive("readme-command", ReadmeCommand)
    app.add_directive("step-table", StepTable)
    app.add_directive("step-install", StepInstall)
    app.add_directive("screenshots", Screenshots)
    app.add_directive("session-cookie", SessionCookie)
    app.add_directive("check-report", CheckReport)
    app.add_directive("contract-line", ContractLine)
    app.connect("doctree-read", check_contract_fences)
    app.connect("env-purge-doc", purge_contract)
    app.connect("env-merge-info", merge_contract)
    app.connect("env-check-consistency", check_contract_coverage)
    app.connect("build-finished", check_offline)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
