"""Directives for the step pages, read from each step's step.toml.

- `step-table` lists the steps from their step.toml files; each links to
  its page, so a new step without a page breaks the build.
- `step-install` shows the pip command for what a step.toml declares
  (and, with `:with-tests:`, pytest).
- `screenshots` shows a step's browser screenshots, once they exist.

`StepDirective`, a directive whose argument names a step, is the base of
these and of `session-cookie` (cookies.py) and `check-report`
(checkreport.py).
"""

import re
import shlex
from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from repofiles import ROOT
from repofiles import repo_path
from sphinx import addnodes
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

from harness import steps as stepkit

logger = logging.getLogger(__name__)


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
    "two-factor-setup.png": "Turning two-factor on: the key as a QR code for the phone's app, and as text to type in.",
    "login-two-factor.png": "The second stage of a login, after the right password: a code that is used up is refused.",
    "passkeys.png": "The passkeys page after adding one: its name, when it was added, never used yet.",
    "login-passkey.png": "The login page with JavaScript: the form, and a button to sign in with a passkey instead.",
    "admin-users.png": "The admin area: every account, whether it is confirmed, disabled, an admin, and its buttons.",
    "account-sessions.png": "The sessions page: every browser logged in to the account, this one marked, each with its button.",
}
# The feature a step needs for a screenshot; the others every step has.
SCREENSHOT_FEATURE = {
    "register-errors.png": "registration",
    "too-many-attempts.png": "rate-limits",
    "two-factor-setup.png": "two-factor",
    "login-two-factor.png": "two-factor",
    "passkeys.png": "passkeys",
    "login-passkey.png": "passkeys",
    "admin-users.png": "admin-area",
    "account-sessions.png": "device-sessions",
}


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


def setup(app):
    app.add_directive("step-table", StepTable)
    app.add_directive("step-install", StepInstall)
    app.add_directive("screenshots", Screenshots)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
