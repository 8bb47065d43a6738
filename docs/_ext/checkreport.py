"""The `check-report` directive: the checker's report on a broken app, made at build time.

`check-report` breaks a copy of a step on purpose, runs the checker on
it, and shows the report it printed: real output, made at build time.
"""

import subprocess
import tempfile
from pathlib import Path

from docutils import nodes
from repofiles import ROOT
from sphinx.util import logging
from stepinfo import StepDirective

logger = logging.getLogger(__name__)


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
    app.add_directive("check-report", CheckReport)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
