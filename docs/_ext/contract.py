"""The contract's lines (docs/contract.md), checked against the shared tests.

`contract-line` states one line of the contract and names the shared tests
that check it, read from shared_tests/ with `ast`. A line that names no
test, or a test that does not exist, is a warning; so is a test marked
`@pytest.mark.contract(...)` that no line names, and a `contract-line`
that Markdown read as plain text. The scan of shared_tests/
(`marked_tests`) is asvs.py's too.
"""

import re

from docutils import nodes
from docutils.parsers.rst import directives
from repofiles import ROOT
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

from harness import steps as stepkit
from harness.suite import read_suite

logger = logging.getLogger(__name__)


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


def setup(app):
    app.add_directive("contract-line", ContractLine)
    app.connect("doctree-read", check_contract_fences)
    app.connect("env-purge-doc", purge_contract)
    app.connect("env-merge-info", merge_contract)
    app.connect("env-check-consistency", check_contract_coverage)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
