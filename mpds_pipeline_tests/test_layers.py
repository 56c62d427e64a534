"""The plain-Python core (imdb, curate, vision, sources, net) never imports dagster."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
from pathlib import Path

import mpds_pipeline

CORE_PACKAGES = ("imdb", "curate", "vision", "sources", "net")


def test_core_modules_load_without_dagster():
    root = Path(mpds_pipeline.__file__).parent
    modules = [
        f"mpds_pipeline.{package}.{info.name}"
        for package in CORE_PACKAGES
        for info in pkgutil.iter_modules([str(root / package)])
    ]
    assert len(modules) > 20
    script = "import sys\n" + "".join(f"import {m}\n" for m in modules) + "print('dagster' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False"
