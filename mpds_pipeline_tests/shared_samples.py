"""Where the real IMDb samples live: ``../shared`` beside the checkout (read-only, never
copied into the project). A test that reads them skips with ``ABSENT`` when it is missing.
``MPDS_SHARED_DIR`` names them where the checkout is a worktree elsewhere."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

SHARED_DIR = Path(os.environ.get("MPDS_SHARED_DIR") or Path(__file__).resolve().parents[2] / "shared")
IMDB_PAGES = SHARED_DIR / "imdb-pages"
IMDB_DATASETS = SHARED_DIR / "imdb-datasets"
API_SAMPLES = SHARED_DIR / "api-samples"  # recorded answers of OMDb, Common Crawl, Wikidata...
ABSENT = f"real IMDb samples not found at {SHARED_DIR} (../shared beside the repo)"

needs_shared = pytest.mark.skipif(not SHARED_DIR.is_dir(), reason=ABSENT)
