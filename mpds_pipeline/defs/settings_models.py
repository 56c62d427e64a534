"""Dagster config and resource fields derived from the core's settings dataclasses.

Each setting is declared once, in the core (``base.settings.setting``: default, doc,
environment variable); this module turns those declarations into pydantic fields of a
Dagster ``Config`` or ``ConfigurableResource``, and turns the config's values back into
the core's dataclass (``to_settings``), so neither side repeats a default.
"""

from __future__ import annotations

import dataclasses
import sys
import types
import typing
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import BaseModel, Field, create_model

from ..base import settings as env

_ENV_READERS: dict[type, Callable[[str, Any], Any]] = {
    bool: env.env_bool,
    int: env.env_int,
    float: env.env_float,
    str: env.env_str,
    list: env.env_list,
}


def _config_type(hint: Any) -> Any:
    # Dagster config has lists, not tuples: a tuple setting is a list field, converted back by to_settings.
    if typing.get_origin(hint) is tuple:
        item = typing.get_args(hint)[0]
        # Dagster offers choices for a Literal field but not for a list of them: the core
        # settings check the items when the run starts.
        return list[str] if typing.get_origin(item) is typing.Literal else list[item]
    return hint


def _hint(settings_class: type, declared: dataclasses.Field) -> Any:
    """The field's annotation as a type (the core modules postpone annotations). One
    field at a time: a class may annotate another field with a type-checking-only name."""
    if not isinstance(declared.type, str):
        return declared.type
    return eval(declared.type, vars(sys.modules[settings_class.__module__]))  # noqa: S307 (our own annotations)


def _plain(value: Any) -> Any:
    return list(value) if isinstance(value, tuple) else value


def _env_factory(name: str, hint: Any, default: Any) -> Callable[[], Any]:
    base = typing.get_origin(hint) or hint
    if base in (types.UnionType, typing.Union):
        base = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    reader = _ENV_READERS[base]
    return lambda: reader(name, _plain(default))


ALL = None  # config_fields(..., ALL): every field of the settings class


def config_fields(
    settings_class: type, names: Iterable[str] | None, defaults: dict[str, Callable[[], Any]] | None = None
) -> dict[str, Any]:
    """pydantic field definitions of ``settings_class``'s fields ``names``, under their
    config names. ``defaults`` replaces a default with a factory where the Dagster side
    must differ from the core (say why where it is used)."""
    by_name = {f.name: f for f in dataclasses.fields(settings_class)}
    fields = {}
    for name in by_name if names is ALL else names:
        if name not in by_name:
            raise ValueError(f"{settings_class.__name__} has no setting {name!r}")
        declared = by_name[name]
        hint = _config_type(_hint(settings_class, declared))
        doc = declared.metadata.get("doc") or None
        declared_factory = declared.default_factory if declared.default is dataclasses.MISSING else None
        default = declared_factory() if declared_factory else declared.default
        factory = (defaults or {}).get(name)
        if factory is None and declared.metadata.get("env"):
            factory = _env_factory(declared.metadata["env"], hint, default)
        # A factory hides the default from Dagster's schema (the launchpad shows none): only where needed.
        if factory is not None or declared_factory is not None:
            field = Field(default_factory=factory or declared_factory, description=doc)
        else:
            field = Field(_plain(default), description=doc)
        fields[declared.metadata.get("config_name", name)] = (hint, field)
    return fields


def derived(base: type[BaseModel], *groups: dict[str, Any]) -> Any:
    """A subclass of ``base`` (dagster's ``Config`` or ``ConfigurableResource``) with the
    fields of ``groups`` (``config_fields`` results); the Dagster class inherits it and
    adds only what the core does not have."""
    merged: dict[str, Any] = {}
    for group in groups:
        merged.update(group)
    return create_model(f"{base.__name__}Fields", __base__=base, **merged)


def to_settings(settings_class: type, config: BaseModel, **values: Any) -> Any:
    """``settings_class`` built from ``config``'s values of the fields it derived from
    it (lists back to tuples), plus ``values`` for the fields that come from elsewhere."""
    for declared in dataclasses.fields(settings_class):
        config_name = declared.metadata.get("config_name", declared.name)
        if declared.name in values or config_name not in type(config).model_fields:
            continue
        value = getattr(config, config_name)
        if isinstance(value, list) and typing.get_origin(_hint(settings_class, declared)) is tuple:
            value = tuple(value)
        values[declared.name] = value
    return settings_class(**values)
