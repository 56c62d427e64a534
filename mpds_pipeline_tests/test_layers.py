"""The plain-Python core (net, sources, imdb, curate, vision) never imports dagster;
net/ is the bottom layer and the only code that opens sockets."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import mpds_pipeline

CORE_PACKAGES = ("net", "sources", "imdb", "curate", "vision")
ROOT = Path(mpds_pipeline.__file__).parent
# Modules that open sockets of their own: the sample server is the loopback stand-in the
# tests and the demo talk to, and the demo probes that server's port before using it.
SOCKET_OWNERS = ("net/", "sample_server/", "demo.py")
NETWORK_MODULES = {"socket", "http.client", "httpx", "urllib.request", "requests", "aiohttp", "urllib3"}


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            prefix = "." * node.level + (node.module or "")
            found.add(prefix)
            found.update(f"{prefix}.{alias.name}" if node.module else prefix + alias.name for alias in node.names)
    return found


def test_only_net_opens_sockets():
    offenders = {}
    for path in ROOT.rglob("*.py"):
        relative = path.relative_to(ROOT).as_posix()
        if relative.startswith(SOCKET_OWNERS):
            continue
        # socket.gethostname() names this machine in lock files; it opens nothing.
        used = {m for m in _imports(path) if m in NETWORK_MODULES - {"socket"}}
        if "socket" in _imports(path) and "socket.socket" in path.read_text(encoding="utf-8"):
            used.add("socket")
        if used:
            offenders[relative] = sorted(used)
    assert offenders == {}


def test_net_is_the_bottom_layer():
    """net/ imports nothing of the project but itself, so every layer can use it."""
    reaching_up = {}
    for path in (ROOT / "net").glob("*.py"):
        up = {m for m in _imports(path) if m.startswith("..") or m.startswith("mpds_pipeline")}
        if up:
            reaching_up[path.name] = sorted(up)
    assert reaching_up == {}


def test_core_modules_load_without_dagster():
    modules = [
        f"mpds_pipeline.{package}.{info.name}"
        for package in CORE_PACKAGES
        for info in pkgutil.iter_modules([str(ROOT / package)])
    ]
    assert len(modules) > 20
    script = "import sys\n" + "".join(f"import {m}\n" for m in modules) + "print('dagster' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False"
