"""Every module of the package opens with a short docstring: what it owns and why.

Details, measurements and how-tos belong in docs/ (built strictly by test_docs.py), where
they have one copy; a module docstring that grows into an essay repeats them and drifts.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "mpds_pipeline"
MAX_LINES = 8


def _modules() -> list[Path]:
    return sorted(PACKAGE.rglob("*.py"))


def _docstring(path: Path) -> str | None:
    return ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"), filename=str(path)))


def test_the_package_has_modules():
    assert len(_modules()) > 50


def test_every_module_has_a_docstring():
    missing = [str(p.relative_to(PACKAGE)) for p in _modules() if not _docstring(p)]
    assert not missing, f"modules without a module docstring: {missing}"


def test_every_module_docstring_is_at_most_eight_lines():
    too_long = {}
    for path in _modules():
        rel = path.relative_to(PACKAGE).as_posix()
        doc = _docstring(path)
        if doc is None:
            continue
        lines = len(doc.splitlines())
        if lines > MAX_LINES:
            too_long[rel] = lines
    assert not too_long, (
        f"module docstrings over {MAX_LINES} lines (say what the module owns and why; "
        f"move details to docs/): {too_long}"
    )
