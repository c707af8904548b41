"""A value as a mesh's own YAML template reads it back: Istio writes some annotation values into
its template as text (log levels unquoted, proxyMetadata values inside double quotes), so YAML's
rules change them before they reach the pod. The value stays data here: it is decoded as one
scalar, never spliced into our templates."""

from __future__ import annotations

import re
from typing import Any

import yaml

_COMMENT = re.compile(r"[ \t]#")
# libyaml's scanner is the one Go's YAML reader was ported from: both take a tab as the blank after
# `:` or `,` and before a comment, where PyYAML's own scanner refuses any tab outside a scalar
# (`concurrency:\t2` in `proxy.istio.io/config`). PyYAML's wheels carry libyaml; without it, only
# tabs read differently.
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def load(text: str) -> Any:
    """`text` as the mesh's Go YAML reader reads it (raises yaml.YAMLError where it refuses it)."""
    return yaml.load(text, Loader=_LOADER)


def plain_scalar(text: str) -> str:
    """As an unquoted scalar reads `text`: a blank and `#` start a comment, trailing blanks go."""
    comment = _COMMENT.search(text)
    return (text[: comment.start()] if comment else text).rstrip(" \t")


def quoted_scalar(text: str) -> str | None:
    """As a double-quoted scalar reads `text` (escapes decoded, a line break folded into a blank),
    or None where YAML refuses it (an unescaped quote, an unknown escape): the mesh's injection fails."""
    if re.search(r'(?<!\\)(?:\\\\)*"', text):
        return None
    if "\\" not in text and "\n" not in text and "\r" not in text:
        return text  # nothing to decode or fold: the common value, without a parser per pod
    try:
        value = yaml.load(f'"{text}"', Loader=_LOADER)
    except yaml.YAMLError:
        return None
    return value if isinstance(value, str) else None


# YAML's line breaks (libyaml's and Go's: CR, LF, NEL, LS, PS): a value without them or a quote reads as written.
_SINGLE_QUOTED_SPECIAL = re.compile("['\r\n\x85\u2028\u2029]")


def single_quoted_scalar(text: str) -> str | None:
    """As a single-quoted scalar reads `text` (`''` one quote, line breaks folded: one into a blank,
    n into n-1, the blanks around them dropped), or None where YAML refuses it (a lone quote, a
    line starting with a document marker, `---` or `...`): the mesh's injection fails."""
    if not _SINGLE_QUOTED_SPECIAL.search(text):
        return text  # nothing to fold or unescape: the common value, without a parser per pod
    if "'" in text.replace("''", ""):
        return None
    try:
        value = yaml.load(f"'{text}'", Loader=_LOADER)
    except yaml.YAMLError:
        return None
    return value if isinstance(value, str) else None
