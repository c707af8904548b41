"""Unknown keys under a plugin's own prefixes (pure): `sidecar.istio.io/proxyCPUlimit` is a typo of
`sidecar.istio.io/proxyCPULimit`, and silently ignoring it would leave the proxy without its limit."""

from __future__ import annotations

import difflib
from collections.abc import Mapping

from webhook.engine.decide import INJECT_KEY, MODE_KEY, SIDECAR_KEY
from webhook.engine.status import STATUS_KEY
from webhook.engine.plugins import PluginSet

OWN_PREFIX = "meshswitch.io"
OWN_KEYS = frozenset({MODE_KEY, INJECT_KEY, SIDECAR_KEY, STATUS_KEY})


def unknown_keys(keys: Mapping[str, object], plugins: PluginSet, *, where: str) -> list[str]:
    """One warning per key that sits under a plugin's prefix (or ours) but that no plugin reads or writes.

    `where` says whose keys these are ("pod annotation", "namespace label", ...)."""
    owners = plugins.key_owners
    warnings = []
    for key in keys:
        prefix, slash, _ = key.partition("/")
        if not slash:
            continue
        if prefix == OWN_PREFIX:
            if key in OWN_KEYS:
                continue
            candidates, owner = OWN_KEYS, "meshswitch"
        elif prefix in owners:
            if key in plugins.known_keys:
                continue
            candidates, owner = plugins.known_keys, ", ".join(owners[prefix])
        else:
            continue
        close = difflib.get_close_matches(key, sorted(candidates), n=1, cutoff=0.8)
        hint = f"; did you mean {close[0]}?" if close else ""
        warnings.append(f"{where} {key} is not a key {owner} reads, so it has no effect{hint}")
    return warnings
