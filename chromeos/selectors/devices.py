"""Reads of the device inventory: the filtered, sorted list (page, selection, CSV), facets and the detail.

The list must answer in well under 100 ms of server time at 100,000 devices per tenant. What makes that true:
each sortable column has a ``(tenant, column, id)`` index (``ChromeOSDevice.Meta.indexes``) and every sort
ends with ``id`` so that page N is stable and served by that index; the search box matches one lower-cased
generated column (``search_text``) through a trigram GIN index; the OU "with children" filter is a prefix
range on a ``text_pattern_ops`` index; facets (models, OS versions) are read with a loose index scan rather
than ``SELECT DISTINCT`` over every row. ``benchmarks/devices.py`` measures it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import nullcontext
from dataclasses import dataclass, field, fields, replace
from datetime import date, timedelta
from typing import Any

from django.db import connection, transaction
from django.db.models import F, Q, QuerySet
from django.utils import timezone
from django.utils.translation import gettext_lazy as _

from chromeos.models import (
    ChromeOSDevice,
    DeviceAction,
    DeviceActionItem,
    DeviceActionJob,
    DeviceChange,
    DeviceCommand,
    OrgUnit,
)
from mdm.display import fold_accents, strip_invisible, unmark
from mdm.tenancy import current_tenant

# Column key → (model field to sort on, label). Order is the table's default column order.
COLUMNS: dict[str, tuple[str, Any]] = {
    "serial_number": ("serial_number", _("Numéro de série")),
    "status": ("status", _("Statut")),
    "model": ("model", _("Modèle")),
    "os_version": ("os_version", _("Version de l'OS")),
    "org_unit_path": ("org_unit_path", _("Unité organisationnelle")),
    "annotated_user": ("annotated_user", _("Utilisateur annoté")),
    "annotated_location": ("annotated_location", _("Emplacement")),
    "annotated_asset_id": ("annotated_asset_id", _("Numéro d'inventaire")),
    "recent_user": ("recent_user", _("Utilisateur récent")),
    "mac_address": ("mac_address", _("Adresse MAC")),
    "last_sync": ("last_sync", _("Dernière synchro")),
    "auto_update_expiration": ("auto_update_expiration", _("Fin des mises à jour")),
    "notes": ("notes", _("Notes")),
}
# « Dernière synchro » and the AUE come before the longer text columns: at 1440 px they are in view by default.
DEFAULT_COLUMNS = (
    "serial_number",
    "status",
    "model",
    "org_unit_path",
    "last_sync",
    "auto_update_expiration",
    "os_version",
    "annotated_user",
)
DEFAULT_SORT = "serial_number"
# A page never shows more than this many rows.
PAGE_SIZES = (25, 50, 100, 200)
AUE_SOON_DAYS = 180

STATUSES = {
    "ACTIVE": _("Actif"),
    "DISABLED": _("Désactivé"),
    "DEPROVISIONED": _("Déprovisionné"),
    "PRE_PROVISIONED": _("Pré-provisionné"),
    "INACTIVE": _("Inactif"),
    "DELINQUENT": _("En défaut de paiement"),
    "RETURN_ARRIVED": _("Retour reçu"),
    "RETURN_REQUESTED": _("Retour demandé"),
    "SHIPPED": _("Expédié"),
    "UNKNOWN": _("Inconnu"),
}

_MAC_WITH_SEPARATORS = re.compile(r"^[0-9a-f]{2}([:\-.][0-9a-f]{2}){2,5}$", re.IGNORECASE)


def normalise_search(text: str) -> str:
    """Lower-case, trimmed; a MAC typed with separators (aa:bb:cc...) matches Google's 12 bare hex digits.

    Invisible formatting characters (and their markers, pasted from a page) are dropped, as they are from the
    ``search_text`` column.
    """
    needle = fold_accents(strip_invisible(text).strip())
    if _MAC_WITH_SEPARATORS.match(needle):
        needle = re.sub(r"[:\-.]", "", needle)
    return needle


@dataclass(frozen=True)
class DeviceFilter:
    """What the device list shows: search, filters and sort. Built from the list's query string."""

    q: str = ""
    status: str = ""
    org_unit: str = ""
    include_children: bool = True
    support: str = ""  # "supported" | "unsupported" | ""
    os_version: str = ""
    model: str = ""
    sync_older_than_days: int | None = None
    aue: str = ""  # "passed" | "soon" | ""
    removed: str = ""  # "" (hide removed) | "only" | "all"
    sort: str = DEFAULT_SORT
    descending: bool = False
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def with_sort(self, sort: str, descending: bool) -> DeviceFilter:
        return replace(self, sort=sort, descending=descending)

    @property
    def is_filtered(self) -> bool:
        defaults = DeviceFilter()
        return any(
            getattr(self, f.name) != getattr(defaults, f.name)
            for f in fields(self)
            if f.name not in ("sort", "descending", "extra", "include_children")
        )


def supported_org_unit_paths() -> QuerySet[Any]:
    """Paths of the tenant's Google OUs backed by an LDAP OU: the only ones the console manages."""
    return OrgUnit.objects.filter(ldap_org_unit__isnull=False).values("path")


def devices_filtered(flt: DeviceFilter) -> QuerySet[ChromeOSDevice]:
    """The current tenant's devices matching ``flt``, unsorted."""
    qs = ChromeOSDevice.objects.all()
    if flt.removed == "only":
        qs = qs.filter(removed_at__isnull=False)
    elif flt.removed != "all":
        qs = qs.filter(removed_at__isnull=True)
    needle = normalise_search(flt.q)
    if needle:
        qs = qs.filter(search_text__contains=needle)
    if flt.status:
        qs = qs.filter(status=flt.status)
    if flt.org_unit:
        path = resolve_org_unit_path(unmark(flt.org_unit))
        if flt.include_children:
            if path != "/":
                qs = qs.filter(Q(org_unit_path=path) | Q(org_unit_path__startswith=path + "/"))
        else:
            qs = qs.filter(org_unit_path=path)
    if flt.support:
        supported = Q(org_unit_path__in=supported_org_unit_paths())
        qs = qs.filter(supported if flt.support == "supported" else ~supported)
    if flt.os_version:
        qs = qs.filter(os_version=flt.os_version)
    if flt.model:
        qs = qs.filter(model=flt.model)
    if flt.sync_older_than_days is not None:
        cutoff = timezone.now() - timedelta(days=flt.sync_older_than_days)
        qs = qs.filter(Q(last_sync__lt=cutoff) | Q(last_sync__isnull=True))
    if flt.aue:
        today = timezone.localdate()
        if flt.aue == "passed":
            qs = qs.filter(auto_update_expiration__lt=today)
        elif flt.aue == "soon":
            qs = qs.filter(
                auto_update_expiration__gte=today,
                auto_update_expiration__lte=today + timedelta(days=AUE_SOON_DAYS),
            )
    return qs


# Columns a device may lack (never synced, no AUE date): those devices come last whatever the direction.
NULLABLE_SORTS = {"last_sync", "auto_update_expiration"}


def resolve_org_unit_path(typed: str) -> str:
    """The OU path an admin typed, as the tenant's OUs spell it: « /paris/ventes » and « /Paris/Ventes » find
    the same OU, accents and case aside. A path no OU matches is kept as typed (normalised slashes)."""
    stripped = typed.strip()
    path = "/" + stripped.strip("/") if stripped != "/" else "/"
    if path == "/":
        return path
    folded = fold_accents(path)
    known = [p for p in OrgUnit.objects.values_list("path", flat=True) if fold_accents(p) == folded]
    if path in known or not known:
        return path
    return known[0]


def devices_sorted(
    qs: QuerySet[ChromeOSDevice], flt: DeviceFilter, *, mirror: bool = False
) -> QuerySet[ChromeOSDevice]:
    """The list's order; ``mirror``: its exact reverse (the last pages are read from the other end)."""
    column = COLUMNS.get(flt.sort, COLUMNS[DEFAULT_SORT])[0]
    descending = flt.descending != mirror
    prefix = "-" if descending else ""
    # ``id`` last: a total order, so pages neither repeat nor skip rows, served by the (tenant, col, id) index.
    if column in NULLABLE_SORTS:
        # Never-synced devices last in both directions (PostgreSQL puts NULLs first when descending).
        nulls = {"nulls_first": True} if mirror else {"nulls_last": True}
        expression = F(column).desc(**nulls) if descending else F(column).asc(**nulls)
        return qs.order_by(expression, f"{prefix}id")
    return qs.order_by(f"{prefix}{column}", f"{prefix}id")


# What a list row needs: the payload (large JSON) is never read by the list.
LIST_FIELDS = (
    "id",
    "device_id",
    "serial_number",
    "status",
    "model",
    "os_version",
    "org_unit_path",
    "annotated_user",
    "annotated_location",
    "annotated_asset_id",
    "recent_user",
    "mac_address",
    "last_sync",
    "auto_update_expiration",
    "notes",
    "removed_at",
)


def device_list(flt: DeviceFilter) -> QuerySet[ChromeOSDevice]:
    return devices_sorted(devices_filtered(flt), flt).only(*LIST_FIELDS)


# A search counts its matches up to this many: a broad search ("chromebook") would otherwise re-check every
# matching row in the table to count them, the one count no index answers alone. Searches of 1–2 characters
# cannot use the trigram index at all: their count stops sooner.
SEARCH_COUNT_CAP = 20_000
SHORT_SEARCH_COUNT_CAP = 2_000
# A filtered list matching at most this many devices is read through the filter's own index and sorted
# (top-N), never by walking the sort column's index: see device_page.
FILTER_FIRST_LIMIT = 25_000


@dataclass(frozen=True)
class DevicePage:
    rows: list[ChromeOSDevice]
    total: int  # matching devices (at most SEARCH_COUNT_CAP when ``capped``)
    capped: bool
    number: int
    pages: int


def device_page(flt: DeviceFilter, page_number: int, page_size: int) -> DevicePage:
    """One page of the list and how many devices match: a count, then the page.

    Which index answers is decided here, not left to the planner, where the planner is known to guess wrong:

    * few matches (a filter, or a 3+ character search, matching at most FILTER_FIRST_LIMIT devices, known from
      the count): read them through the filter's own index (trigram, OU prefix, a column's index) and sort
      them. Walking the sort column's index instead, hoping to meet matches early, reads most of the fleet
      when the matches sit at the far end of that index (serials share their model's prefix: "model = X" or
      "lenovo" sorted by serial). ``SET LOCAL enable_indexscan = off`` leaves the planner only bitmap scans.
    * a 3+ character search is also counted through the trigram index, for the same reason;
    * past the middle of a long list, read from the other end (see below).
    """
    qs = devices_filtered(flt)
    needle = normalise_search(flt.q)
    searching = bool(needle)
    trigram = len(needle) >= 3
    # SET LOCAL needs a transaction; an unfiltered list never changes plans and runs without one.
    scope = transaction.atomic() if flt.is_filtered else nullcontext()
    with scope, connection.cursor() as cursor:
        if trigram:
            cursor.execute("SET LOCAL enable_indexscan = off")
        capped = False
        if searching:
            cap = SEARCH_COUNT_CAP if trigram else SHORT_SEARCH_COUNT_CAP
            # No ORDER BY inside the capped count (the default ordering would sort every match first).
            total = qs.order_by()[: cap + 1].count()
            capped = total > cap
            total = min(total, cap)
        else:
            total = qs.count()
        pages = max(1, -(-total // page_size))
        number = min(max(1, page_number), pages)
        start = (number - 1) * page_size
        ordered = devices_sorted(qs, flt).only(*LIST_FIELDS)
        filter_first = (
            flt.is_filtered and not capped and total <= FILTER_FIRST_LIMIT and (trigram or not searching)
        )
        if filter_first != trigram:
            cursor.execute(f"SET LOCAL enable_indexscan = {'off' if filter_first else 'on'}")
        if filter_first or capped or start <= total // 2:
            rows = list(ordered[start : min(start + page_size, total)])
        else:
            # Past the middle, read from the other end: the last page costs what the first does, not an
            # OFFSET over the whole fleet. The reversed order is the exact mirror (same columns, id included).
            after = max(0, total - start - page_size)
            take = min(page_size, total - start)
            mirror = devices_sorted(qs, flt, mirror=True).only(*LIST_FIELDS)
            rows = list(mirror[after : after + take])[::-1]
    return DevicePage(rows=rows, total=total, capped=capped, number=number, pages=pages)


def distinct_values(column: str, limit: int = 200) -> list[str]:
    """Distinct non-empty values of an indexed column for the current tenant, in one query.

    A recursive "loose index scan" jumps from one value to the next through the partial (tenant, column, id)
    index: a handful of index probes for a fleet of a few dozen models, instead of reading every row. (Its
    ``removed_at IS NULL`` is what lets it use that partial index: without it, each probe scans the table.)
    """
    allowed = {"model": "model", "os_version": "os_version"}
    col = allowed[column]
    table = ChromeOSDevice._meta.db_table
    sql = f"""
        WITH RECURSIVE v(value, n) AS (
            (SELECT {col}, 1 FROM {table} WHERE tenant_id = %(t)s AND removed_at IS NULL AND {col} > ''
             ORDER BY {col} LIMIT 1)
            UNION ALL
            SELECT (SELECT {col} FROM {table} WHERE tenant_id = %(t)s AND removed_at IS NULL AND {col} > v.value
                    ORDER BY {col} LIMIT 1), n + 1
            FROM v WHERE v.value IS NOT NULL AND n < %(limit)s
        )
        SELECT value FROM v WHERE value IS NOT NULL
    """  # noqa: S608 - column and table come from the whitelist above, values are parameters
    with connection.cursor() as cursor:
        cursor.execute(sql, {"t": current_tenant().pk, "limit": limit})
        return [row[0] for row in cursor.fetchall()]


def org_unit_choices(limit: int = 2000) -> list[str]:
    return list(OrgUnit.objects.order_by("path").values_list("path", flat=True)[:limit])


def device_ids_matching(flt: DeviceFilter) -> QuerySet[Any]:
    """Primary keys of every device the filter matches (for "select all N matching")."""
    return devices_sorted(devices_filtered(flt), flt).values_list("pk", flat=True)


def csv_rows(flt: DeviceFilter, columns: list[str], chunk_size: int = 2000) -> Iterator[tuple[Any, ...]]:
    """Every matching device's chosen columns, streamed from a server-side cursor (never all in memory).

    The queryset is built now, in the caller's tenant context; it runs when the response is read, after the
    view returned (a plain function, not a generator, for that reason).
    """
    names = ["device_id", *[COLUMNS[c][0] for c in columns]]
    return devices_sorted(devices_filtered(flt), flt).values_list(*names).iterator(chunk_size=chunk_size)


# -- detail ----------------------------------------------------------------------------------------------
def device_detail(pk: int) -> ChromeOSDevice:
    return ChromeOSDevice.objects.select_related("integration").get(pk=pk)


def device_changes(device: ChromeOSDevice, limit: int = 50) -> list[DeviceChange]:
    return list(DeviceChange.objects.filter(device=device).order_by("-at", "-id")[:limit])


def device_commands(device: ChromeOSDevice, limit: int = 50) -> list[DeviceCommand]:
    return list(
        DeviceCommand.objects.filter(device=device)
        .select_related("issued_by")
        .order_by("-issued_at", "-id")[:limit]
    )


def device_action_items(device: ChromeOSDevice, limit: int = 20) -> list[DeviceActionItem]:
    return list(
        DeviceActionItem.objects.filter(device=device)
        .exclude(job__status="draft")
        .select_related("job", "job__requested_by")
        .order_by("-id")[:limit]
    )


def device_org_unit(device: ChromeOSDevice) -> OrgUnit | None:
    return OrgUnit.objects.filter(path=device.org_unit_path).first()


def aue_state(value: date | None) -> str:
    """ "passed", "soon" or "" for an auto-update expiration date."""
    if value is None:
        return ""
    today = timezone.localdate()
    if value < today:
        return "passed"
    if value <= today + timedelta(days=AUE_SOON_DAYS):
        return "soon"
    return ""


# -- jobs ------------------------------------------------------------------------------------------------
def job_items(job: DeviceActionJob, status: str = "") -> QuerySet[DeviceActionItem]:
    qs = DeviceActionItem.objects.filter(job=job)
    if status:
        qs = qs.filter(status=status)
    return qs.order_by("id")


def recent_jobs(limit: int = 50) -> QuerySet[DeviceActionJob]:
    return DeviceActionJob.objects.exclude(status="draft").select_related("requested_by")[:limit]


ANNOTATION_LABELS = {
    "annotated_user": _("Utilisateur annoté"),
    "annotated_location": _("Emplacement"),
    "annotated_asset_id": _("Numéro d'inventaire"),
    "notes": _("Notes"),
}


def job_parameters(job: DeviceActionJob) -> list[tuple[str, str]]:
    """A job's parameters in words, for its page: what was asked, on which devices, by whom and when.

    The wire values (Google's command type, deprovision reason code) are said in the admin's words; Google's
    command type is kept in brackets for support."""
    from chromeos.services.devices import COMMAND_TYPES, DEPROVISION_REASONS

    params = job.params or {}
    rows: list[tuple[str, str]] = [(str(_("Action")), str(job.get_action_display()))]
    action = DeviceAction(job.action)
    if action in COMMAND_TYPES:
        rows.append((str(_("Type de commande")), f"{job.get_action_display()} ({COMMAND_TYPES[action]})"))
    if params.get("org_unit_path"):
        rows.append((str(_("Unité organisationnelle cible")), str(params["org_unit_path"])))
    if params.get("deprovision_reason"):
        reason = params["deprovision_reason"]
        rows.append((str(_("Motif du déprovisionnement")), str(DEPROVISION_REASONS.get(reason, reason))))
    if params.get("volume") is not None and action == DeviceAction.SET_VOLUME:
        rows.append((str(_("Volume")), f"{params['volume']} %"))
    for name, value in (params.get("annotations") or {}).items():
        label = ANNOTATION_LABELS.get(name, name)
        rows.append((str(label), str(value) if value else str(_("(vidé)"))))
    rows.append((str(_("Périphériques")), _selection_words(job)))
    if job.requested_by_id and job.requested_by is not None:
        rows.append(
            (
                str(_("Préparée par")),
                _("%(user)s, le %(when)s")
                % {"user": job.requested_by.display_name, "when": _when(job.created_at)},
            )
        )
    if job.confirmed_at:
        who = job.confirmed_by.display_name if job.confirmed_by_id and job.confirmed_by else "—"
        rows.append(
            (
                str(_("Confirmée par")),
                _("%(user)s, le %(when)s") % {"user": who, "when": _when(job.confirmed_at)},
            )
        )
    return rows


def _when(at: Any) -> str:
    from django.utils.formats import date_format

    return date_format(timezone.localtime(at), "SHORT_DATETIME_FORMAT")


def _selection_words(job: DeviceActionJob) -> str:
    selection = job.selection or ""
    count = job.total
    if selection.startswith("retry:"):
        return str(
            _("%(count)s périphérique(s) en échec de l'action n° %(job)s")
            % {"count": count, "job": selection.removeprefix("retry:")}
        )
    if selection.startswith("filter:"):
        query = selection.removeprefix("filter:")
        return str(
            _("%(count)s périphérique(s) : tous ceux du filtre « %(filter)s »")
            % {"count": count, "filter": query or _("aucun filtre")}
        )
    if selection.startswith("device:"):
        return str(_("ce périphérique (depuis sa page)"))
    return str(_("%(count)s périphérique(s) cochés dans la liste") % {"count": count})


# -- what a bulk action changes, before it is confirmed ------------------------------------------------------------
# The status Google gives a device once the action succeeded.
STATUS_AFTER = {"disable": "DISABLED", "reenable": "ACTIVE", "deprovision": "DEPROVISIONED"}


@dataclass(frozen=True)
class ChangeRow:
    serial_number: str
    google_device_id: str
    current: str
    new: str

    @property
    def unchanged(self) -> bool:
        return self.current == self.new


@dataclass
class ActionPreview:
    """Each listed device's current → new value, and the whole selection grouped in sentences."""

    subject: str  # what changes: the OU, the status, the annotations
    rows: list[ChangeRow]
    summary: list[str]


def _status_label(code: str | None) -> str:
    return str(STATUSES.get(code or "", code or "—"))


def action_change_preview(job: Any, params: dict[str, Any], limit: int) -> ActionPreview | None:
    """For a drafted move, status change or annotation edit with these parameters: the first ``limit`` devices'
    current → new value, and the whole selection in a few grouped sentences (« 12 périphériques de /Écoles/A vers
    /Écoles/B », « 3 déjà dans cette unité »). None for actions that change no value the console shows (commands),
    or a move whose destination is not chosen yet. Two queries whatever the selection's size."""
    from django.db.models import Count
    from django.utils.translation import gettext, ngettext

    from chromeos.models import DeviceActionItem

    items = DeviceActionItem.objects.filter(job=job)
    listed = list(items.select_related("device").order_by("id")[:limit])
    action = job.action
    if action == "move":
        target = params.get("org_unit_path") or ""
        if not target:
            return None
        rows = [
            ChangeRow(
                i.serial_number, i.google_device_id, i.device.org_unit_path if i.device else "—", target
            )
            for i in listed
        ]
        summary = []
        for group in (
            items.values("device__org_unit_path").annotate(n=Count("id")).order_by("device__org_unit_path")
        ):
            n, current = group["n"], group["device__org_unit_path"] or "—"
            if current == target:
                summary.append(
                    ngettext("%(n)s déjà dans cette unité", "%(n)s déjà dans cette unité", n) % {"n": n}
                )
            else:
                summary.append(
                    ngettext(
                        "%(n)s périphérique de %(from)s vers %(to)s",
                        "%(n)s périphériques de %(from)s vers %(to)s",
                        n,
                    )
                    % {"n": n, "from": current, "to": target}
                )
        return ActionPreview(gettext("Unité organisationnelle"), rows, summary)
    if action in STATUS_AFTER:
        after = STATUS_AFTER[action]
        rows = [
            ChangeRow(
                i.serial_number,
                i.google_device_id,
                _status_label(i.device.status if i.device else None),
                _status_label(after),
            )
            for i in listed
        ]
        summary = []
        for group in items.values("device__status").annotate(n=Count("id")).order_by("device__status"):
            n, current = group["n"], group["device__status"]
            if current == after:
                summary.append(ngettext("%(n)s déjà dans cet état", "%(n)s déjà dans cet état", n) % {"n": n})
            else:
                summary.append(
                    ngettext(
                        "%(n)s périphérique de « %(from)s » à « %(to)s »",
                        "%(n)s périphériques de « %(from)s » à « %(to)s »",
                        n,
                    )
                    % {"n": n, "from": _status_label(current), "to": _status_label(after)}
                )
        return ActionPreview(gettext("Statut"), rows, summary)
    if action == "annotate":
        wanted = {k: v for k, v in (params.get("annotations") or {}).items() if k in ANNOTATION_LABELS}
        if not wanted:
            return None

        def words(values: dict[str, str]) -> str:
            return " · ".join(f"{ANNOTATION_LABELS[k]} : {values.get(k) or '—'}" for k in wanted)

        rows = [
            ChangeRow(
                i.serial_number,
                i.google_device_id,
                words({k: getattr(i.device, k) for k in wanted}) if i.device else "—",
                words(wanted),
            )
            for i in listed
        ]
        total = items.count()
        same = items.filter(**{f"device__{k}": v or "" for k, v in wanted.items()}).count()
        summary = []
        if total - same:
            summary.append(
                ngettext("%(n)s périphérique modifié", "%(n)s périphériques modifiés", total - same)
                % {"n": total - same}
            )
        if same:
            summary.append(
                ngettext("%(n)s déjà à ces valeurs", "%(n)s déjà à ces valeurs", same) % {"n": same}
            )
        return ActionPreview(gettext("Annotations"), rows, summary)
    return None
