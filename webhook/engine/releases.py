"""Release lines: a plugin that renders differently per installed version of its mesh (pure).

A plugin file may declare `releases: {value: version, lines: ["1.16", "1.18"]}`: the install value
that holds the installed version (pinned in the values or discovered from the control plane), and
the release lines its template knows, oldest first. Templates compare with
`version_at_least(values.version, "1.18")`; keys and settings may carry `since`/`until` lines, or
lists of patch releases, one per line, for a change a mesh backported (`since: [1.16.18, 1.18.3]`).
A version newer than the newest line renders as the newest, older than the oldest as the oldest,
one on a line between two known lines (1.17 where the lines are 1.16 and 1.18) as the older of the two,
and a tag that is no version (`edge`, `latest`) as the newest; each of those gets a warning.
"""

from __future__ import annotations

import re
from functools import lru_cache
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from webhook.engine.errors import ConfigError

# An optional channel prefix (Linkerd's `edge-26.8.3`) is not part of the numbers compared.
_VERSION = re.compile(r"^(?:[a-z]+-)?v?([0-9]{1,6})(?:\.([0-9]{1,6}))?(?:\.([0-9]{1,6}))?(?:[-+].*)?$")
Version = tuple[int, int, int]
NEWEST: Version = (1 << 30, 0, 0)  # what a tag that is no version counts as


def parse_version(text: Any) -> Version | None:
    """`1.18.3`, `v1.16`, `1.18.0-rc.1`, `edge-26.8.3` -> (major, minor, patch); None when it is no version."""
    return _parse(text) if isinstance(text, str) else None


@lru_cache(maxsize=64)  # a handful of distinct versions, asked for on every review
def _parse(text: str) -> Version | None:
    match = _VERSION.match(str(text).strip()) if text is not None else None
    if not match:
        return None
    major, minor, patch = (int(g) if g else 0 for g in match.groups())
    return (major, minor, patch)


def line_of(text: str, *, where: str) -> Version:
    """A release line as written in a plugin file (`"1.18"`); raises ConfigError."""
    version = parse_version(text)
    if version is None:
        raise ConfigError(f"{where}: release line {text!r} is not a version such as 1.18")
    return version


def version_at_least(version: Any, line: str) -> bool:
    """The Jinja global: is the installed version on `line` or newer? A tag that is no version is newest."""
    parsed = parse_version(version)
    wanted = parse_version(line)
    if wanted is None:
        raise ValueError(f"version_at_least: {line!r} is not a version")
    return (parsed or NEWEST) >= wanted


@dataclass(frozen=True)
class Releases:
    """The `releases` section of a plugin file."""

    value: str = "version"
    lines: tuple[str, ...] = ()

    def installed(self, values: Mapping[str, Any]) -> Version:
        return parse_version(values.get(self.value)) or NEWEST

    def warning(self, plugin: str, values: Mapping[str, Any]) -> str | None:
        """Why the installed version renders as a line it is not on, or None."""
        if not self.lines:
            return None
        raw = values.get(self.value)
        parsed = parse_version(raw)
        newest, oldest = self.lines[-1], self.lines[0]
        if parsed is None:
            return f"{plugin}: {self.value} {raw!r} is not a version; rendered as the newest known release line {newest}"
        if parsed[:2] > (parse_version(newest) or NEWEST)[:2]:
            return f"{plugin}: {self.value} {raw} is newer than the newest known release line {newest}; rendered as {newest}"
        if parsed[:2] < (parse_version(oldest) or NEWEST)[:2]:
            return f"{plugin}: {self.value} {raw} is older than the oldest known release line {oldest}; rendered as {oldest}"
        known = [line for line in self.lines if (parse_version(line) or NEWEST)[:2] <= parsed[:2]]
        if (parse_version(known[-1]) or NEWEST)[:2] != parsed[:2]:
            line = ".".join(str(n) for n in parsed[:2])
            return (f"{plugin}: {self.value} {raw} is on release line {line}, which the template does not know; "
                    f"rendered as {known[-1]}, whose output may differ from that release's")  # fmt: skip
        return None


def load_releases(raw: Any, values: Mapping[str, Any], *, where: str) -> Releases | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping) or set(raw) - {"value", "lines"}:
        raise ConfigError(f"{where}: releases takes value (an install value's name) and lines (a list of versions)")
    value = str(raw.get("value", "version"))
    if value not in values:
        raise ConfigError(f"{where}: releases.value {value!r} is not one of its values")
    lines = raw.get("lines")
    if lines is None:
        return Releases(value)  # the version decides `since`/`until`; no line to render as, so no warning
    if not isinstance(lines, Sequence) or isinstance(lines, str) or not lines:
        raise ConfigError(f"{where}: releases.lines must be a non-empty list of versions, oldest first")
    parsed = [line_of(str(line), where=where) for line in lines]
    if parsed != sorted(parsed):
        raise ConfigError(f"{where}: releases.lines must be oldest first")
    return Releases(value, tuple(str(line) for line in lines))


def load_lines(raw: Any, *, where: str) -> str | None:
    """A `since`/`until` as written: one version (`"1.18"`), or a list of versions on distinct
    lines, oldest first (`[1.16.18, 1.17.12, 1.18.3]`: one change released on each line at its
    own patch); kept as text, the list comma-separated. Raises ConfigError."""
    if raw is None:
        return None
    items = [str(v) for v in raw] if isinstance(raw, list) else [str(raw)]
    parsed = [line_of(item, where=where) for item in items]
    if not items or any(a[:2] >= b[:2] for a, b in zip(parsed, parsed[1:])):
        raise ConfigError(f"{where}: since/until lists versions on distinct release lines, oldest first")
    return ", ".join(items)


@lru_cache(maxsize=256)  # a few keys' lines against one or two installed versions
def reached(lines: str, installed: Version) -> bool:
    """Is `installed` at or past `lines` (load_lines' text)? With several versions, the one on the
    installed version's line counts; a line none lists takes the newest older one listed (reached
    by every release of a newer line), and a line older than all listed has not reached it."""
    versions = [parse_version(v) or NEWEST for v in lines.split(", ")]
    older = [v for v in versions if v[:2] <= installed[:2]]
    return bool(older) and installed >= older[-1]


def applies(since: str | None, until: str | None, installed: Version) -> bool:
    """A key or setting with `since`/`until` lines: is it read by the installed release?"""
    if since is not None and not reached(since, installed):
        return False
    return not (until is not None and reached(until, installed))
