"""The CLI copies a few constants so that `--help` starts without importing the engine or the
cluster client; each copy must stay equal to what it copies."""

from __future__ import annotations

from webhook.cli import mode, offline
from webhook.cluster import layout
from webhook.engine import decide


def test_the_mode_key_copy_is_the_engines() -> None:
    assert offline.MODE_KEY == decide.MODE_KEY


def test_the_default_namespace_copy_is_the_installs() -> None:
    assert mode.DEFAULT_NAMESPACE == layout.DEFAULT_NAMESPACE
