"""The `asvs` directive: one OWASP ASVS 5.0 requirement, how the steps keep it, and the tests that prove it.

    :::{asvs} 6.2.4 level 1
    :status: kept
    :from: 04
    :tests: test_sign_up_refuses_a_common_or_too_long_password
    The requirement, in our words.
    :::

`:status:` is kept, partly, not-yet or not-applicable; `:from:` names the
first step that keeps it (kept and partly rows only); `:reason:` says why a
requirement does not apply. The tests are found in shared_tests/ with the
same `ast` scan as the contract's (contract.marked_tests), and the build
warns (so the strict build fails) when:

- a row names a test that does not exist, or one not marked
  `@pytest.mark.asvs("<its id>")`;
- a kept row names no test, or a not-applicable row gives no reason;
- `:from:` is not a step, or is earlier than any step its tests run on;
- a test marked `@pytest.mark.asvs(...)` with an id is on no row of that id,
  or two rows have the same id.
"""

import re

from contract import marked_tests
from docutils import nodes
from docutils.parsers.rst import directives
from repofiles import ROOT
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

from harness import steps as stepkit

logger = logging.getLogger(__name__)

STATUSES = ("kept", "partly", "not-yet", "not-applicable")
SHOWN = {"kept": "kept", "partly": "partly kept", "not-yet": "not yet", "not-applicable": "does not apply"}
ARGUMENT = re.compile(r"(\d+\.\d+\.\d+) level ([123])")


class AsvsRow(SphinxDirective):
    """One ASVS requirement: its id and level, our words for it, its status, its first step, its tests."""

    required_arguments = 1
    final_argument_whitespace = True
    has_content = True
    option_spec = {
        "status": lambda value: directives.choice(value, STATUSES),
        "from": directives.unchanged_required,
        "tests": directives.unchanged,
        "reason": directives.unchanged_required,
    }

    def warn(self, message, *args):
        logger.warning("ASVS %s: " + message, self.arguments[0], *args, location=self.get_location())

    def run(self):
        match = ARGUMENT.fullmatch(self.arguments[0].strip())
        if not match:
            self.warn("write the argument as `<id> level <1-3>`, e.g. `6.2.4 level 1`")
            return []
        ident, level = match.groups()
        for path in (ROOT / "shared_tests").glob("*.py"):
            self.env.note_dependency(str(path))
        status = self.options.get("status")
        names = [name for name in re.split(r"[\s,]+", self.options.get("tests", "")) if name]
        self.check(ident, status, names)
        rows = self.env.__dict__.setdefault("asvs_rows", {}).setdefault(self.env.docname, {})
        if ident in rows:
            self.warn("a second row for the same requirement")
        rows[ident] = (set(names), self.lineno)
        return [self.render(ident, level, status, names)]

    def check(self, ident, status, names):
        every = marked_tests()
        proving = marked_tests("asvs")
        if status is None:
            self.warn("no :status: (one of %s)", ", ".join(STATUSES))
        if status == "kept" and not names:
            self.warn("a kept requirement names no test that proves it (give them in :tests:)")
        if status == "not-applicable" and "reason" not in self.options:
            self.warn("say why it does not apply, in :reason:")
        for name in names:
            if name not in every:
                self.warn("%s is no test in shared_tests/", name)
            elif ident not in proving.get(name, (None, None, None, ()))[3]:
                self.warn('%s is not marked @pytest.mark.asvs("%s")', name, ident)
        first = self.options.get("from")
        if status in ("kept", "partly") and first is None:
            self.warn("no :from: (the first step that keeps it)")
        if status in ("not-yet", "not-applicable") and first is not None:
            self.warn(":from: on a requirement no step keeps")
        if first is None:
            return
        steps = stepkit.discover()
        try:
            [step] = stepkit.select(steps, [first])
        except (LookupError, ValueError) as error:
            self.warn("%s", error)
            return
        runs_on = [s.number for s in steps if any(name in every and every[name].runs_on(s) for name in names)]
        if runs_on and step.number < runs_on[0]:
            self.warn("kept from step %s, but its tests run from step %s on", step.number, runs_on[0])

    def render(self, ident, level, status, names):
        box = nodes.container(classes=["contract-line", "asvs-row"], ids=[f"asvs-{ident.replace('.', '-')}"])
        self.set_source_info(box)
        head = nodes.paragraph(classes=["contract-text"])
        head += nodes.strong(text=ident)
        head += nodes.Text(f" (level {level}) \u00b7 ")
        head += nodes.emphasis(text=SHOWN.get(status, "?"))
        if "from" in self.options:
            head += nodes.Text(f" from step {self.options['from']}")
        box += head
        if self.content:
            box += self.parse_content_to_nodes()
        if "reason" in self.options:
            text, messages = self.parse_inline(self.options["reason"], lineno=self.lineno)
            box += nodes.paragraph(
                "",
                "",
                nodes.Text("Why it does not apply: " if status == "not-applicable" else "What is missing: "),
                *text,
            )
            box += messages
        if names:
            every = marked_tests()
            meta = nodes.paragraph(classes=["contract-meta"])
            meta += nodes.Text("proved by ")
            for i, name in enumerate(names):
                if i:
                    meta += nodes.Text(", ")
                meta += nodes.literal(text=name)
                if name in every:
                    meta += nodes.Text(f" ({every[name].path.name})")
            box += meta
        return box


def purge_rows(app, env, docname):
    getattr(env, "asvs_rows", {}).pop(docname, None)


def merge_rows(app, env, docnames, other):
    env.__dict__.setdefault("asvs_rows", {}).update(getattr(other, "asvs_rows", {}))


def check_coverage(app, env):
    """Warn about each requirement a test is marked as proving that no row of that id names it."""
    named = {}
    for docname, rows in sorted(getattr(env, "asvs_rows", {}).items()):
        for ident, (names, lineno) in rows.items():
            if ident in named:
                logger.warning("ASVS %s has a second row", ident, location=(docname, lineno))
            named.setdefault(ident, set()).update(names)
    for name, test in sorted(marked_tests("asvs").items()):
        path, lineno, idents = test.path, test.line, test.values
        if not idents:
            logger.warning("%s has an asvs marker with no requirement id", name, location=f"{path}:{lineno}")
        for ident in idents:
            if name not in named.get(ident, ()):
                logger.warning(
                    "%s is marked as proving ASVS %s, but no asvs row of that id names it",
                    name,
                    ident,
                    location=f"{path}:{lineno}",
                )


def setup(app):
    app.add_directive("asvs", AsvsRow)
    app.connect("env-purge-doc", purge_rows)
    app.connect("env-merge-info", merge_rows)
    app.connect("env-check-consistency", check_coverage)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
