"""Field-by-field differences between two normalised pods, as stable paths.

Lists of named items (containers, env, volumes, ports, mounts, ...) are compared by name, so one
missing env var is one difference, not a cascade; where order matters to the API or the kubelet
(containers, init containers, env, image pull secrets) a different order is one more difference at `<list>[order]`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

ORDERED = frozenset({"containers", "initContainers", "env", "imagePullSecrets"})
KEYS = ("name", "mountPath", "containerPort", "devicePath")


@dataclass(frozen=True)
class Difference:
    path: str
    ours: Any
    theirs: Any

    def __str__(self) -> str:
        return f"{self.path}: ours={_short(self.ours)} theirs={_short(self.theirs)}"


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 160 else text[:157] + "..."


def _key_of(*lists: list[Any]) -> str | None:
    """The field that names every item of each list uniquely, if there is one."""
    for key in KEYS:
        if all(all(isinstance(i, dict) and key in i for i in items) and len({str(i[key]) for i in items}) == len(items) for items in lists):
            return key
    return None


def differences(ours: Any, theirs: Any, path: str = "") -> list[Difference]:
    if isinstance(ours, dict) and isinstance(theirs, dict):
        found: list[Difference] = []
        for key in sorted(set(ours) | set(theirs), key=str):
            sub = f"{path}.{key}" if path else str(key)
            if key not in ours:
                found.append(Difference(sub, None, theirs[key]))
            elif key not in theirs:
                found.append(Difference(sub, ours[key], None))
            else:
                found.extend(differences(ours[key], theirs[key], sub))
        return found
    if isinstance(ours, list) and isinstance(theirs, list):
        key = _key_of(ours, theirs) if (ours or theirs) else None
        if key is None:
            if len(ours) != len(theirs):
                return [Difference(path, ours, theirs)]
            return [d for i, (a, b) in enumerate(zip(ours, theirs, strict=True)) for d in differences(a, b, f"{path}[{i}]")]
        mine = {str(i[key]): i for i in ours}
        other = {str(i[key]): i for i in theirs}
        found = []
        for name in list(mine) + [n for n in other if n not in mine]:
            sub = f"{path}[{name}]"
            if name not in other:
                found.append(Difference(sub, mine[name], None))
            elif name not in mine:
                found.append(Difference(sub, None, other[name]))
            else:
                found.extend(differences(mine[name], other[name], sub))
        name = path.rsplit(".", 1)[-1].split("[")[0]
        if name in ORDERED:
            common_mine = [n for n in mine if n in other]
            common_other = [n for n in other if n in mine]
            if common_mine != common_other:
                found.append(Difference(f"{path}[order]", common_mine, common_other))
        return found
    if ours != theirs:
        return [Difference(path, ours, theirs)]
    return []
