"""The kind of an installation value, as a plugin's declared default gives it: what the values file
and the cluster's discovered values are both checked against."""

from __future__ import annotations

from typing import Any

_TYPE_NAMES = {str: "a string", int: "a whole number", bool: "true or false", dict: "a mapping", list: "a list", float: "a number"}


def _kind(value: Any) -> type:
    for kind in (bool, int, float, str, dict, list):
        if isinstance(value, kind):
            return kind
    return type(value)


def kind_name(declared: Any) -> str:
    """What a value of the declared default's kind is, for messages ("a whole number")."""
    if declared is None:
        return "a string, number or true/false"
    expected = _kind(declared)
    return _TYPE_NAMES.get(expected, expected.__name__)


def fits_declared(declared: Any, value: Any) -> bool:
    """Whether `value` has the kind of the declared default (a number where a float is declared; any
    scalar where null is declared)."""
    if declared is None:
        return value is None or isinstance(value, str | int | float | bool)
    expected = _kind(declared)
    return _kind(value) is expected or (expected is float and _kind(value) is int)
