"""Installation values: a YAML file (plugin name -> values) checked against what each plugin declares."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from webhook.engine.discovery import control_plane_of
from webhook.engine.errors import ConfigError, not_utf8
from webhook.engine.kinds import fits_declared, kind_name
from webhook.engine.leaves import Attrs
from webhook.engine.plugins import Plugin, PluginSet
from webhook.engine.schema import TypeMismatch, conform

def check_values(plugins: PluginSet, overrides: Any, *, source: str) -> dict[str, dict[str, Any]]:
    """Validate overrides; raises ConfigError naming the plugin, the key and what is accepted."""
    if overrides is None:
        return {}
    if not isinstance(overrides, Mapping):
        raise ConfigError(f"{source}: values are a mapping of plugin name to values")
    checked: dict[str, dict[str, Any]] = {}
    for name, values in overrides.items():
        if name not in plugins:
            raise ConfigError(f"{source}: plugin {name!r} is not installed; accepted: {', '.join(p.name for p in plugins)}")
        declared = plugins[name].values
        # A plugin without values (istio-delegate, native) accepts only an empty mapping; say so
        # rather than end the message on an empty list.
        accepted = ", ".join(declared) or f"none ({name} has no installation values; leave it out or give {{}})"
        if not isinstance(values, Mapping):
            raise ConfigError(f"{source}: {name}: values must be a mapping; accepted keys: {accepted}")
        for key, value in values.items():
            if key not in declared:
                raise ConfigError(f"{source}: {name}: unknown value {key!r}; accepted: {accepted}")
            if not fits_declared(declared[key], value):
                raise ConfigError(f"{source}: {name}.{key}={value!r} is not {kind_name(declared[key])}")
            if declared[key] is None:  # declared null: "unset, decided elsewhere"; any scalar overrides
                continue
            go_type, as_written = _taken_types(plugins[name]).get(key, (None, False))
            if go_type is not None:
                # The Go type the mesh reads the value into (its controlPlane take's `type`): what the
                # cluster's value is checked against, so that the values file cannot give what it refuses.
                # A value the mesh passes on as written is read as the API server reads it (names exact).
                try:
                    conform(value, go_type, exact_names=as_written)
                except TypeMismatch as err:
                    inside = str(err).removeprefix("the value").strip()
                    raise ConfigError(f"{source}: {name}.{key}={value!r}: {inside} (the mesh reads it as {go_type})") from None
        checked[name] = dict(values)
    return checked


def _taken_types(plugin: Plugin) -> dict[str, tuple[str, bool]]:
    """Each value a controlPlane take reads with a declared Go type: that type, and whether the take
    is `asWritten`."""
    types: dict[str, tuple[str, bool]] = {}
    for found in control_plane_of(plugin):
        for take in found.takes:
            if take.go_type is not None:
                types.setdefault(take.value, (take.go_type, take.as_written))
    return types


def apply_values(plugins: PluginSet, overrides: Mapping[str, Mapping[str, Any]]) -> PluginSet:
    """A plugin set whose plugins carry the merged values (the shipped defaults stay untouched)."""
    replaced = {
        name: dataclasses.replace(
            plugin,
            values=Attrs({**plugin.values, **overrides.get(name, {})}),
            pinned=plugin.pinned | frozenset(overrides.get(name, {})),
        )
        for name, plugin in plugins.by_name.items()
    }
    return PluginSet(by_name=replaced)


def load_values(path: Path, plugins: PluginSet) -> PluginSet:
    """Read a values file and apply it; raises ConfigError."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror}") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{not_utf8(path, err)} (installation values)") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {err}") from None
    return apply_values(plugins, check_values(plugins, raw, source=str(path)))
