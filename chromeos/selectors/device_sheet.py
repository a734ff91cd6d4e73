"""A device's page as people read it: Google's payload in sections, in words and human units.

``device_sheet(device)`` turns the Directory API's FULL projection into sections (identity, hardware, OS and
updates, network, users and activity, enrolment), each a list of rows ``{"label", "value", ...}``: RAM in GiB,
disks as used/total with a bar, dates in the interface's format and the tenant's time zone, MACs as
``aa:bb:cc:dd:ee:ff``, every Google enum in words. Keys Google adds later land in "Autres informations", and the
page keeps the raw payload behind « Données brutes Google »: nothing Google sent is hidden, only reordered.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from django.utils import formats, timezone
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from chromeos.models import ChromeOSDevice
from chromeos.selectors.devices import STATUSES

GIB = 1024**3
GB = 1000**3

# Google's enums, in words. Unknown values are shown as Google sent them.
ENUMS: dict[str, dict[str, Any]] = {
    "chromeOsType": {
        "chromeOs": _("ChromeOS"),
        "chromeOsFlex": _("ChromeOS Flex"),
        "chromeOsTypeUnspecified": _("Non précisé"),
    },
    "deviceLicenseType": {
        "enterprise": _("Chrome Enterprise"),
        "enterpriseUpgrade": _("Chrome Enterprise Upgrade"),
        "enterpriseUpgradePerpetual": _("Chrome Enterprise Upgrade (perpétuelle)"),
        "enterpriseUpgradeFixedTerm": _("Chrome Enterprise Upgrade (durée fixe)"),
        "education": _("Chrome Education"),
        "educationUpgrade": _("Chrome Education Upgrade"),
        "educationUpgradePerpetual": _("Chrome Education Upgrade (perpétuelle)"),
        "educationUpgradeFixedTerm": _("Chrome Education Upgrade (durée fixe)"),
        "kioskUpgrade": _("Kiosque et signalétique"),
        "terminal": _("Terminal"),
    },
    "bootMode": {"Verified": _("Vérifié"), "Dev": _("Développeur")},
    "osVersionCompliance": {
        "compliant": _("Conforme"),
        "pending": _("Mise à jour en attente"),
        "notCompliant": _("Non conforme"),
        "complianceUnspecified": _("Non précisée"),
    },
    "osUpdateState": {
        "updateStateNotStarted": _("Pas commencée"),
        "updateStateDownloadInProgress": _("Téléchargement en cours"),
        "updateStateNeedReboot": _("Redémarrage nécessaire"),
        "updateStateUnspecified": _("Non précisé"),
    },
    "userType": {"USER_TYPE_MANAGED": _("Géré"), "USER_TYPE_UNMANAGED": _("Non géré")},
    "deprovisionReason": {
        "DEPROVISION_REASON_SAME_MODEL_REPLACEMENT": _("Remplacé par le même modèle"),
        "DEPROVISION_REASON_UPGRADE": _("Remplacé par un modèle plus récent"),
        "DEPROVISION_REASON_DOMAIN_MOVE": _("Changement de domaine"),
        "DEPROVISION_REASON_SERVICE_EXPIRATION": _("Fin du service"),
        "DEPROVISION_REASON_OTHER": _("Autre motif"),
        "DEPROVISION_REASON_DIFFERENT_MODEL_REPLACEMENT": _("Remplacé par un autre modèle"),
        "DEPROVISION_REASON_RETIRING_DEVICE": _("Appareil mis au rebut"),
        "DEPROVISION_REASON_UPGRADE_TRANSFER": _("Transfert de licence"),
        "DEPROVISION_REASON_NOT_REQUIRED": _("Motif non demandé"),
        "DEPROVISION_REASON_REPAIR_CENTER": _("Envoyé en réparation"),
        "DEPROVISION_REASON_UNSPECIFIED": _("Non précisé"),
    },
}

# Payload keys each section reads (in its own way); any other key goes to "Autres informations".
READ_KEYS = {
    "kind", "etag", "deviceId", "serialNumber", "status", "model", "manufactureDate", "chromeOsType",
    "deviceLicenseType", "annotatedUser", "annotatedLocation", "annotatedAssetId", "notes", "orgUnitPath",
    "orgUnitId", "cpuInfo", "systemRamTotal", "systemRamFreeReports", "diskSpaceUsage", "diskVolumeReports",
    "tpmVersionInfo", "cpuStatusReports", "osVersion", "platformVersion", "firmwareVersion", "bootMode",
    "osVersionCompliance", "osUpdateStatus", "autoUpdateExpiration", "autoUpdateThrough", "supportEndDate",
    "extendedSupportEligible", "extendedSupportStart", "extendedSupportEnabled", "macAddress",
    "ethernetMacAddress", "ethernetMacAddress0", "lastKnownNetwork", "meid", "recentUsers", "lastSync",
    "activeTimeRanges", "firstEnrollmentTime", "lastEnrollmentTime", "lastDeprovisionTimestamp",
    "deprovisionReason", "willAutoRenew",
}  # fmt: skip


@dataclass
class Row:
    label: Any
    value: Any = ""
    # A used/total bar: the percentage used (the text says the amounts).
    bar: int | None = None
    items: list[str] = field(default_factory=list)
    code: bool = False
    key: str = ""


@dataclass
class Section:
    key: str
    label: Any
    rows: list[Row]


def enum_label(kind: str, value: Any) -> str:
    """One of Google's enum values in words; an unknown value as Google sent it."""
    if value in (None, ""):
        return ""
    return str(ENUMS.get(kind, {}).get(value, value))


def _number(value: float, decimals: int = 1) -> str:
    rounded = round(value, decimals)
    if rounded == int(rounded):
        return formats.number_format(int(rounded), use_l10n=True, force_grouping=True)
    return formats.number_format(rounded, decimal_pos=decimals, use_l10n=True, force_grouping=True)


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def gibibytes(value: Any) -> str:
    number = _int(value)
    return "" if number is None else str(_("%(n)s Gio") % {"n": _number(number / GIB)})


def gigabytes(value: Any) -> str:
    number = _int(value)
    return "" if number is None else str(_("%(n)s Go") % {"n": _number(number / GB)})


def format_mac(value: Any) -> str:
    """``a1b2c3d4e5f6`` → ``a1:b2:c3:d4:e5:f6``; anything that is not 12 hex digits as it came."""
    text = str(value or "").strip()
    bare = re.sub(r"[:\-.]", "", text).lower()
    if re.fullmatch(r"[0-9a-f]{12}", bare):
        return ":".join(bare[i : i + 2] for i in range(0, 12, 2))
    return text


def _parse_time(value: Any) -> datetime | None:
    """Google's RFC 3339 times, or epoch milliseconds (``autoUpdateExpiration``)."""
    if value in (None, ""):
        return None
    millis = _int(value)
    if millis is not None:
        return datetime.fromtimestamp(millis / 1000, tz=UTC)
    try:
        parsed = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def format_datetime(value: Any) -> str:
    parsed = value if isinstance(value, datetime) else _parse_time(value)
    if parsed is None:
        return str(value or "")
    return formats.date_format(timezone.localtime(parsed), "SHORT_DATETIME_FORMAT")


def format_date(value: Any) -> str:
    """A day (dd/mm/yyyy in French): ISO dates as they are, times and epoch milliseconds on Google's UTC day."""
    if isinstance(value, date):
        return formats.date_format(value, "SHORT_DATE_FORMAT")
    text = str(value or "")
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        try:
            return formats.date_format(date.fromisoformat(text), "SHORT_DATE_FORMAT")
        except ValueError:
            return text
    parsed = _parse_time(value)
    if parsed is None:
        return text
    return formats.date_format(parsed.astimezone(UTC).date(), "SHORT_DATE_FORMAT")


def format_duration_ms(value: Any) -> str:
    """Active time: "3 h 05 min", "12 min", "< 1 min"."""
    millis = _int(value)
    if millis is None:
        return ""
    minutes = millis // 60_000
    if minutes < 1:
        return str(_("< 1 min"))
    hours, minutes = divmod(minutes, 60)
    if hours:
        return str(_("%(h)s h %(m)02d min") % {"h": hours, "m": minutes})
    return str(_("%(m)s min") % {"m": minutes})


def _percent(used: int, total: int) -> int:
    return max(0, min(100, round(100 * used / total)))


def _yes_no(value: Any) -> str:
    if value is None:
        return ""
    return str(_("oui") if value else _("non"))


def _tpm_version(info: dict[str, Any]) -> str:
    # ``family`` is the TPM's version in ASCII, hex-encoded: "322e3000" is "2.0".
    family = str(info.get("family", ""))
    try:
        text = bytes.fromhex(family).rstrip(b"\x00").decode("ascii")
    except ValueError:
        text = family
    return str(_("TPM %(version)s") % {"version": text}) if text else ""


def _last(reports: Any) -> dict[str, Any]:
    if isinstance(reports, list) and reports and isinstance(reports[-1], dict):
        return reports[-1]
    return {}


def _rows(*rows: Row) -> list[Row]:
    return [r for r in rows if r.value or r.bar is not None or r.items]


def _identity(device: ChromeOSDevice, p: dict[str, Any]) -> Section:
    return Section(
        "identity",
        _("Identité"),
        _rows(
            Row(_("Modèle"), p.get("model") or device.model),
            Row(_("Numéro de série"), p.get("serialNumber") or device.serial_number, code=True),
            Row(_("Statut"), str(STATUSES.get(device.status, device.status))),
            Row(_("ID Google du périphérique"), device.device_id, code=True),
            Row(_("Type de ChromeOS"), enum_label("chromeOsType", p.get("chromeOsType"))),
            Row(_("Licence"), enum_label("deviceLicenseType", p.get("deviceLicenseType"))),
            Row(_("Date de fabrication"), format_date(p.get("manufactureDate"))),
            Row(_("Unité organisationnelle"), device.org_unit_path, key="org_unit"),
            Row(_("Utilisateur annoté"), device.annotated_user),
            Row(_("Emplacement"), device.annotated_location),
            Row(_("Numéro d'inventaire"), device.annotated_asset_id),
            Row(_("Notes"), device.notes),
        ),
    )


def _hardware(p: dict[str, Any]) -> Section:
    cpus = []
    for cpu in p.get("cpuInfo") or []:
        if not isinstance(cpu, dict):
            continue
        speed = _int(cpu.get("maxClockSpeedKhz"))
        parts = [str(cpu.get("model", "")), str(cpu.get("architecture", ""))]
        if speed:
            parts.append(str(_("%(n)s GHz") % {"n": _number(speed / 1_000_000)}))
        cpus.append(", ".join(x for x in parts if x))
    ram_total = _int(p.get("systemRamTotal"))
    ram_free = _int((_last(p.get("systemRamFreeReports")).get("systemRamFreeInfo") or [None])[0])
    ram = Row(_("Mémoire vive"), gibibytes(ram_total))
    if ram_total and ram_free is not None:
        used = ram_total - ram_free
        ram = Row(
            _("Mémoire vive"),
            str(
                _("%(used)s utilisés sur %(total)s")
                % {"used": gibibytes(used), "total": gibibytes(ram_total)}
            ),
            bar=_percent(used, ram_total),
        )
    usage = p.get("diskSpaceUsage") or {}
    disk = Row(_("Disque"))
    capacity, used_bytes = _int(usage.get("capacityBytes")), _int(usage.get("usedBytes"))
    if capacity and used_bytes is not None:
        disk = Row(
            _("Disque"),
            str(
                _("%(used)s utilisés sur %(total)s")
                % {"used": gigabytes(used_bytes), "total": gigabytes(capacity)}
            ),
            bar=_percent(used_bytes, capacity),
        )
    volumes = []
    for report in p.get("diskVolumeReports") or []:
        for volume in (report or {}).get("volumeInfo") or []:
            total, free = _int(volume.get("storageTotal")), _int(volume.get("storageFree"))
            if total:
                volumes.append(
                    str(
                        _("%(volume)s : %(free)s libres sur %(total)s")
                        % {
                            "volume": volume.get("volumeId", ""),
                            "free": gigabytes(free),
                            "total": gigabytes(total),
                        }
                    )
                )
    cpu_report = _last(p.get("cpuStatusReports"))
    temperatures = [
        str(_("%(label)s : %(t)s °C") % {"label": t.get("label", ""), "t": t.get("temperature")})
        for t in cpu_report.get("cpuTemperatureInfo") or []
        if isinstance(t, dict)
    ]
    load = cpu_report.get("cpuUtilizationPercentageInfo") or []
    return Section(
        "hardware",
        _("Matériel"),
        _rows(
            Row(_("Processeur"), "", items=cpus),
            ram,
            disk,
            Row(_("Volumes"), "", items=volumes),
            Row(_("Charge du processeur"), " · ".join(f"{_int(x)} %" for x in load if _int(x) is not None)),
            Row(_("Température du processeur"), "", items=temperatures),
            Row(_("Puce de sécurité"), _tpm_version(p.get("tpmVersionInfo") or {})),
        ),
    )


def _os(device: ChromeOSDevice, p: dict[str, Any]) -> Section:
    update = p.get("osUpdateStatus") or {}
    update_text = enum_label("osUpdateState", update.get("state")) if isinstance(update, dict) else ""
    return Section(
        "os",
        _("Système et mises à jour"),
        _rows(
            Row(_("Version de ChromeOS"), p.get("osVersion") or device.os_version),
            Row(
                _("Conformité de la version"), enum_label("osVersionCompliance", p.get("osVersionCompliance"))
            ),
            Row(_("Mise à jour"), update_text),
            Row(_("Fin des mises à jour automatiques"), format_date(p.get("autoUpdateExpiration"))),
            Row(_("Mises à jour jusqu'au"), format_date(p.get("autoUpdateThrough"))),
            Row(_("Fin du support"), format_date(p.get("supportEndDate"))),
            Row(_("Éligible au support étendu"), _yes_no(p.get("extendedSupportEligible"))),
            Row(_("Début du support étendu"), format_date(p.get("extendedSupportStart"))),
            Row(_("Support étendu activé"), _yes_no(p.get("extendedSupportEnabled"))),
            Row(_("Mode de démarrage"), enum_label("bootMode", p.get("bootMode"))),
            Row(_("Version de la plateforme"), p.get("platformVersion", "")),
            Row(_("Version du micrologiciel"), p.get("firmwareVersion", ""), code=True),
        ),
    )


def _network(p: dict[str, Any]) -> Section:
    addresses = []
    for network in p.get("lastKnownNetwork") or []:
        if isinstance(network, dict):
            addresses += [str(network[k]) for k in ("ipAddress", "wanIpAddress") if network.get(k)]
    return Section(
        "network",
        _("Réseau"),
        _rows(
            Row(_("Adresse MAC Wi-Fi"), format_mac(p.get("macAddress")), code=True),
            Row(_("Adresse MAC Ethernet"), format_mac(p.get("ethernetMacAddress")), code=True),
            Row(_("Adresse MAC Ethernet (interne)"), format_mac(p.get("ethernetMacAddress0")), code=True),
            Row(_("Adresses IP"), "", items=addresses),
            Row(_("MEID"), p.get("meid", ""), code=True),
        ),
    )


def _activity(device: ChromeOSDevice, p: dict[str, Any]) -> Section:
    users = []
    for user in p.get("recentUsers") or []:
        if isinstance(user, dict):
            kind = enum_label("userType", user.get("type"))
            users.append(f"{user['email']} ({kind})" if user.get("email") else kind)
    days = []
    for entry in sorted(
        (e for e in p.get("activeTimeRanges") or [] if isinstance(e, dict)),
        key=lambda e: str(e.get("date", "")),
        reverse=True,
    ):
        days.append(f"{format_date(entry.get('date'))} : {format_duration_ms(entry.get('activeTime'))}")
    total = sum(
        _int(e.get("activeTime")) or 0 for e in p.get("activeTimeRanges") or [] if isinstance(e, dict)
    )
    active = ""
    if days:
        active = ngettext("%(total)s sur %(n)s jour", "%(total)s sur %(n)s jours", len(days)) % {
            "total": format_duration_ms(total),
            "n": len(days),
        }
    return Section(
        "activity",
        _("Utilisateurs et activité"),
        _rows(
            Row(_("Utilisateurs récents"), "", items=users),
            Row(
                _("Dernière synchro avec Google"),
                format_datetime(p.get("lastSync")) or format_datetime(device.last_sync),
            ),
            Row(_("Temps d'utilisation"), active, items=days),
            Row(_("Vu pour la dernière fois par la console"), format_datetime(device.last_seen_at)),
        ),
    )


def _enrolment(p: dict[str, Any]) -> Section:
    return Section(
        "enrolment",
        _("Inscription"),
        _rows(
            Row(_("Première inscription"), format_datetime(p.get("firstEnrollmentTime"))),
            Row(_("Dernière inscription"), format_datetime(p.get("lastEnrollmentTime"))),
            Row(_("Dernier déprovisionnement"), format_datetime(p.get("lastDeprovisionTimestamp"))),
            Row(_("Motif du déprovisionnement"), enum_label("deprovisionReason", p.get("deprovisionReason"))),
            Row(_("Renouvellement automatique"), _yes_no(p.get("willAutoRenew"))),
        ),
    )


def _other(p: dict[str, Any]) -> Section:
    rows = []
    for key, value in sorted(p.items()):
        if key in READ_KEYS:
            continue
        if isinstance(value, dict | list):
            rows.append(Row(key, json.dumps(value, ensure_ascii=False), code=True))
        elif isinstance(value, bool):
            rows.append(Row(key, _yes_no(value)))
        else:
            rows.append(Row(key, str(value)))
    return Section("other", _("Autres informations de Google"), rows)


def device_sheet(device: ChromeOSDevice) -> list[Section]:
    """The device's sections, in reading order; empty sections are left out."""
    p = device.payload if isinstance(device.payload, dict) else {}
    sections = [
        _identity(device, p),
        _hardware(p),
        _os(device, p),
        _network(p),
        _activity(device, p),
        _enrolment(p),
        _other(p),
    ]
    return [s for s in sections if s.rows]


def raw_payload(device: ChromeOSDevice) -> str:
    """What Google sent, as indented JSON, for « Données brutes Google »."""
    return json.dumps(device.payload or {}, ensure_ascii=False, indent=2, sort_keys=True)
