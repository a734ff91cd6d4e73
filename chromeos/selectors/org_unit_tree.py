"""The OU tree beside the fleet table: the tenant's Google OUs as a tree, each with its device counts.

Two queries: the OUs (path and name), and the devices grouped by path (an index-only scan of the partial
``(tenant, org_unit_path, id)`` index: removed devices are not counted, as the list hides them). A device path
no OU row carries (an OU listed after the last sync, a sync in progress) still gets its node, and its ancestors.

Counts are the fleet's, whatever the list's other filters: « own » is the devices directly in the OU (what the
list shows with « Sous-unités : Exclues »), « total » the OU and its sub-OUs (the list's default).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from django.db.models import Count
from django.utils.translation import gettext as _

from chromeos.models import ChromeOSDevice, OrgUnit
from mdm.display import fold_accents


@dataclass
class OuNode:
    path: str
    name: str
    own: int = 0
    total: int = 0
    children: list[OuNode] = field(default_factory=list)
    # The selected OU or one of its ancestors: shown unfolded.
    open: bool = False
    selected: bool = False
    key: int = 0  # position in the tree, for element ids
    known: bool = False  # an OU row of the last sync (not only a path some device carries)

    @property
    def depth(self) -> int:
        return 0 if self.path == "/" else self.path.count("/")


def _parent(path: str) -> str:
    return path.rsplit("/", 1)[0] or "/"


def org_unit_tree(selected: str = "") -> OuNode:
    """The tenant's root OU (« / ») with every OU under it, children sorted by name; ``selected`` (a path, as
    the list's filter resolved it) and its ancestors are marked open."""
    names = dict(OrgUnit.objects.filter(missing_since__isnull=True).values_list("path", "name"))
    counts = dict(
        ChromeOSDevice.objects.filter(removed_at__isnull=True)
        .values("org_unit_path")
        .annotate(n=Count("id"))
        .values_list("org_unit_path", "n")
        .order_by()
    )
    nodes: dict[str, OuNode] = {"/": OuNode(path="/", name="/")}

    def node(path: str) -> OuNode:
        path = path if path == "/" else "/" + path.strip("/")
        found = nodes.get(path)
        if found is None:
            found = nodes[path] = OuNode(path=path, name=names.get(path) or path.rsplit("/", 1)[-1])
            node(_parent(path)).children.append(found)
        return found

    for path in names:
        node(path).known = True
    for path, n in counts.items():
        node(path or "/").own += n

    def total(n: OuNode) -> int:
        n.children.sort(key=lambda c: fold_accents(c.name))
        n.total = n.own + sum(total(c) for c in n.children)
        return n.total

    root = nodes["/"]
    total(root)
    for key, each in enumerate(flatten(root)):
        each.key = key
    root.open = True
    root.name = str(_("Toutes les unités"))
    if selected.strip() in ("", "/"):
        root.selected = True
        return root
    # The filter as typed (« /ecoles/ »): found as ``resolve_org_unit_path`` finds it, accents and case aside.
    typed = "/" + selected.strip().strip("/") if selected.strip() not in ("", "/") else selected.strip()
    if typed and typed not in nodes:
        folded = fold_accents(typed)
        typed = next((p for p in nodes if fold_accents(p) == folded), typed)
    if typed in nodes:
        selected = typed
        nodes[selected].selected = True
        walk = selected
        while walk != "/":
            nodes[walk].open = True
            walk = _parent(walk)
    return root


def flatten(root: OuNode) -> list[OuNode]:
    """Depth-first, for tests and plain listings."""
    out = [root]
    for child in root.children:
        out.extend(flatten(child))
    return out
