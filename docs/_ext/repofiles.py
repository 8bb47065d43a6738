"""Directives that show the repository's own files, named as the repository names them.

- `literalinclude` with `:diff:` names both files by their path in the
  repository (stock Sphinx prints the absolute paths of the machine that
  built the docs), and makes the old file a rebuild dependency too.
- `readme-command` shows a Quickstart command read from README.md, found the
  same way .ci/run finds it, so the docs show what CI really runs.

`ROOT` (the repository's folder) and `repo_path` are used by the other
extensions here too.
"""

from pathlib import Path

from docutils import nodes
from docutils.parsers.rst import directives
from sphinx.directives.code import LiteralInclude
from sphinx.util import logging
from sphinx.util.docutils import SphinxDirective

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


def setup(app):
    app.add_directive("literalinclude", RepoLiteralInclude, override=True)
    app.add_directive("readme-command", ReadmeCommand)
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}
