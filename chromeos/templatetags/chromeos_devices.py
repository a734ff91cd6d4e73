"""Template helpers of the device pages: one table cell per chosen column, Google's payload values."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

from django import template
from django.core.exceptions import FieldDoesNotExist
from django.urls import reverse
from django.utils import formats, timezone
from django.utils.html import format_html
from django.utils.safestring import SafeString
from django.utils.translation import gettext_lazy as _

from chromeos.models import ChromeOSDevice
from chromeos.selectors.devices import STATUSES, aue_state

register = template.Library()

STATUS_CLASSES = {"ACTIVE": "ok", "DISABLED": "warn", "DEPROVISIONED": "ko"}

# Labels of the payload keys the detail page shows; a key Google adds later is shown by its own name.
PAYLOAD_LABELS = {
    "model": _("Modèle"),
    "serialNumber": _("Numéro de série"),
    "manufactureDate": _("Date de fabrication"),
    "chromeOsType": _("Type de ChromeOS"),
    "deviceLicenseType": _("Type de licence"),
    "cpuInfo": _("Processeur"),
    "systemRamTotal": _("Mémoire vive totale"),
    "diskSpaceUsage": _("Espace disque"),
    "diskVolumeReports": _("Volumes"),
    "tpmVersionInfo": _("TPM"),
    "backlightInfo": _("Rétroéclairage"),
    "fanInfo": _("Ventilateurs"),
    "bluetoothAdapterInfo": _("Bluetooth"),
    "cpuStatusReports": _("Utilisation et température du processeur"),
    "systemRamFreeReports": _("Mémoire libre"),
    "osVersion": _("Version de ChromeOS"),
    "platformVersion": _("Version de la plateforme"),
    "firmwareVersion": _("Version du micrologiciel"),
    "bootMode": _("Mode de démarrage"),
    "osVersionCompliance": _("Conformité de la version"),
    "osUpdateStatus": _("État de la mise à jour"),
    "autoUpdateExpiration": _("Fin des mises à jour automatiques"),
    "autoUpdateThrough": _("Mises à jour jusqu'au"),
    "supportEndDate": _("Fin du support"),
    "extendedSupportEligible": _("Éligible au support étendu"),
    "extendedSupportStart": _("Début du support étendu"),
    "extendedSupportEnabled": _("Support étendu activé"),
    "macAddress": _("Adresse MAC Wi-Fi"),
    "ethernetMacAddress": _("Adresse MAC Ethernet"),
    "ethernetMacAddress0": _("Adresse MAC Ethernet (interne)"),
    "lastKnownNetwork": _("Dernier réseau connu"),
    "meid": _("MEID"),
    "recentUsers": _("Utilisateurs récents"),
    "lastSync": _("Dernière synchro avec Google"),
    "lastEnrollmentTime": _("Dernière inscription"),
    "firstEnrollmentTime": _("Première inscription"),
    "activeTimeRanges": _("Temps d'utilisation"),
    "lastDeprovisionTimestamp": _("Dernier déprovisionnement"),
    "deprovisionReason": _("Motif du déprovisionnement"),
    "screenshotFiles": _("Captures d'écran"),
    "deviceFiles": _("Fichiers du périphérique"),
    "annotatedUser": _("Utilisateur annoté"),
    "annotatedLocation": _("Emplacement"),
    "annotatedAssetId": _("Numéro d'inventaire"),
    "notes": _("Notes"),
    "willAutoRenew": _("Renouvellement automatique"),
    "orgUnitPath": _("Chemin"),
    "orgUnitId": _("ID de l'unité"),
    "status": _("Statut"),
    "deviceId": _("ID Google du périphérique"),
}


@register.filter
def payload_label(key: str) -> str:
    return str(PAYLOAD_LABELS.get(key, key))


@register.filter
def change_label(column: str) -> str:
    """A history entry's column, in the words of the device's field (``removed`` is the sync's sweep)."""
    if column == "removed":
        return str(_("Retiré de Google"))
    try:
        field = ChromeOSDevice._meta.get_field(column)
    except FieldDoesNotExist:
        return column
    return str(getattr(field, "verbose_name", column))


@register.filter
def change_value(value: Any) -> str:
    """One side of a history entry: empty as a dash, booleans in words."""
    if value is None or value == "":
        return "—"
    return payload_value(value)


@register.filter
def payload_value(value: Any) -> str:
    """Scalars as they are; lists and objects as indented JSON (what Google sent, nothing lost)."""
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False, indent=2)
    if isinstance(value, bool):
        return str(_("oui") if value else _("non"))
    return str(value)


@register.filter
def is_structured(value: Any) -> bool:
    return isinstance(value, dict | list)


@register.filter
def status_label(status: str) -> str:
    return str(STATUSES.get(status, status or "—"))


@register.filter
def status_class(status: str) -> str:
    return STATUS_CLASSES.get(status, "")


def _date(value: date | datetime | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, datetime):
        return formats.date_format(timezone.localtime(value), "SHORT_DATETIME_FORMAT")
    return formats.date_format(value, "SHORT_DATE_FORMAT")


@register.simple_tag
def device_cell(device: Any, key: str) -> SafeString:
    """One cell of the device list for a chosen column."""
    if key == "serial_number":
        url = reverse("chromeos:device_detail", kwargs={"pk": device.pk})
        return format_html('<a href="{}">{}</a>', url, device.serial_number or device.device_id)
    if key == "status":
        return format_html(
            '<span class="status {}">{}</span>', status_class(device.status), status_label(device.status)
        )
    if key == "last_sync":
        return format_html("{}", _date(device.last_sync))
    if key == "auto_update_expiration":
        state = aue_state(device.auto_update_expiration)
        if state == "passed":
            return format_html(
                '<span class="status ko" title="{}">{}</span>',
                _("Fin des mises à jour dépassée"),
                _date(device.auto_update_expiration),
            )
        if state == "soon":
            return format_html(
                '<span class="status warn" title="{}">{}</span>',
                _("Fin des mises à jour proche"),
                _date(device.auto_update_expiration),
            )
        return format_html("{}", _date(device.auto_update_expiration))
    if key == "notes":
        notes = device.notes or ""
        return format_html('<span title="{}">{}</span>', notes, notes[:60] + ("…" if len(notes) > 60 else ""))
    value = getattr(device, key, "") or ""
    # Long values are cut to the column's width on screen; the whole value stays in the tooltip.
    return format_html('<span title="{}">{}</span>', value, value) if value else SafeString("")
