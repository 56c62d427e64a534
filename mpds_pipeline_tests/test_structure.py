"""Short modules: no module of the package is over 600 lines, so each one can be read whole."""

from __future__ import annotations

from pathlib import Path

import mpds_pipeline

ROOT = Path(mpds_pipeline.__file__).parent
MAX_LINES = 600


def _line_counts() -> dict[str, int]:
    return {
        path.relative_to(ROOT).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
        for path in sorted(ROOT.rglob("*.py"))
    }


def test_no_module_over_600_lines():
    counts = _line_counts()
    too_long = {name: lines for name, lines in counts.items() if lines > MAX_LINES}
    assert too_long == {}, f"modules over {MAX_LINES} lines (split them): {too_long}"
