"""The layers point down: cli/review -> defs -> vision -> curate -> sources -> imdb -> net -> base.

Only the Dagster layer (defs/, definitions.py and the cli that drives Dagster) imports
dagster; only net/ opens sockets; nothing but the demo imports the sample server."""

from __future__ import annotations

import ast
import pkgutil
import subprocess
import sys
from pathlib import Path

import mpds_pipeline

ROOT = Path(mpds_pipeline.__file__).parent
CORE_PACKAGES = ("base", "net", "sources", "imdb", "curate", "vision")
# A module may import its own layer and the layers below it, never one above.
LAYER = {
    "base": 0,
    "net": 1,
    "imdb": 2,
    "sources": 3,
    "curate": 4,
    "vision": 5,
    "sample_server": 6,
    "defs": 7,
    "definitions": 8,
    "review": 8,
    "cli": 9,
}
DAGSTER_LAYER = ("defs", "definitions", "cli")
# Modules that open sockets of their own: the sample server is the loopback stand-in the
# tests and the demo talk to, and the demo probes that server's port before using it.
SOCKET_OWNERS = ("net/", "sample_server/", "cli/demo.py")
NETWORK_MODULES = {"socket", "http.client", "httpx", "urllib.request", "requests", "aiohttp", "urllib3"}


def _modules() -> list[tuple[str, Path]]:
    found = []
    for path in sorted(ROOT.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        found.append((".".join(("mpds_pipeline", *parts)), path))
    return found


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


def _project_imports(module: str, path: Path) -> set[str]:
    """The project's modules and packages this file imports, as absolute dotted names."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("mpds_pipeline"))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if target.startswith("mpds_pipeline"):
                found.add(target)
                found.update(f"{target}.{a.name}" for a in node.names)
    return {name for name in found if name.count(".") >= 1 and name.split(".")[1] in LAYER}


def _layer_of(dotted: str) -> str:
    return dotted.split(".")[1]


def test_layers_point_down():
    upward = {}
    for module, path in _modules():
        if module.count(".") < 1 or _layer_of(module) not in LAYER:
            continue
        own = _layer_of(module)
        up = sorted(
            target
            for target in _project_imports(module, path)
            if _layer_of(target) != own and LAYER[_layer_of(target)] > LAYER[own]
        )
        if up:
            upward[module] = up
    assert upward == {}


def test_every_package_has_a_layer():
    packages = {info.name for info in pkgutil.iter_modules([str(ROOT)])}
    assert packages == set(LAYER)


def test_only_the_demo_imports_the_sample_server():
    users = {
        module
        for module, path in _modules()
        if _layer_of(module) != "sample_server"
        and any(_layer_of(t) == "sample_server" for t in _project_imports(module, path))
    }
    assert users <= {"mpds_pipeline.cli.main", "mpds_pipeline.cli.demo"}


def test_only_the_dagster_layer_imports_dagster():
    outside = sorted(
        module
        for module, path in _modules()
        if _layer_of(module) not in DAGSTER_LAYER
        and any(name == "dagster" or name.startswith("dagster.") for name in _imports(path))
    )
    assert outside == []


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


def test_base_and_net_import_nothing_above_them():
    """base/ imports nothing of the project; net/ only base/: every layer can use both."""
    reaching_up = {}
    for module, path in _modules():
        allowed = {"base": {"base"}, "net": {"base", "net"}}.get(_layer_of(module))
        if allowed is None:
            continue
        up = sorted(t for t in _project_imports(module, path) if _layer_of(t) not in allowed)
        if up:
            reaching_up[module] = up
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


def test_only_the_adapter_reaches_into_dagster_internals():
    """``dagster._core`` is no public API: one module names it, so an upgrade that moves
    something breaks in one place."""
    users = sorted(
        path.relative_to(ROOT).as_posix()
        for path in ROOT.rglob("*.py")
        if "dagster._core" in path.read_text(encoding="utf-8")
        or any(name.startswith("dagster._") for name in _imports(path))
    )
    assert users == ["defs/dagster_internals.py"]
