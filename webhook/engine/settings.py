"""Per-pod settings a plugin declares: their types, parsing, and the messages for bad values."""

from __future__ import annotations

import ipaddress
import re

import yaml
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson

from webhook.engine.errors import ConfigError
from webhook.engine.releases import load_lines
from webhook.engine.yamltext import load as load_yaml_text, quoted_scalar


class SettingError(ValueError):
    """A value did not parse; the message says what is accepted."""


# A Kubernetes quantity (resource.ParseQuantity, which Istio, Linkerd and Dapr all use): a number
# (`1`, `1.5`, `.5`, `1.`), then a binary or decimal suffix or an exponent. No sign but `+`: the API
# server refuses a negative request or limit.
_QUANTITY = re.compile(r"^\+?([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:([eE][+-]?[0-9]+)|(Ki|Mi|Gi|Ti|Pi|Ei|n|u|m|k|M|G|T|P|E))?$")
_QUANTITY_SUFFIXES = {
    None: 1.0, "n": 1e-9, "u": 1e-6, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "P": 1e15, "E": 1e18,
    "Ki": 2.0**10, "Mi": 2.0**20, "Gi": 2.0**30, "Ti": 2.0**40, "Pi": 2.0**50, "Ei": 2.0**60,
}  # fmt: skip
# name[:tag][@digest]: each path component lower-case, as the distribution spec says.
_IMAGE = re.compile(
    r"^(?:[a-zA-Z0-9.-]+(?::[0-9]+)?/)?[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*"
    r"(?::[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(?:@sha256:[a-f0-9]{64})?$"
)
_PORT_RANGE = re.compile(r"^([0-9]{1,5})(?:-([0-9]{1,5}))?$")
# As Go's strconv.Atoi reads each bound (Linkerd's ParsePortRange): a leading + and zeros too.
_PORT_RANGE_PLUS = re.compile(r"^\+?0*([0-9]{1,5})(?:-\+?0*([0-9]{1,5}))?$")
# An IANA service name, as a container port's `name` (Kubernetes: at most 15, a letter somewhere).
_PORT_NAME = re.compile(r"^(?=.*[a-z])[a-z0-9]([a-z0-9-]{0,13}[a-z0-9])?$")
# Go's time.ParseDuration: a sequence of decimal numbers with units, optionally signed; each unit
# in nanoseconds, as Go counts a Duration.
_DURATION_PART = re.compile(r"([0-9]*)(?:\.([0-9]*))?(ns|us|µs|μs|ms|s|m|h)")
_DURATION_UNITS = {"ns": 1, "us": 10**3, "µs": 10**3, "μs": 10**3, "ms": 10**6, "s": 10**9, "m": 60 * 10**9, "h": 3600 * 10**9}
_DURATION_MAX = 2**63  # Go's int64 nanoseconds
# Go's strconv.ParseFloat: decimal, or hexadecimal with a binary exponent (`0x1p-2`); an underscore
# only between digits, or after the 0x prefix (`0.2_5`, `0x_1p-2`). Infinity and NaN are left out:
# no setting takes them.
_DIGITS = r"[0-9](?:_?[0-9])*"
_HEX_DIGITS = r"[0-9a-fA-F](?:_?[0-9a-fA-F])*"
_FLOAT = re.compile(
    rf"[+-]?(?:(?:{_DIGITS}(?:\.(?:{_DIGITS})?)?|\.{_DIGITS})(?:[eE][+-]?{_DIGITS})?"
    rf"|0[xX](?:_?{_HEX_DIGITS}(?:\.(?:{_HEX_DIGITS})?)?|\.{_HEX_DIGITS})[pP][+-]?{_DIGITS})"
)
# ASCII digits only: str.isdigit() and int() also take "¹" or "٣", which no Kubernetes field does.
_INTEGER = re.compile(r"^[+-]?[0-9]{1,18}$")
# A whole number as Go's strconv.ParseInt reads it (base 10): a sign, then ASCII digits, leading
# zeros allowed; the meshes read their integer and port keys with it.
_WHOLE = re.compile(r"[+-]?[0-9]+")
# Kubernetes integer fields are int32 unless a plugin declares a narrower range, or `bits: 64` for a
# value that lands in a Go int64 (a daprd flag), not a Kubernetes field.
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
INT_BITS = (32, 64)
PATTERNED_STRING_LENGTH = 1024
# A refusal quotes at most this much of a value: enough to recognise it, never the whole of it.
SHOWN_CHARS = 64
# Fast paths over a whole list, in C: a plain list of ports, and IPv4 CIDRs. A list they do not
# match goes through the part-by-part checks, which also say which part is wrong.
_PORT_LIST = re.compile(r"[0-9]{1,5}(?:,[0-9]{1,5})*,?")
_OCTET = r"(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_IPV4_CIDR = rf"{_OCTET}(?:\.{_OCTET}){{3}}(?:/(?:3[0-2]|[12]?[0-9]))?"
_IPV4_CIDR_LIST = re.compile(rf"\s*{_IPV4_CIDR}\s*(?:,\s*{_IPV4_CIDR}\s*)*,?\s*")
_BLANK = re.compile(r"\s")
# Go's unicode.IsSpace, what strings.TrimSpace drops: Python's str.isspace() less \x1c-\x1f, which
# Python counts as separators and Go keeps.
GO_SPACE = "\t\n\v\f\r \x85\xa0\u1680" + "".join(map(chr, range(0x2000, 0x200B))) + "\u2028\u2029\u202f\u205f\u3000"
# Go's strconv.ParseBool, which the meshes' injectors call: exactly these spellings, nothing trimmed.
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_FALSE = frozenset({"0", "f", "F", "FALSE", "false", "False"})
_TRUTHY = frozenset({"true", "t", "yes", "y", "on", "1"})


def go_trim(text: str) -> str:
    """Go's strings.TrimSpace."""
    return text.strip(GO_SPACE)


def show(value: str) -> str:
    """A client's value for a message: quoted, cut to a short prefix, with its length when cut."""
    if len(value) <= SHOWN_CHARS:
        return repr(value)
    return f"{value[:SHOWN_CHARS]!r}... ({len(value)} characters)"


# A value parsed from an annotation (YAML or JSON) is walked before it reaches a pod. No Kubernetes
# field nests this deep, and the JSON encoder of the answer stops at 254 levels. A YAML alias is
# counted at each use: written out, each use is a copy, so a short text could become gigabytes.
MAX_NESTING = 64
MAX_VALUES = 20_000


def nesting_problem(value: Any) -> str | None:
    """Why a parsed value is too deep or too large to write into a pod, or None."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    counted = 0
    while stack:
        item, depth = stack.pop()
        counted += 1
        if counted > MAX_VALUES:
            return f"holding more than {MAX_VALUES} values (each use of a YAML alias counted)"
        if type(item) is dict or isinstance(item, dict):
            children: Any = item.values()
        elif type(item) is list or isinstance(item, list):
            children = item
        else:
            continue
        if depth >= MAX_NESTING and children:
            return f"nested deeper than {MAX_NESTING} levels"
        stack.extend((child, depth + 1) for child in children)
    return None


def _whole(text: str) -> int | None:
    """A whole number as strconv.ParseInt reads it, or None. Past 20 significant digits (beyond
    uint64, out of any field's range) it reads as 10**20, so no long text is converted."""
    if not _WHOLE.fullmatch(text):
        return None
    digits = text.lstrip("+-").lstrip("0")
    value = int(digits or "0") if len(digits) <= 20 else 10**20
    return -value if text[0] == "-" else value


def _parse_int(raw: str, setting: Setting) -> int:
    text = raw.strip()
    value = _whole(text)
    if value is None or (setting.unsigned and not text[0].isdigit()):  # strconv.ParseUint: no sign
        raise SettingError("not a whole number" + (" without a sign" if setting.unsigned and value is not None else ""))
    low, high = setting.bounds
    if value < low:
        raise SettingError(f"below the minimum {low}")
    if value > high:
        raise SettingError(f"above the maximum {high}")
    return value


def _parse_port(raw: str, setting: Setting) -> int:
    # The meshes that declare a port (Dapr, Linkerd) read it with strconv.ParseInt: `+50011` and
    # `009091` are ports.
    value = _whole(raw.strip())
    if value is None or not 1 <= value <= 65535:
        raise SettingError("not a port number")
    return value


def _split_list(raw: str) -> list[str]:
    if _BLANK.search(raw) is None:  # the usual case, and twice as fast on long lists
        return [part for part in raw.split(",") if part]
    return [part.strip() for part in raw.split(",") if part.strip()]


def _strict_ports(raw: str) -> list[str]:
    """A port list as Istio's validator reads it (parsePorts): blanks around the list and each item
    trimmed, every item a port number; no range, no empty item."""
    text = go_trim(raw)
    parts = [go_trim(part) for part in text.split(",")] if text else []
    for part in parts:
        value = _whole(part) if part.isascii() and part.isdigit() else None
        if value is None or not 1 <= value <= 65535:
            raise SettingError(f"a list whose item {show(part)} is not a port number")
    return parts


def _parse_ports(raw: str, setting: Setting) -> list[str]:
    if setting.strict:
        return ["*"] if raw == "*" and setting.wildcard else _strict_ports(raw)
    parts = _split_list(raw)
    if parts == ["*"] and setting.wildcard:
        return parts
    lowest = setting.lowest_port
    if _PORT_LIST.fullmatch(raw):
        numbers = list(map(int, parts))
        if numbers and min(numbers) >= lowest and max(numbers) <= 65535:
            return parts
    grammar = _PORT_RANGE_PLUS if setting.plus_sign else _PORT_RANGE
    for part in parts:
        match = grammar.match(part)
        if not match and setting.names and _PORT_NAME.match(part):
            continue  # a container port's name, resolved against the pod when rendering
        if not match:
            raise SettingError(f"a list whose item {show(part)} is not a port or port range")
        low = int(match.group(1))
        high = int(match.group(2) or low)
        if not (lowest <= low <= 65535 and lowest <= high <= 65535):
            raise SettingError(f"a list whose item {show(part)} is out of the range {lowest}-65535")
        if high < low:
            raise SettingError(f"a list whose item {show(part)} is a range whose upper bound is below its lower bound")
    return parts


# Go's netip.ParsePrefix: an address, a slash and a mask length in decimal without leading zeros.
_GO_PREFIX_BITS = re.compile(r"0|[1-9][0-9]{0,2}")


def _strict_cidrs(raw: str) -> list[str]:
    """A CIDR list as Istio's validator reads it: each comma-separated item exactly as Go's
    netip.ParsePrefix takes it (nothing trimmed, a mask length, no zone); no empty item."""
    parts = raw.split(",") if raw else []
    for part in parts:
        address, slash, bits = part.rpartition("/")
        try:
            valid = bool(slash) and "%" not in address and _GO_PREFIX_BITS.fullmatch(bits) is not None
            valid = valid and int(bits) <= ipaddress.ip_address(address).max_prefixlen
        except ValueError:
            valid = False
        if not valid:
            raise SettingError(f"a list whose item {show(part)} is not a CIDR (an address and a mask length)")
    return parts


def _parse_cidrs(raw: str, setting: Setting) -> list[str]:
    if setting.strict:
        return ["*"] if raw == "*" and setting.wildcard else _strict_cidrs(raw)
    parts = _split_list(raw)
    if parts == ["*"] and setting.wildcard:
        return parts
    if _IPV4_CIDR_LIST.fullmatch(raw):
        return parts
    for part in parts:
        try:
            ipaddress.ip_network(part, strict=False)
        except ValueError:
            raise SettingError(f"a list whose item {show(part)} is not a CIDR") from None
    return parts


def quantity(text: str) -> float | None:
    """The value of a Kubernetes quantity (`100m` is 0.1, `1Ki` 1024, `1e3` 1000), or None."""
    match = _QUANTITY.match(text)
    if match is None:
        return None
    number, exponent, suffix = match.groups()
    if exponent is not None:
        return float(number + exponent)  # a huge exponent gives inf, never an error
    return float(number) * _QUANTITY_SUFFIXES[suffix]


def _parse_cpu(raw: str, setting: Setting) -> str:
    text = raw if setting.strict else raw.strip()
    if quantity(text) is None:
        raise SettingError("not a CPU quantity")
    return text


def _parse_memory(raw: str, setting: Setting) -> str:
    text = raw if setting.strict else raw.strip()
    if quantity(text) is None:
        raise SettingError("not a memory quantity")
    return text


def _parse_bool(raw: str, setting: Setting) -> bool:
    if raw in _TRUE:
        return True
    if raw in _FALSE:
        return False
    raise SettingError("not a boolean")


def _parse_truthy(raw: str, setting: Setting) -> bool:
    # Go-style truthiness (Dapr's kit IsTruthy): any other value is false, never an error.
    return go_trim(raw).lower() in _TRUTHY


# A comma starts a new assignment only when a NAME= follows it, so commas inside values survive.
# Blanks between are Go's RE2 \s, ASCII only: a no-break space after the comma splits nothing.
_ASSIGNMENT_START = re.compile(r",[\t\n\f\r ]*(?=[A-Za-z_][A-Za-z0-9_]*=)")


def _parse_assignments(raw: str, setting: Setting) -> list[list[str]]:
    """`A=1,B=x,y` -> [["A", "1"], ["B", "x,y"]]; parts without `=` are dropped, never an error."""
    pairs = []
    for part in _ASSIGNMENT_START.split(raw) if raw else ():
        name, found, value = go_trim(part).partition("=")
        if found:
            pairs.append([name, value])
    return pairs


def _parse_pairs(raw: str, setting: Setting) -> list[list[str]]:
    """`a:/x,b:/y` -> [["a", "/x"], ["b", "/y"]]; an item that is not exactly two parts is dropped."""
    pairs = []
    for item in raw.split(","):
        parts = go_trim(item).split(setting.separator)
        if len(parts) == 2:
            pairs.append(parts)
    return pairs


def _parse_enum(raw: str, setting: Setting) -> str:
    text = raw if setting.strict else raw.strip()
    if text not in setting.choices:
        raise SettingError("not one of the choices")
    return text


def _parse_names(raw: str, setting: Setting) -> list[str]:
    """`sidecar, gateway` -> ["sidecar", "gateway"]: blanks around each name are Go's TrimSpace ones;
    each name must be one of the choices, in the order given."""
    names = [go_trim(item) for item in raw.split(",")]
    for name in names:
        if name not in setting.choices:
            raise SettingError(f"a list naming {show(name)}, not one of the choices")
    return names


def _parse_string(raw: str, setting: Setting) -> str:
    if setting.pattern is not None and not setting.pattern.fullmatch(raw):
        raise SettingError("not of the accepted form")
    return raw


def _parse_image(raw: str, setting: Setting) -> str:
    text = raw.strip()
    if len(text) > 512 or not _IMAGE.match(text):
        raise SettingError("not an image reference")
    return text


def _parse_mapping(raw: str, setting: Setting) -> dict[str, Any]:
    # YAML is a superset of JSON, so both spellings a mesh accepts parse here; the result is data.
    try:
        value = load_yaml_text(raw)
    except yaml.YAMLError:
        raise SettingError("not YAML or JSON") from None
    except RecursionError:  # building the objects recurses once per level
        raise SettingError(f"a mapping nested deeper than {MAX_NESTING} levels") from None
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise SettingError("not a mapping")
    if (problem := nesting_problem(value)) is not None:
        raise SettingError(f"a mapping {problem}")
    mapping: dict[str, Any] = value
    if setting.proto_names:
        mapping = _json_names(mapping, messages=_message_paths(setting.fields))
    for group in setting.oneofs:
        # A protobuf oneof, as Istio's decoder fills it: members in declaration order, so of two set,
        # the one declared (and listed) last is kept. Members are fields of one message (`tracing.zipkin`).
        holder, _ = _field_holder(mapping, group[0])
        if holder is None:
            continue
        members = [member.rsplit(".", 1)[-1] for member in group]
        present = [name for name in members if holder.get(name) is not None]  # a null member is no member
        for name in present[:-1]:
            del holder[name]
    for path, kind in setting.fields.items():
        holder, name = _field_holder(mapping, path)
        if holder is not None:
            _check_field(holder, name, kind, shown=path)
    return mapping


def _field_holder(mapping: dict[str, Any], path: str) -> tuple[dict[str, Any] | None, str]:
    """The mapping that holds a dotted path's last field (None where a parent on the way is not a
    mapping), and that field's name."""
    *parents, name = path.split(".")
    where: Any = mapping
    for parent in parents:
        where = where.get(parent) if isinstance(where, dict) else None
    return (where if isinstance(where, dict) else None), name


# Kinds of a field that is itself a message (its fields are named as protojson names them).
_MESSAGE_KINDS = frozenset({"mapping", "message", "client TLS settings", "private key provider"})


def _message_paths(fields: Mapping[str, Any]) -> frozenset[str]:
    """The nested messages of a mapping's typed fields: each typed one and each parent of a dotted
    field (`tracing` and `tracing.tlsSettings` for `tracing.tlsSettings.mode`), never a map field."""
    paths = {path for path, kind in fields.items() if kind in _MESSAGE_KINDS}
    for path in fields:
        parts = path.split(".")
        paths.update(".".join(parts[:n]) for n in range(1, len(parts)))
    return frozenset(paths)


def _json_names(value: dict[str, Any], *, messages: frozenset[str], at: str = "") -> dict[str, Any]:
    """A ProxyConfig as protojson reads it: a field may be spelled by its proto name (snake_case) or
    its JSON name (lowerCamelCase); both become the JSON name, at the top and in the nested
    `messages` (not in a map field, whose keys are data). A field spelled both ways is refused."""
    renamed: dict[str, Any] = {}
    for key, item in value.items():
        name = _SNAKE_PART.sub(lambda m: m.group(1).upper(), key) if isinstance(key, str) else key
        if name in renamed:
            raise SettingError(f"a mapping that sets {at}{name} twice")
        path = f"{at}{name}"
        renamed[name] = _json_names(item, messages=messages, at=f"{path}.") if path in messages and isinstance(item, dict) else item
    return renamed


_SNAKE_PART = re.compile(r"_([a-z0-9])")


def _check_field(value: dict[str, Any], name: str, kind: str | tuple[str, ...], *, shown: str) -> None:
    """One typed field of a parsed mapping, checked (and written back as Istio writes it)."""
    if value.get(name) is None and kind in _REQUIRED_KINDS:
        # A message given (`zipkin: {}`, `cryptomb: {}`) is checked with this field empty or unset.
        raise SettingError(f"a mapping whose {shown} is missing; {shown} is {_REQUIRED_KINDS[kind]}")
    if name not in value:
        return
    if value[name] is None:
        del value[name]  # null leaves the field unset, as Istio's decoder does
    elif isinstance(kind, tuple):
        # A protobuf enum, as protojson reads it: its name exactly, or its number; written as the name.
        item = value[name]
        if isinstance(item, int) and not isinstance(item, bool) and 0 <= item < len(kind):
            value[name] = kind[item]
        elif not isinstance(item, str) or item not in kind:
            raise SettingError(f"a mapping whose {shown} is not one of {', '.join(kind)} (or its number)")
    elif kind == "int":
        number = _whole_int32(value[name])
        if number is None:
            raise SettingError(f"a mapping whose {shown} is not int (a whole number from {INT32_MIN} to {INT32_MAX})")
        value[name] = number  # written as the number Istio writes back (`'2'` and `2.0` are 2)
    elif kind == "port":
        number = _whole_int32(value[name])
        if number is None or not 1 <= number <= 65535:
            raise SettingError(f"a mapping whose {shown} is not a port (a whole number from 1 to 65535)")
        value[name] = number
    elif kind in ("duration", "duration in whole seconds"):
        value[name] = _proto_duration(value[name], whole_seconds=kind != "duration", shown=shown)
    elif kind in _ADDRESS_KINDS:
        item = value[name]
        problem = "not text" if not isinstance(item, str) else _proxy_address_problem(item, kind)
        if problem is not None:
            raise SettingError(f"a mapping whose {shown} is {problem}; {shown} is {_ADDRESS_KINDS[kind]}")
    elif kind in ("non-empty string", "required non-empty string") and not _FIELD_TYPES[kind](value[name]):
        raise SettingError(f"a mapping whose {shown} is {'empty' if value[name] == '' else 'not text'}; {shown} is a non-empty string")
    elif kind == "required non-zero duration":
        value[name] = _proto_duration(value[name], whole_seconds=False, shown=shown)
        if _go_duration_ns(value[name]) == 0:
            raise SettingError(f"a mapping whose {shown} is zero; {shown} is {_REQUIRED_KINDS[kind]}")
    elif kind == "map of messages":
        # A map whose values are messages: null is an empty one, as Istio's decoder reads it.
        if not isinstance(value[name], dict) or not all(item is None or isinstance(item, dict) for item in value[name].values()):
            raise SettingError(f"a mapping whose {shown} is not a mapping of mappings")
        value[name] = {key: {} if item is None else item for key, item in value[name].items()}
    elif kind == "private key provider":
        if not isinstance(value[name], dict):
            raise SettingError(f"a mapping whose {shown} is not a mapping")
        if not any(isinstance(value[name].get(provider), dict) for provider in ("cryptomb", "qat")):
            raise SettingError(f"a mapping whose {shown} names no provider; {shown} is cryptomb or qat, with a non-zero pollDelay")
    elif kind == "client TLS settings":
        if not isinstance(value[name], dict):
            raise SettingError(f"a mapping whose {shown} is not a mapping")
        value[name] = _client_tls_settings(value[name], shown=shown)
    elif not _FIELD_TYPES[kind](value[name]):
        raise SettingError(f"a mapping whose {shown} is not {'a mapping' if kind == 'message' else kind}")


def _client_tls_settings(tls: dict[str, Any], *, shown: str) -> dict[str, Any]:
    """A ClientTLSSettings (its fields typed already) as Istio's ValidateTLS reads it for the tracer:
    refused where it would be, else written back as protojson writes it (empty fields, an empty
    list and mode DISABLE left out)."""
    mode = tls.get("mode", "DISABLE")
    has = {field: bool(tls.get(field)) for field in ("clientCertificate", "privateKey", "caCertificates", "credentialName", "subjectAltNames", "caCrl")}
    if str(tls.get("credentialName", "")).startswith("configmap://"):
        raise SettingError(f"a mapping whose {shown}.credentialName is a configmap:// reference, which Istio does not accept for the tracer")
    if tls.get("insecureSkipVerify") is True:
        if mode == "SIMPLE" and (has["caCertificates"] or has["credentialName"] or has["subjectAltNames"]):
            raise SettingError(f"a mapping whose {shown} sets insecureSkipVerify with caCertificates, credentialName or subjectAltNames; in SIMPLE mode it takes none of them")
        if mode == "MUTUAL" and (has["caCertificates"] or has["subjectAltNames"]):
            raise SettingError(f"a mapping whose {shown} sets insecureSkipVerify with caCertificates or subjectAltNames; in MUTUAL mode it takes neither")
    if mode in ("SIMPLE", "MUTUAL") and has["credentialName"]:
        if has["clientCertificate"] or has["caCertificates"] or has["privateKey"] or has["caCrl"]:
            raise SettingError(
                f"a mapping whose {shown} sets credentialName with clientCertificate, privateKey, caCertificates or caCrl; with credentialName it takes none of them"
            )
    elif mode == "MUTUAL" and not (has["clientCertificate"] and has["privateKey"]):
        raise SettingError(f"a mapping whose {shown} is in MUTUAL mode without clientCertificate and privateKey; MUTUAL needs both (or credentialName)")
    return {key: item for key, item in tls.items() if item not in ("", []) and not (key == "mode" and item == "DISABLE")}


# Fields a message must set once it is given (the validator reads an unset one as empty), with what they take.
_REQUIRED_KINDS = {
    "tracer address": "a host:port (a DNS name, an IP address or $(HOST_IP), and a port from 1 to 65535)",
    "required address": "a host:port (a DNS name or an IP address, and a port from 1 to 65535)",
    "required non-empty string": "a non-empty string",
    "required non-zero duration": "a non-zero duration, such as 10ms or 1s",
}

# The host:port fields of Istio's ProxyConfig, as its validator (ValidateProxyAddress) reads them.
_ADDRESS_KINDS = {
    "address": "a host:port (a DNS name or an IP address, and a port from 1 to 65535)",
    "required address": "a host:port (a DNS name or an IP address, and a port from 1 to 65535)",
    "address or empty": "a host:port (a DNS name or an IP address, and a port from 1 to 65535), or empty",
    # Istio puts 127.0.0.1 for the first $(HOST_IP) before it checks a Zipkin or Datadog address.
    "tracer address": "a host:port (a DNS name, an IP address or $(HOST_IP), and a port from 1 to 65535)",
}
_DNS_LABEL = re.compile(r"[a-zA-Z0-9](?:[-a-zA-Z0-9]*[a-zA-Z0-9])?\Z")
_GO_ATOI = re.compile(r"[+-]?[0-9]+\Z")


def _proxy_address_problem(text: str, kind: str) -> str | None:
    """Why Istio's ValidateProxyAddress refuses a host:port (Go's net.SplitHostPort, strconv.Atoi,
    a port from 1 to 65535, then a DNS name or an IP address), or None."""
    if kind == "address or empty" and text == "":
        return None
    if kind == "tracer address":
        text = text.replace("$(HOST_IP)", "127.0.0.1", 1)
    colon = text.rfind(":")
    if colon < 0:
        return "without a port" if text else "empty"
    if text.startswith("["):
        end = text.find("]")
        if end < 0 or end + 1 != colon:
            return "not a host:port"
        host, rest = text[1:end], text[end + 1 :]
        if "[" in text[1:] or "]" in rest:
            return "not a host:port"
    else:
        host = text[:colon]
        if ":" in host or "[" in text or "]" in text:
            return "not a host:port (an IPv6 address goes in brackets)"
    port = text[colon + 1 :]
    if not _GO_ATOI.match(port) or not 1 <= int(port) <= 65535:
        return "with a port that is not a number from 1 to 65535"
    if _dns_name(host) or _ip_address(host):
        return None
    return "not a DNS name or an IP address before the port"


def _dns_name(host: str) -> bool:
    """Istio's ValidateFQDN: at most 255 characters, DNS-1123 labels (a trailing dot allowed), the
    last one not all digits."""
    if not host or len(host) > 255 or _GO_ATOI.match(host.rsplit(".", 1)[-1]):
        return False
    labels = host[:-1].split(".") if host.endswith(".") else host.split(".")
    return all(len(label) <= 63 and _DNS_LABEL.match(label) for label in labels)


def _ip_address(host: str) -> bool:
    """Go's netip.ParseAddr: an IPv4 address without leading zeros, or an IPv6 one (a zone too)."""
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _proto_duration(value: Any, *, whole_seconds: bool, shown: str) -> str:
    """A google.protobuf.Duration field as Istio's decoder reads it (Go's time.ParseDuration of a
    string), written back as protojson writes it (`1m30s` is `90s`, `1.5s` is `1.500s`). A drain
    duration must also be whole seconds, at least one (Istio's ValidateDrainDuration)."""
    accepted = "a duration of whole seconds, at least 1s (such as 45s or 1m)" if whole_seconds else "a duration such as 5s, 1.5s or 1m30s"
    nanoseconds = _go_duration_ns(value) if isinstance(value, str) else None
    if nanoseconds is None or (whole_seconds and (nanoseconds < 10**9 or nanoseconds % 10**9)):
        raise SettingError(f"a mapping whose {shown} is not {accepted}")
    seconds, nanos = divmod(abs(nanoseconds), 10**9)
    text = ("-" if nanoseconds < 0 else "") + str(seconds)
    if nanos:
        fraction = f"{nanos:09d}"
        while fraction.endswith("000"):
            fraction = fraction[:-3]
        text += "." + fraction
    return text + "s"


def _go_duration_ns(text: str) -> int | None:
    """Signed nanoseconds of a Go duration as time.ParseDuration reads it (no blanks), or None."""
    negative = text.startswith("-")
    body = text[1:] if text[:1] in ("-", "+") else text
    if body == "0":
        return 0
    if not body:
        return None
    try:
        nanoseconds = _go_nanoseconds(body)
    except SettingError:
        return None
    if not negative and nanoseconds == _DURATION_MAX:
        return None
    return -nanoseconds if negative else nanoseconds


def _whole_int32(value: Any) -> int | None:
    """An int32 field's value as Istio's ProxyConfig decoder takes it: a whole number (`2.0` too),
    or a string holding one (`'2'`, `' 2'`); None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    elif isinstance(value, str) and _INTEGER.match(value.strip()):
        value = int(value.strip())
    if isinstance(value, int) and INT32_MIN <= value <= INT32_MAX:
        return value
    return None



_FIELD_TYPES: Mapping[str, Callable[[Any], bool]] = {
    "int": lambda v: _whole_int32(v) is not None,
    "bool": lambda v: isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "mapping": lambda v: isinstance(v, dict),
    "mapping of strings": lambda v: isinstance(v, dict) and all(isinstance(item, str) for item in v.values()),
    # Text a mesh writes inside a double-quoted YAML string of its template (Istio's proxyMetadata
    # env values): a bare quote or an unknown escape fails its injection; other text is read as YAML
    # reads it (the template's filter `yaml_quoted` does the same).
    "mapping of double-quoted YAML strings": lambda v: isinstance(v, dict)
    and all(isinstance(item, str) and quoted_scalar(item) is not None for item in v.values()),
    "list": lambda v: isinstance(v, list),
    "list of strings": lambda v: isinstance(v, list) and all(isinstance(item, str) for item in v),
    "non-empty string": lambda v: isinstance(v, str) and v != "",
    "required non-empty string": lambda v: isinstance(v, str) and v != "",
    "message": lambda v: isinstance(v, dict),
    # Checked in _check_field (each is written back as Istio writes it, or refused with its own words).
    "port": lambda v: True,
    "duration": lambda v: True,
    "duration in whole seconds": lambda v: True,
    "required non-zero duration": lambda v: True,
    "map of messages": lambda v: True,
    "private key provider": lambda v: True,
    "client TLS settings": lambda v: True,
    **{kind: (lambda v: True) for kind in _ADDRESS_KINDS},
}


def _go_nanoseconds(body: str) -> int:
    """Nanoseconds of an unsigned Go duration, as time.ParseDuration adds them up: whole digits
    exactly, a fraction through float64 (so `1.0000000001s` is what Go makes of it)."""
    total, position = 0, 0
    while position < len(body):
        match = _DURATION_PART.match(body, position)
        if not match or not (match.group(1) or match.group(2)):
            raise SettingError("not a duration")
        whole, fraction, unit = match.group(1), match.group(2) or "", _DURATION_UNITS[match.group(3)]
        digits = fraction[:18]  # Go stops taking fraction digits before they overflow an int64
        value = int(whole or "0") * unit
        if digits and int(digits):
            value += int(float(int(digits)) * (float(unit) / float(10 ** len(digits))))
        total += value
        if total > _DURATION_MAX:
            raise SettingError("out of the range of a Go duration (about 292 years)")
        position = match.end()
    return total


def _parse_duration(raw: str, setting: Setting) -> float:
    """Seconds, from a Go duration (`300ms`, `1m30s`, `0`), as Go's Duration.Seconds() gives them:
    whole seconds plus the nanoseconds over 1e9, in float64 (`1.36s` is 1.3599999999999999)."""
    text = raw.strip()
    negative = text.startswith("-")
    body = text[1:] if text[:1] in ("-", "+") else text
    if body == "0":
        return 0.0
    if not body:
        raise SettingError("not a duration")
    nanoseconds = _go_nanoseconds(body)
    if not negative and nanoseconds == _DURATION_MAX:
        raise SettingError("out of the range of a Go duration (about 292 years)")
    seconds, rest = divmod(nanoseconds, 10**9)
    value = float(seconds) + float(rest) / 1e9
    value = -value if negative else value
    if setting.minimum is not None and value < setting.minimum:
        raise SettingError(f"below the minimum {setting.minimum}s")
    return value


def _parse_float(raw: str, setting: Setting) -> float:
    text = raw.strip()
    if not _FLOAT.fullmatch(text):
        raise SettingError("not a number")
    plain = text.replace("_", "")
    value = float.fromhex(plain) if "x" in plain or "X" in plain else float(plain)
    low, high = setting.minimum, setting.maximum
    if setting.exclusive:
        if (low is not None and value <= low) or (high is not None and value >= high):
            raise SettingError(f"not strictly between {low} and {high}")
    elif (low is not None and value < low) or (high is not None and value > high):
        raise SettingError(f"out of the range {low} to {high}")
    return value


def _parse_env(raw: str, setting: Setting) -> list[dict[str, Any]]:
    """A JSON list of Kubernetes EnvVar objects, each with a name, typed as Go reads an EnvVar
    (a field Go does not know is dropped, as the mesh drops it)."""
    from webhook.engine.schema import TypeMismatch, conform  # schema reads this module's quantity grammar

    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise SettingError("not JSON") from None
    if not isinstance(value, list):
        raise SettingError("not a list of env vars, each with a name")
    if (problem := nesting_problem(value)) is not None:
        raise SettingError(f"a list {problem}")
    try:
        env = conform(value, "[EnvVar]")
    except TypeMismatch as err:
        raise SettingError(f"not a list of env vars: {err}") from None
    if not all(isinstance(e, dict) and e.get("name") for e in env):
        raise SettingError("not a list of env vars, each with a name")
    return env  # type: ignore[no-any-return]


def _parse_named(raw: str, setting: Setting) -> list[dict[str, Any]]:
    """Kubernetes objects that each carry a `name` (volumes, volume mounts), from a JSON map of name
    to object (in sorted name order, as a Go template ranges over a map) or a JSON list of objects
    (each named by its index); an object's own `name` wins over either. Null is no objects."""
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise SettingError("not JSON") from None
    if value is None:
        return []
    if isinstance(value, dict):
        entries = sorted(value.items())
    elif isinstance(value, list):
        entries = [(str(index), item) for index, item in enumerate(value)]
    else:
        raise SettingError("neither a JSON map nor a JSON list")
    if (problem := nesting_problem(value)) is not None:
        raise SettingError(f"JSON {problem}")
    from webhook.engine.schema import TypeMismatch, conform  # schema reads this module's quantity grammar

    named = []
    for key, item in entries:
        if not isinstance(item, dict) or not item:
            raise SettingError(f"JSON whose entry {show(key)} is not a non-empty object")
        name = item.get("name", key)
        if not isinstance(name, str):
            raise SettingError(f"JSON whose entry {show(key)} has a name that is not a string")
        entry = {"name": name, **{k: _as_go_writes(v) for k, v in item.items() if k != "name" and v is not None}}
        if setting.object_kind is not None:
            # As Go reads it into the pod: a field of the wrong type fails there, one Go does not
            # know is dropped (an annotation cannot add a field). Istio's template read the value
            # as float64 first (fromJSON), so 4.2e2 is 420.
            try:
                entry = conform(entry, setting.object_kind, at=key, float64=True)
            except TypeMismatch as err:
                raise SettingError(f"JSON whose entry {err}") from None
        named.append(entry)
    return named


# Go's encoding/json writes a float64 below 1e21 without an exponent: a whole one as an integer.
_GO_PLAIN_FLOAT = 1e21


def _as_go_writes(value: Any) -> Any:
    """JSON as Go reads it into a Kubernetes object and writes it back: a whole number written as a
    float (`4.2e2`) is the integer, and a null field of an object is unset."""
    if isinstance(value, float):
        return int(value) if value.is_integer() and abs(value) < _GO_PLAIN_FLOAT else value
    if isinstance(value, dict):
        return {k: _as_go_writes(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_as_go_writes(v) for v in value]
    return value


@dataclass(frozen=True)
class SettingType:
    """How one type parses, how to describe what it accepts, and the longest value it reads.

    ``max_length`` is checked before parsing, so one pod cannot make a review expensive; it is
    sized to what the meshes' users write, with room to spare (a setting may declare its own).
    """

    parse: Callable[[str, Setting], Any]
    accepts: Callable[[Setting], str]
    max_length: int


# The types whose value is one thing that an empty text cannot be (see a plugin's `emptyIsUnset`).
SINGLE_VALUE_TYPES = frozenset({"int", "port", "cpu", "memory", "image", "bool", "duration", "float", "enum"})

TYPES: Mapping[str, SettingType] = {
    # int64 needs 20 characters; the rest is room for blanks and leading zeros.
    "int": SettingType(_parse_int, lambda s: s.description or "a whole number" + _bounds(s) + (", no sign" if s.unsigned else ""), 32),
    "port": SettingType(_parse_port, lambda s: "a port number from 1 to 65535", 16),
    # About 1,500 ports or ranges: every port list the meshes document is far shorter.
    "ports": SettingType(
        _parse_ports,
        lambda s: ("a comma-separated list of ports (8080,9090)" if s.strict else "a comma-separated list of ports or ranges (8080,9000-9100)")
        + (" from 0 to 65535" if s.lowest_port == 0 else "")
        + (", or container port names" if s.names else "")
        + (' or "*"' if s.wildcard else ""),
        8 * 1024,
    ),
    # About 800 IPv4 or 400 IPv6 CIDRs: enough for a cloud provider's published ranges.
    "cidrs": SettingType(
        _parse_cidrs,
        lambda s: "a comma-separated list of CIDRs (10.0.0.0/8,fd00::/8)"
        + (", no blanks, each with its mask length" if s.strict else "")
        + (' or "*"' if s.wildcard else ""),
        16 * 1024,
    ),
    "cpu": SettingType(_parse_cpu, lambda s: "a CPU quantity such as 100m or 2" + (", no blanks" if s.strict else ""), 32),
    "memory": SettingType(_parse_memory, lambda s: "a memory quantity such as 128Mi or 1Gi" + (", no blanks" if s.strict else ""), 32),
    "image": SettingType(_parse_image, lambda s: "an image reference from an allowed registry", 512),
    "bool": SettingType(_parse_bool, lambda s: "true or false (as Go reads them: 1, t, T, TRUE, true, True; 0, f, F, FALSE, false, False)", 16),
    "truthy": SettingType(_parse_truthy, lambda s: "y, yes, true, t, on or 1 for true (any case); anything else is false", 256),
    "assignments": SettingType(
        _parse_assignments, lambda s: "a comma-separated list of NAME=value (a comma inside a value is kept)", 32 * 1024
    ),
    "pairs": SettingType(
        _parse_pairs, lambda s: f"a comma-separated list of a{s.separator}b (other items are ignored)", 4096
    ),
    "duration": SettingType(_parse_duration, lambda s: "a duration such as 300ms, 5s or 1m30s", 64),
    "float": SettingType(
        _parse_float,
        lambda s: "a number" + (f" strictly between {s.minimum} and {s.maximum}" if s.exclusive else _bounds(s)),
        64,
    ),
    "named": SettingType(
        _parse_named,
        lambda s: s.description or "a JSON map of name to object, or a JSON list of objects (each with its name)",
        32 * 1024,
    ),
    "env": SettingType(_parse_env, lambda s: 'a JSON list of env vars such as [{"name":"A","value":"1"}]', 32 * 1024),
    "enum": SettingType(_parse_enum, lambda s: _one_of(s.choices) + (", exactly (no blanks)" if s.strict else ""), 256),
    "names": SettingType(_parse_names, lambda s: s.description or "a comma-separated list of " + ", ".join(s.choices), 1024),
    "mapping": SettingType(_parse_mapping, lambda s: s.description or "a YAML or JSON mapping", 32 * 1024),
    # Free text up to 32 KiB: a whole ProxyConfig (proxy.istio.io/config) fits; a pattern narrows it.
    "string": SettingType(
        _parse_string,
        lambda s: s.description or (f"text matching {s.pattern.pattern}" if s.pattern else "text"),
        32 * 1024,
    ),
}


def _one_of(choices: Sequence[str]) -> str:
    """`one of a, b or empty`: an empty choice is named, not left as a trailing comma."""
    named = ", ".join(c for c in choices if c)
    return f"one of {named}" + (" or empty" if "" in choices else "")


def _bounds(setting: Setting) -> str:
    low, high = setting.bounds
    return f" from {low} to {high}"


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
    fields: Mapping[str, str | tuple[str, ...]] = field(default_factory=dict)  # a mapping's typed fields (a tuple: an enum)
    proto_names: bool = False  # a mapping's fields may be spelled snake_case, as protojson reads them
    oneofs: tuple[tuple[str, ...], ...] = ()  # a mapping's fields of which one is kept (a protobuf oneof)
    names: bool = False  # ports: container port names are accepted too
    strict: bool = False  # ports, cidrs: each item as Istio's validator reads it (no range, no empty item, a mask); cpu, memory, enum: nothing trimmed
    exclusive: bool = False  # float: the bounds themselves are out of range
    namespace: bool | frozenset[str] = True  # also read on the namespace (all keys, or these), as the default for its pods
    separator: str = ":"
    since: str | None = None  # the release (line, or each line's patch) that first reads the key (releases.py)
    until: str | None = None  # the release that no longer reads it
    fallback: str | None = None  # a pod field (dotted path) used when the key is absent or empty
    max_length: int | None = None
    empty_is_unset: bool = False  # an empty value reads as no value: the default (a later key or the namespace's is not read)
    bits: int = 32  # int: the width of the field the value lands in
    check_namespace: bool = False  # the namespace's value must parse even where the pod sets its own
    used_when: str | None = None  # an earlier on/off setting: the key is read only while that one is on
    used_if: re.Pattern[str] | None = None  # a value it does not find lands nowhere: the default, neither parsed nor refused
    object_kind: str | None = None  # named: the core/v1 type each entry is read as (Volume, VolumeMount)
    unsigned: bool = False  # int: read as strconv.ParseUint reads it (no sign), from 0 to 2**bits - 1
    plus_sign: bool = False  # ports: a bound may carry a leading + (Go's strconv.Atoi, as Linkerd reads them)

    @property
    def lowest_port(self) -> int:
        """ports: the lowest port accepted, 1 unless the setting's `min` says 0 (Linkerd's)."""
        return 1 if self.minimum is None else self.minimum

    @property
    def longest(self) -> int:
        """The longest raw value read: the setting's own ``maxLength``, else its type's.

        A string with a pattern is a name, a level or a tag list: 1 KiB is far more than any needs.
        """
        if self.max_length is not None:
            return self.max_length
        if self.type == "string" and self.pattern is not None:
            return PATTERNED_STRING_LENGTH
        return TYPES[self.type].max_length

    @property
    def bounds(self) -> tuple[int, int]:
        """The range of an int setting: its min and max within the field it lands in (int32, or int64
        with `bits: 64`)."""
        floor, ceiling = (0, 2**self.bits - 1) if self.unsigned else (-(2 ** (self.bits - 1)), 2 ** (self.bits - 1) - 1)
        low = floor if self.minimum is None else max(self.minimum, floor)
        high = ceiling if self.maximum is None else min(self.maximum, ceiling)
        return low, high

    def on_namespace(self, key: str) -> bool:
        """Whether `key` is also read on the namespace."""
        return self.namespace if isinstance(self.namespace, bool) else key in self.namespace

    def parse(self, raw: str) -> Any:
        """Parse one raw annotation value; raises SettingError. The length is checked first."""
        if len(raw) > self.longest:
            raise SettingError(f"longer than {self.longest} characters ({len(raw)})")
        if self.pattern is not None and self.type != "string" and not self.pattern.fullmatch(raw):
            raise SettingError("not of the accepted form")
        return TYPES[self.type].parse(raw, self)

    def accepts(self) -> str:
        """What values this setting accepts, for error messages and `meshswitch plugins`."""
        return TYPES[self.type].accepts(self)


_SETTING_FIELDS = frozenset(
    {"keys", "key", "type", "default", "choices", "pattern", "min", "max", "wildcard", "description", "maxLength",
     "separator", "since", "until", "fallback", "names", "exclusive", "namespace", "fields", "emptyIsUnset", "bits",
     "checkNamespace", "protoNames", "oneofs", "usedWhen", "usedIf", "strict", "object", "plusSign", "unsigned"}
)  # fmt: skip


def _namespace_keys(raw: Any, keys: Sequence[str], *, name: str, where: str) -> bool | frozenset[str]:
    if isinstance(raw, bool):
        return raw
    if not isinstance(raw, list) or not set(raw) <= set(keys):
        raise ConfigError(f"{where}: setting {name!r}: namespace is true, false or a list of its keys")
    return frozenset(raw)


def _object_kind(raw: Any, type_name: str, *, name: str, where: str) -> str | None:
    """A `named` setting's `object`: the core/v1 type its entries are read as (schema.py's table)."""
    from webhook.engine.schema import STRUCTS  # schema reads this module's quantity grammar

    if raw is None:
        return None
    if type_name != "named" or raw not in STRUCTS:
        raise ConfigError(f"{where}: setting {name!r}: object names a core/v1 type (such as Volume), for a named setting")
    return str(raw)


def _oneofs(raw: Any, *, name: str, where: str) -> tuple[tuple[str, ...], ...]:
    """A mapping setting's `oneofs`: groups of field names of which a message holds one."""
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(g, list) and all(isinstance(f, str) for f in g) for g in raw):
        raise ConfigError(f"{where}: setting {name!r}: oneofs is a list of lists of field names")
    return tuple(tuple(group) for group in raw)


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
    if not isinstance(fields, Mapping) or not all(
        (isinstance(v, str) and v in _FIELD_TYPES) or (isinstance(v, list) and v and all(isinstance(c, str) for c in v))
        for v in fields.values()
    ):
        raise ConfigError(
            f"{where}: setting {name!r}: fields map names to one of {', '.join(_FIELD_TYPES)}, or to an enum's names in number order"
        )
    max_length = spec.get("maxLength")
    if max_length is not None and (not isinstance(max_length, int) or isinstance(max_length, bool) or max_length < 1):
        raise ConfigError(f"{where}: setting {name!r}: maxLength must be a positive whole number of characters")
    bits = spec.get("bits", 32)
    if bits not in INT_BITS or isinstance(bits, bool) or (bits != 32 and type_name != "int"):
        raise ConfigError(f"{where}: setting {name!r}: bits is 32 or 64, for an int")
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
        fields={k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()},
        proto_names=bool(spec.get("protoNames", False)),
        oneofs=_oneofs(spec.get("oneofs"), name=name, where=where),
        names=bool(spec.get("names", False)),
        strict=bool(spec.get("strict", False)),
        exclusive=bool(spec.get("exclusive", False)),
        namespace=_namespace_keys(spec.get("namespace", True), keys, name=name, where=where),
        max_length=max_length,
        separator=str(spec.get("separator", ":")) or ":",
        since=load_lines(spec.get("since"), where=f"{where}: setting {name!r}"),
        until=load_lines(spec.get("until"), where=f"{where}: setting {name!r}"),
        fallback=None if spec.get("fallback") is None else str(spec["fallback"]),
        empty_is_unset=bool(spec.get("emptyIsUnset", False)),
        bits=bits,
        check_namespace=bool(spec.get("checkNamespace", False)),
        used_when=None if spec.get("usedWhen") is None else str(spec["usedWhen"]),
        used_if=None if spec.get("usedIf") is None else re.compile(str(spec["usedIf"])),
        object_kind=_object_kind(spec.get("object"), type_name, name=name, where=where),
        plus_sign=bool(spec.get("plusSign", False)),
        unsigned=bool(spec.get("unsigned", False)),
    )
    if type_name == "ports" and setting.minimum not in (None, 0, 1):
        raise ConfigError(f"{where}: setting {name!r}: min of a port list is 0 or 1")
    if type_name in ("enum", "names") and not setting.choices:
        raise ConfigError(f"{where}: setting {name!r}: {type_name} needs choices")
    default = spec.get("default")
    if default is not None:
        raw = ",".join(str(d) for d in default) if isinstance(default, list) else str(default).lower() if isinstance(default, bool) else str(default)
        try:
            default = setting.parse(raw)
        except SettingError as err:
            raise ConfigError(f"{where}: setting {name!r}: default {raw!r} is {err}; accepted: {setting.accepts()}") from None
    return Setting(**{**setting.__dict__, "default": default})
