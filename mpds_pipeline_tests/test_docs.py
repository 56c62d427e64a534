"""The documentation builds strictly, and README.md stays a front page whose links into
docs/ resolve (on GitHub, where they are plain relative paths)."""

from __future__ import annotations

import html
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
README = REPO / "README.md"
MKDOCS_CONFIG = REPO / "mkdocs.yml"
README_MAX_LINES = 400
# [text](docs/page.md) or [text](docs/page.md#anchor)
DOCS_LINK = re.compile(r"\]\((docs/[^)#\s]+)(?:#[^)\s]*)?\)")


def test_mkdocs_builds_strictly(tmp_path):
    """Under --strict a broken link or anchor, a page missing from nav or a missing
    snippet file fails the build (mkdocs.yml's validation section)."""
    site = tmp_path / "site"
    done = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(MKDOCS_CONFIG), "-d", str(site)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,  # paths in mkdocs.yml are relative to the config, not to where it runs
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    for page in (REPO / "docs").glob("*.md"):
        built = site / "index.html" if page.stem == "index" else site / page.stem / "index.html"
        assert built.is_file(), page.name
    # The deployment guide is included, not copied (pymdownx.snippets): its sections are on the page.
    guide = (REPO / "deploy" / "README.md").read_text(encoding="utf-8")
    sections = [line[3:].strip() for line in guide.splitlines() if line.startswith("## ")]
    page = html.unescape((site / "scale-out" / "index.html").read_text(encoding="utf-8"))
    assert sections and all(section in page for section in sections)


def test_readme_is_a_front_page():
    lines = README.read_text(encoding="utf-8").splitlines()
    assert len(lines) < README_MAX_LINES, f"README.md has {len(lines)} lines; move detail into docs/"


def test_readme_links_into_docs_resolve():
    links = DOCS_LINK.findall(README.read_text(encoding="utf-8"))
    assert len(links) >= 7, "the README's table of contents links into docs/"
    missing = sorted({link for link in links if not (REPO / link).is_file()})
    assert missing == []


def test_readme_keeps_the_two_commands():
    text = README.read_text(encoding="utf-8")
    assert "make demo" in text and "make test" in text
