"""Each setting is declared once: in the core's settings dataclass, from which the Dagster
config or resource derives its field (defs/settings_models.py). A field annotated both in
a Dagster class body and in a core settings class fails here, naming both places."""

from __future__ import annotations

import ast
import dataclasses
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from dagster import Config, ConfigurableResource

import mpds_pipeline
from mpds_pipeline.defs.assets.generation import LoraConfig
from mpds_pipeline.defs.resources import ImdbClientResource, SourcesResource
from mpds_pipeline.defs.settings_models import config_fields, derived, to_settings
from mpds_pipeline.net.client_settings import ClientSettings
from mpds_pipeline.vision.lora_training import LoraSettings

PACKAGE = Path(mpds_pipeline.__file__).parent
CORE = ("base", "net", "imdb", "sources", "curate", "vision")
DAGSTER_BASES = {"Config", "ConfigurableResource"}

# The same word for two different settings (not one setting declared twice): the Dagster
# field means something else than the core's, which the description of each says.
SAME_NAME_OTHER_SETTING = {
    # benchmark_images: extra models to run; the report's: which methods the preference compares against.
    ("BenchmarkImagesConfig", "baselines", "BenchmarkReportSettings"),
}


def _annotated(node: ast.ClassDef) -> list[str]:
    return [n.target.id for n in node.body if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)]


def _settings_class(node: ast.ClassDef) -> bool:
    """A core dataclass of settings: named ``...Settings``, or declaring a field with ``setting(...)``."""
    if not any("dataclass" in ast.unparse(d) for d in node.decorator_list):
        return False
    declares = any(
        isinstance(n, ast.AnnAssign) and isinstance(n.value, ast.Call) and ast.unparse(n.value.func) == "setting"
        for n in node.body
    )
    return node.name.endswith("Settings") or declares


def _dagster_class(node: ast.ClassDef) -> bool:
    """A Config or ConfigurableResource subclass, directly or through ``derived(...)``."""
    names = {n.id for base in node.bases for n in ast.walk(base) if isinstance(n, ast.Name)}
    return bool(names & (DAGSTER_BASES | {"derived"}))


def classes(root: Path, folders: tuple[str, ...], pick) -> list[tuple[str, str, list[str]]]:
    """(class name, file:line, annotated field names) of every class ``pick`` accepts."""
    found = []
    for folder in folders:
        for path in sorted((root / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if isinstance(node, ast.ClassDef) and pick(node) and _annotated(node):
                    found.append((node.name, f"{path.relative_to(root.parent)}:{node.lineno}", _annotated(node)))
    return found


def declared_twice(root: Path = PACKAGE) -> list[str]:
    clashes = []
    for name, where, fields in classes(root, ("defs",), _dagster_class):
        for core_name, core_where, core_fields in classes(root, CORE, _settings_class):
            for field in sorted(set(fields) & set(core_fields)):
                if (name, field, core_name) not in SAME_NAME_OTHER_SETTING:
                    clashes.append(f"{field!r} declared in {name} ({where}) and in {core_name} ({core_where})")
    return clashes


def test_no_setting_is_declared_twice():
    clashes = declared_twice()
    assert not clashes, "derive the Dagster field from the core (defs/settings_models.py):\n" + "\n".join(clashes)


def test_the_scan_sees_a_duplicate(tmp_path):
    """A copy of the package with one core field declared again in a Config class fails, naming both."""
    for folder in (*CORE, "defs"):
        for path in (PACKAGE / folder).rglob("*.py"):
            target = tmp_path / "mpds_pipeline" / path.relative_to(PACKAGE)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(path.read_text(encoding="utf-8"), encoding="utf-8")
    generation = tmp_path / "mpds_pipeline/defs/assets/generation.py"
    source = generation.read_text(encoding="utf-8")
    anchor = "    one_per_duplicate_group: bool"
    assert anchor in source
    generation.write_text(source.replace(anchor, "    rank: int = 8\n" + anchor, 1), encoding="utf-8")
    clashes = declared_twice(tmp_path / "mpds_pipeline")
    assert len(clashes) == 1
    assert "'rank' declared in LoraConfig (mpds_pipeline/defs/assets/generation.py:" in clashes[0]
    assert "LoraSettings (mpds_pipeline/vision/lora_training.py:" in clashes[0]


def test_the_derived_config_shows_the_core_default_and_doc():
    fields = LoraConfig.to_config_schema().as_field().config_type.fields
    declared = {f.name: f for f in dataclasses.fields(LoraSettings)}
    assert fields["rank"].default_value == declared["rank"].default == 4
    assert fields["rank"].description == declared["rank"].metadata["doc"]
    assert fields["aspect_buckets"].default_value == list(declared["aspect_buckets"].default)
    # the Dagster class still adds what the core does not have
    assert fields["one_per_duplicate_group"].default_value is True


def test_the_core_gets_the_configs_values_back():
    config = LoraConfig(rank=8, aspect_buckets=["512x512"])
    settings = to_settings(LoraSettings, config, pretrained_model="m", device="cpu")
    assert (settings.rank, settings.aspect_buckets, settings.pretrained_model) == (8, ("512x512",), "m")
    assert settings.lr_scheduler == "constant"  # a core-only field keeps the core's default
    client = ImdbClientResource(base_url="http://127.0.0.1:1", max_page_bytes=123, extra_allowed_hosts=["a.b"])
    assert client.client_settings() == ClientSettings(
        base_url="http://127.0.0.1:1", max_body_bytes=123, extra_allowed_hosts=("a.b",)
    )
    archive = SourcesResource(cc_crawls=["CC-MAIN-2019-04"], capture_policy="oldest").archive_settings(99)
    assert (archive.crawls, archive.policy, archive.max_page_bytes) == (("CC-MAIN-2019-04",), "oldest", 99)


def test_a_list_default_is_not_shared_between_configs():
    first, second = LoraConfig(), LoraConfig()
    first.aspect_buckets.append("64x64")
    assert "64x64" not in second.aspect_buckets


def test_a_derived_field_can_take_another_default_only_by_name():
    Model = derived(Config, config_fields(ClientSettings, ["timeout_s"], defaults={"timeout_s": lambda: 5.0}))
    assert Model().timeout_s == 5.0
    with pytest.raises(ValueError, match="ClientSettings has no setting 'no_such_setting'"):
        config_fields(ClientSettings, ["no_such_setting"])


def test_environment_overrides_set_the_dagster_defaults_not_the_cores(tmp_path):
    """As before the derivation: MPDS_* (and <data dir>/settings.env) change the defaults
    where the code location loads; a variable in the environment wins over the file."""
    (tmp_path / "settings.env").write_text("MPDS_RATE=0.25\nMPDS_CC_MAX_CRAWLS=2\nMPDS_CONTACT=file@x\n")
    script = textwrap.dedent(
        """
        import sys
        from mpds_pipeline.definitions import defs
        from mpds_pipeline.net.client_settings import ClientSettings
        from mpds_pipeline.sources.archived_pages import ArchiveSettings
        imdb, sources = defs.resources["imdb"], defs.resources["sources"]
        print(imdb.rate_per_second, imdb.contact, sources.cc_max_crawls, sources.licence_allowlist)
        print(ClientSettings().rate_per_second, ArchiveSettings().max_crawls)
        # The settings the code location derives its config from live apart from the torch code.
        print("torch" in sys.modules)
        """
    )
    env = {**os.environ, "MPDS_DATA_DIR": str(tmp_path), "MPDS_CONTACT": "env@x", "MPDS_LICENCE_ALLOWLIST": "cc0"}
    for name in ("MPDS_RATE", "MPDS_CC_MAX_CRAWLS"):
        env.pop(name, None)
    out = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split("\n")[:3] == ["0.25 env@x 2 ['cc0']", "1.0 6", "False"]


def test_every_dagster_class_scanned_is_one():
    """The scan's notion of a Dagster class matches dagster's (no class slips by unseen)."""
    import importlib

    scanned = {name for name, _, _ in classes(PACKAGE, ("defs",), _dagster_class)}
    for module in (
        "mpds_pipeline.defs.resources",
        *(f"mpds_pipeline.defs.assets.{p.stem}" for p in (PACKAGE / "defs/assets").glob("*.py")),
    ):
        for name, value in vars(importlib.import_module(module)).items():
            if (
                isinstance(value, type)
                and issubclass(value, Config | ConfigurableResource)
                and value.__module__ == module
                and vars(value).get("__annotations__")
            ):
                assert name in scanned, f"{module}.{name} is a Dagster class the scan does not see"
