"""The org unit tree: lookups by path or id, subtrees, ancestors (for policy inheritance)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from google_emulator.model import OrgUnit


def normalise_path(path: str) -> str:
    """``Paris/Ventes`` and ``/Paris/Ventes/`` both name ``/Paris/Ventes``, as the API accepts both."""
    return "/" + path.strip().strip("/")


class OrgUnitTree:
    def __init__(self, units: list[OrgUnit]) -> None:
        self.by_id: dict[str, OrgUnit] = {}
        self.by_path: dict[str, OrgUnit] = {}
        for unit in units:
            self._index(unit)
        self.root = self.by_path["/"]

    def _index(self, unit: OrgUnit) -> None:
        self.by_id[unit.org_unit_id] = unit
        # Google matches OU paths case-insensitively.
        self.by_path[unit.path.casefold()] = unit

    def __iter__(self) -> Iterator[OrgUnit]:
        return iter(self.by_id.values())

    def __len__(self) -> int:
        return len(self.by_id)

    def find(self, reference: str) -> OrgUnit | None:
        """An OU by ``id:<id>``, bare id, ``/path`` or ``path`` (the API takes all four)."""
        if reference.startswith("id:"):
            return self.by_id.get(reference[3:])
        if reference in self.by_id:
            return self.by_id[reference]
        return self.by_path.get(normalise_path(reference).casefold())

    def children(self, unit: OrgUnit) -> list[OrgUnit]:
        return [u for u in self if u.parent_id == unit.org_unit_id]

    def descendants(self, unit: OrgUnit) -> list[OrgUnit]:
        prefix = unit.path.rstrip("/") + "/"
        return [u for u in self if u.path.startswith(prefix) and u is not unit]

    def subtree_paths(self, unit: OrgUnit) -> set[str]:
        return {unit.path} | {u.path for u in self.descendants(unit)}

    def ancestors(self, unit: OrgUnit) -> list[OrgUnit]:
        """The unit itself, then its parent, up to the root: the order policies inherit in."""
        chain = [unit]
        while chain[-1].parent_id is not None:
            chain.append(self.by_id[chain[-1].parent_id])
        return chain

    def add_path(self, path: str, new_id: Callable[[], str]) -> OrgUnit:
        """Create the OU at ``path`` and any missing parents; return it."""
        path = normalise_path(path)
        existing = self.find(path)
        if existing is not None:
            return existing
        parent = self.add_path(path.rsplit("/", 1)[0] or "/", new_id)
        name = path.rsplit("/", 1)[1]
        unit = OrgUnit(new_id(), path, name, f"Unité {name}", parent.org_unit_id)
        self._index(unit)
        return unit

    def remove(self, unit: OrgUnit) -> list[OrgUnit]:
        """Remove a unit and its subtree; return what was removed."""
        removed = [unit, *self.descendants(unit)]
        for gone in removed:
            del self.by_id[gone.org_unit_id]
            del self.by_path[gone.path.casefold()]
        return removed
