"""The shared suite read as data: each test's marks, found with `ast`.

Nothing is imported and no test runs. The docs use it to tie contract lines
and ASVS rows to tests, the checker's self-test to pick one test per line.
"""

import ast
from pathlib import Path
from typing import NamedTuple


class SharedTest(NamedTuple):
    """One test function of the suite, as its source says."""

    path: Path
    line: int
    # From `@pytest.mark.features(...)`: a step must teach all of them.
    features: frozenset
    # The constant arguments of the mark that was asked for.
    values: tuple
    # From `@pytest.mark.replaced_by(...)`: a step teaching all of them has a line of its own instead.
    replaced_by: frozenset = frozenset()
    # How many `@pytest.mark.parametrize` it has: 0 is a single case per step.
    parametrized: int = 0

    def runs_on(self, step):
        """Whether the test is `step`'s, as harness.steps.step_params decides."""
        replaced = bool(self.replaced_by) and self.replaced_by <= step.features
        return self.features <= step.features and not replaced


def read_suite(paths, mark=None):
    """Every test in the files at `paths` marked `@pytest.mark.<mark>(...)`, by name.

    With `mark=None`, every test function, marked or not.
    """
    found = {}
    for path in paths:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"), filename=str(path))
        names = module_constants(tree)
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            marks = {}
            parametrized = 0
            for decorator in node.decorator_list:
                call = decorator if isinstance(decorator, ast.Call) else None
                name = ast.unparse(call.func if call else decorator)
                if name == "pytest.mark.parametrize":
                    parametrized += 1
                elif name.startswith("pytest.mark."):
                    marks[name.removeprefix("pytest.mark.")] = call.args if call else []
            if mark in marks or (mark is None and node.name.startswith("test_")):
                found[node.name] = SharedTest(
                    path=path,
                    line=node.lineno,
                    features=constants(marks.get("features", []), names),
                    values=tuple(arg.value for arg in marks.get(mark, []) if isinstance(arg, ast.Constant)),
                    replaced_by=constants(marks.get("replaced_by", []), names),
                    parametrized=parametrized,
                )
    return found


def module_constants(tree):
    """The module's `NAME = ("a", "b")` lines, so that `features(*NAME)` reads as its strings."""
    found = {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                continue
            if isinstance(value, tuple | list) and all(isinstance(item, str) for item in value):
                found[node.targets[0].id] = value
    return found


def constants(args, names):
    """The strings among a mark's arguments, `*NAME` of a module constant included."""
    found = set()
    for arg in args:
        if isinstance(arg, ast.Constant):
            found.add(arg.value)
        elif isinstance(arg, ast.Starred) and isinstance(arg.value, ast.Name) and arg.value.id in names:
            found.update(names[arg.value.id])
        else:
            raise ValueError(f"line {arg.lineno}: a mark's argument that is neither a string nor *A_CONSTANT")
    return frozenset(found)
