"""Per-pod settings a plugin declares: their types, parsing, and the messages for bad values."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

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
# An IANA service name, as a container port's `name` (Kubernetes: at most 15, a letter somewhere).
_PORT_NAME = re.compile(r"^(?=.*[a-z])[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$")
# Go's time.ParseDuration: a sequence of decimal numbers with units, optionally signed.
_DURATION_PART = re.compile(r"([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "μs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}
_FLOAT = re.compile(r"^[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$")
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
        if not match and setting.names and _PORT_NAME.match(part):
            continue  # a container port's name, resolved against the pod when rendering
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


def _parse_duration(raw: str, setting: Setting) -> float:
    """Seconds, from a Go duration (`300ms`, `1m30s`, `0`)."""
    text = raw.strip()
    sign = -1.0 if text.startswith("-") else 1.0
    body = text.lstrip("+-")
    if body == "0":
        return 0.0
    total, position = 0.0, 0
    while position < len(body):
        match = _DURATION_PART.match(body, position)
        if not match or match.group(1) in ("", "."):
            raise SettingError("not a duration")
        total += float(match.group(1)) * _DURATION_UNITS[match.group(2)]
        position = match.end()
    if not body:
        raise SettingError("not a duration")
    value = sign * total
    if setting.minimum is not None and value < setting.minimum:
        raise SettingError(f"below the minimum {setting.minimum}s")
    return value


def _parse_float(raw: str, setting: Setting) -> float:
    text = raw.strip()
    if not _FLOAT.match(text):
        raise SettingError("not a number")
    value = float(text)
    low, high = setting.minimum, setting.maximum
    if setting.exclusive:
        if (low is not None and value <= low) or (high is not None and value >= high):
            raise SettingError(f"not strictly between {low} and {high}")
    elif (low is not None and value < low) or (high is not None and value > high):
        raise SettingError(f"out of the range {low} to {high}")
    return value


def _parse_env(raw: str, setting: Setting) -> list[dict[str, Any]]:
    """A JSON list of Kubernetes EnvVar objects: each a mapping with a string `name`."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise SettingError("not JSON") from None
    if not isinstance(value, list) or not all(isinstance(e, dict) and isinstance(e.get("name"), str) and e["name"] for e in value):
        raise SettingError("not a list of env vars, each with a name")
    for entry in value:
        if set(entry) - {"name", "value", "valueFrom"} or not isinstance(entry.get("value", ""), str) or not isinstance(entry.get("valueFrom", {}), dict):
            raise SettingError(f"env var {entry['name']!r} takes only name, value (a string) and valueFrom (a mapping)")
    return value


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
        lambda s: "a comma-separated list of ports or ranges (8080,9000-9100)"
        + (", or container port names" if s.names else "")
        + (' or "*"' if s.wildcard else ""),
    ),
    "cidrs": SettingType(
        _parse_cidrs,
        lambda s: "a comma-separated list of CIDRs (10.0.0.0/8,fd00::/8)" + (' or "*"' if s.wildcard else ""),
    ),
    "cpu": SettingType(_parse_cpu, lambda s: "a CPU quantity such as 100m or 2"),
    "memory": SettingType(_parse_memory, lambda s: "a memory quantity such as 128Mi or 1Gi"),
    "image": SettingType(_parse_image, lambda s: "an image reference from an allowed registry"),
    "bool": SettingType(_parse_bool, lambda s: "true or false"),
    "duration": SettingType(_parse_duration, lambda s: "a duration such as 300ms, 5s or 1m30s"),
    "float": SettingType(
        _parse_float,
        lambda s: "a number" + (f" strictly between {s.minimum} and {s.maximum}" if s.exclusive else _bounds(s)),
    ),
    "env": SettingType(_parse_env, lambda s: 'a JSON list of env vars such as [{"name":"A","value":"1"}]'),
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
    minimum: float | None = None
    maximum: float | None = None
    wildcard: bool = False
    description: str = ""
    names: bool = False  # ports: container port names are accepted too
    exclusive: bool = False  # float: the bounds themselves are out of range
    namespace: bool | frozenset[str] = True  # also read on the namespace (all keys, or these), as the default for its pods

    def on_namespace(self, key: str) -> bool:
        """Whether `key` is also read on the namespace."""
        return self.namespace if isinstance(self.namespace, bool) else key in self.namespace

    def parse(self, raw: str) -> Any:
        """Parse one raw annotation value; raises SettingError."""
        return TYPES[self.type].parse(raw, self)

    def accepts(self) -> str:
        """What values this setting accepts, for error messages and `meshswitch plugins`."""
        return TYPES[self.type].accepts(self)


_SETTING_FIELDS = frozenset(
    {"keys", "key", "type", "default", "choices", "pattern", "min", "max", "wildcard", "description", "names", "exclusive", "namespace"}
)


def _namespace_keys(raw: Any, keys: Sequence[str], *, name: str, where: str) -> bool | frozenset[str]:
    if isinstance(raw, bool):
        return raw
    if not isinstance(raw, list) or not set(raw) <= set(keys):
        raise ConfigError(f"{where}: setting {name!r}: namespace is true, false or a list of its keys")
    return frozenset(raw)


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
        names=bool(spec.get("names", False)),
        exclusive=bool(spec.get("exclusive", False)),
        namespace=_namespace_keys(spec.get("namespace", True), keys, name=name, where=where),
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
