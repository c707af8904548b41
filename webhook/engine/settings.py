"""Per-pod settings a plugin declares: their types, parsing, and the messages for bad values."""

from __future__ import annotations

import ipaddress
import re

import yaml
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from webhook.engine.errors import ConfigError


class SettingError(ValueError):
    """A value did not parse; the message says what is accepted."""


_CPU = re.compile(r"^(?:[0-9]+m|[0-9]+(?:\.[0-9]{1,3})?)$")
_MEMORY = re.compile(r"^[0-9]+(?:\.[0-9]+)?(?:[eE][0-9]+|Ki|Mi|Gi|Ti|Pi|Ei|k|K|M|G|T|P|E|m)?$")
# name[:tag][@digest]: each path component lower-case, as the distribution spec says.
_IMAGE = re.compile(
    r"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$"
)
_PORT_RANGE = re.compile(r"^([0-9]{1,5})(?:-([0-9]{1,5}))?$")
# ASCII digits only: str.isdigit() and int() also take "¹" or "٣", which no Kubernetes field does.
_INTEGER = re.compile(r"^[+-]?[0-9]{1,18}$")
_TRUE = frozenset({"true", "yes", "y", "on", "1"})
_FALSE = frozenset({"false", "no", "n", "off", "0"})


def _parse_int(raw: str, setting: Setting) -> int:
    text = raw.strip()
    if not _INTEGER.match(text):
        raise SettingError("not a whole number")
    value = int(text)
    if setting.minimum is not None and value < setting.minimum:
        raise SettingError(f"below the minimum {setting.minimum}")
    if setting.maximum is not None and value > setting.maximum:
        raise SettingError(f"above the maximum {setting.maximum}")
    return value


def _parse_port(raw: str, setting: Setting) -> int:
    text = raw.strip()
    if not _PORT_RANGE.match(text) or "-" in text or not 1 <= int(text) <= 65535:
        raise SettingError("not a port number")
    return int(text)


def _split_list(raw: str) -> list[str]:
    return [part.strip() for part in raw.split(",") if part.strip()]


def _parse_ports(raw: str, setting: Setting) -> list[str]:
    parts = _split_list(raw)
    if parts == ["*"] and setting.wildcard:
        return parts
    for part in parts:
        match = _PORT_RANGE.match(part)
        if not match:
            raise SettingError(f"{part!r} is not a port or port range")
        low = int(match.group(1))
        high = int(match.group(2) or low)
        if not (1 <= low <= high <= 65535):
            raise SettingError(f"{part!r} is out of the range 1-65535")
    return parts


def _parse_cidrs(raw: str, setting: Setting) -> list[str]:
    parts = _split_list(raw)
    if parts == ["*"] and setting.wildcard:
        return parts
    for part in parts:
        try:
            ipaddress.ip_network(part, strict=False)
        except ValueError:
            raise SettingError(f"{part!r} is not a CIDR") from None
    return parts


def _parse_cpu(raw: str, setting: Setting) -> str:
    text = raw.strip()
    if not _CPU.match(text):
        raise SettingError("not a CPU quantity")
    return text


def _parse_memory(raw: str, setting: Setting) -> str:
    text = raw.strip()
    if not _MEMORY.match(text):
        raise SettingError("not a memory quantity")
    return text


def _parse_bool(raw: str, setting: Setting) -> bool:
    text = raw.strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise SettingError("not a boolean")


def _parse_enum(raw: str, setting: Setting) -> str:
    text = raw.strip()
    if text not in setting.choices:
        raise SettingError("not one of the choices")
    return text


def _parse_string(raw: str, setting: Setting) -> str:
    if setting.pattern is not None and not setting.pattern.fullmatch(raw):
        raise SettingError("does not have the accepted form")
    return raw


def _parse_image(raw: str, setting: Setting) -> str:
    text = raw.strip()
    if len(text) > 512 or not _IMAGE.match(text):
        raise SettingError("not an image reference")
    return text


def _parse_mapping(raw: str, setting: Setting) -> dict[str, Any]:
    # YAML is a superset of JSON, so both spellings a mesh accepts parse here; the result is data.
    if len(raw) > 16384:
        raise SettingError("longer than 16384 characters")
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        raise SettingError("not YAML or JSON") from None
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise SettingError("not a mapping")
    for name, kind in setting.fields.items():
        if name in value and not _FIELD_TYPES[kind](value[name]):
            raise SettingError(f"a mapping whose {name} is not {kind}")
    return value


_FIELD_TYPES: Mapping[str, Callable[[Any], bool]] = {
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "bool": lambda v: isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "mapping": lambda v: isinstance(v, dict),
    "list": lambda v: isinstance(v, list),
}


@dataclass(frozen=True)
class SettingType:
    """How one type parses, and how to describe what it accepts."""

    parse: Callable[[str, Setting], Any]
    accepts: Callable[[Setting], str]


TYPES: Mapping[str, SettingType] = {
    "int": SettingType(_parse_int, lambda s: "a whole number" + _bounds(s)),
    "port": SettingType(_parse_port, lambda s: "a port number from 1 to 65535"),
    "ports": SettingType(
        _parse_ports,
        lambda s: "a comma-separated list of ports or ranges (8080,9000-9100)" + (' or "*"' if s.wildcard else ""),
    ),
    "cidrs": SettingType(
        _parse_cidrs,
        lambda s: "a comma-separated list of CIDRs (10.0.0.0/8,fd00::/8)" + (' or "*"' if s.wildcard else ""),
    ),
    "cpu": SettingType(_parse_cpu, lambda s: "a CPU quantity such as 100m or 2"),
    "memory": SettingType(_parse_memory, lambda s: "a memory quantity such as 128Mi or 1Gi"),
    "image": SettingType(_parse_image, lambda s: "an image reference from an allowed registry"),
    "bool": SettingType(_parse_bool, lambda s: "true or false"),
    "mapping": SettingType(_parse_mapping, lambda s: s.description or "a YAML or JSON mapping"),
    "enum": SettingType(_parse_enum, lambda s: "one of " + ", ".join(s.choices)),
    "string": SettingType(
        _parse_string, lambda s: s.description or (f"text matching {s.pattern.pattern}" if s.pattern else "text")
    ),
}


def _bounds(setting: Setting) -> str:
    if setting.minimum is not None and setting.maximum is not None:
        return f" from {setting.minimum} to {setting.maximum}"
    if setting.minimum is not None:
        return f" of at least {setting.minimum}"
    if setting.maximum is not None:
        return f" of at most {setting.maximum}"
    return ""


@dataclass(frozen=True)
class Setting:
    """One per-pod setting: the annotation keys that carry it, its type and its default."""

    name: str
    keys: tuple[str, ...]
    type: str
    default: Any = None
    choices: tuple[str, ...] = ()
    pattern: re.Pattern[str] | None = None
    minimum: int | None = None
    maximum: int | None = None
    wildcard: bool = False
    description: str = ""
    fields: Mapping[str, str] = field(default_factory=dict)  # a mapping's typed fields

    def parse(self, raw: str) -> Any:
        """Parse one raw annotation value; raises SettingError."""
        return TYPES[self.type].parse(raw, self)

    def accepts(self) -> str:
        """What values this setting accepts, for error messages and `meshswitch plugins`."""
        return TYPES[self.type].accepts(self)


_SETTING_FIELDS = frozenset(
    {"keys", "key", "type", "default", "choices", "pattern", "min", "max", "wildcard", "description", "fields"}
)


def load_setting(name: str, spec: Any, *, where: str) -> Setting:
    """Build a Setting from a plugin file's `settings` entry; raises ConfigError naming `where`."""
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{where}: setting {name!r} must be a mapping")
    unknown = set(spec) - _SETTING_FIELDS
    if unknown:
        raise ConfigError(f"{where}: setting {name!r} has unknown fields {sorted(unknown)}; accepted: {sorted(_SETTING_FIELDS)}")
    keys = spec.get("keys", spec.get("key", []))
    keys = [keys] if isinstance(keys, str) else keys
    if not isinstance(keys, Sequence) or not all(isinstance(k, str) and k for k in keys):
        raise ConfigError(f"{where}: setting {name!r}: keys must be a list of annotation names")
    type_name = spec.get("type", "string")
    if type_name not in TYPES:
        raise ConfigError(f"{where}: setting {name!r}: type {type_name!r} is not one of {', '.join(TYPES)}")
    pattern = spec.get("pattern")
    fields = spec.get("fields") or {}
    if not isinstance(fields, Mapping) or not all(v in _FIELD_TYPES for v in fields.values()):
        raise ConfigError(f"{where}: setting {name!r}: fields map names to one of {', '.join(_FIELD_TYPES)}")
    setting = Setting(
        name=name,
        keys=tuple(keys),
        type=type_name,
        choices=tuple(str(c) for c in spec.get("choices", ())),
        pattern=re.compile(pattern) if pattern else None,
        minimum=spec.get("min"),
        maximum=spec.get("max"),
        wildcard=bool(spec.get("wildcard", False)),
        description=str(spec.get("description", "")),
        fields=dict(fields),
    )
    if type_name == "enum" and not setting.choices:
        raise ConfigError(f"{where}: setting {name!r}: an enum needs choices")
    default = spec.get("default")
    if default is not None:
        raw = ",".join(str(d) for d in default) if isinstance(default, list) else str(default).lower() if isinstance(default, bool) else str(default)
        try:
            default = setting.parse(raw)
        except SettingError as err:
            raise ConfigError(f"{where}: setting {name!r}: default {raw!r} is {err}; accepted: {setting.accepts()}") from None
    return Setting(**{**setting.__dict__, "default": default})
