"""The two failure channels: a bad request (HTTP 4xx) and a refused pod (allowed: false)."""

from __future__ import annotations


class MeshswitchError(Exception):
    """Base of every error meshswitch raises on purpose."""


class BadRequest(MeshswitchError):
    """What the client sent is not something we can read (mapped to HTTP 400/413/415)."""

    def __init__(self, message: str, *, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


class PodDenied(MeshswitchError):
    """The pod is refused: an unknown mode, two meshes, a setting that does not parse.

    ``code`` is a stable reason code; the message names the key, the value and what is accepted.
    """

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class ConfigError(MeshswitchError):
    """Start-up configuration (templates, values, flags) is wrong; the process must not serve."""


def not_utf8(path: object, err: UnicodeDecodeError, accepted: str = "YAML files are UTF-8") -> str:
    """`FILE:LINE: not UTF-8 text (byte 0xe9 at offset 20); ...`: the one line a reader of our YAML
    files says for bytes that do not decode (the codec's own message names neither file nor line)."""
    data = bytes(err.object)
    line = data.count(b"\n", 0, err.start) + 1
    return f"{path}:{line}: not UTF-8 text (byte 0x{data[err.start]:02x} at offset {err.start}); {accepted}"


def yaml_problem(path: object, err: Exception) -> tuple[str, str]:
    """Where (`FILE:LINE`, or FILE) and what (the parser's one-line problem) of a YAML error, without
    the excerpt of the file that PyYAML's own message adds."""
    mark = getattr(err, "problem_mark", None)
    where = f"{path}:{mark.line + 1}" if mark else str(path)
    return where, getattr(err, "problem", None) or str(err).splitlines()[0]
