"""The ``query`` search syntax of chromeosdevices.list, the subset admins use.

Terms are ANDed. ``key:value`` or ``key:"quoted value"``; a bare word matches any of the text
fields. Dates (``sync:``, ``register:``, ``aue:``) take ``D``, ``..D``, ``D..`` or ``D1..D2``
with ``D`` as ``YYYY-MM-DD`` (inclusive). Matching is case-insensitive and partial, except
statuses and MAC addresses, which are exact. Unknown operators are a 400, so typos in the app's
queries fail loudly instead of returning nothing.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from google_emulator.errors import invalid

Predicate = Callable[[dict[str, Any]], bool]

TERM = re.compile(r'(?:(\w+):)?(?:"([^"]*)"|(\S+))')
STATUS_ALIASES = {"provisioned": "ACTIVE", "active": "ACTIVE"}
FREE_TEXT_FIELDS = (
    "serialNumber",
    "annotatedUser",
    "annotatedLocation",
    "annotatedAssetId",
    "notes",
    "model",
    "macAddress",
    "ethernetMacAddress",
)
TEXT_OPERATORS = {
    "asset_id": "annotatedAssetId",
    "user": "annotatedUser",
    "location": "annotatedLocation",
    "note": "notes",
}
DATE_OPERATORS = {"sync": "lastSync", "register": "lastEnrollmentTime", "aue": "autoUpdateThrough"}
MAC_OPERATORS = {"wifi_mac": "macAddress", "ethernet_mac": "ethernetMacAddress"}


def _contains(field: str, needle: str) -> Predicate:
    needle = needle.casefold()
    return lambda d: needle in str(d.get(field, "")).casefold()


def _date_range(field: str, value: str) -> Predicate:
    low, separator, high = value.partition("..")
    if not separator:
        high = low
    for bound in (low, high):
        if bound and not re.fullmatch(r"\d{4}-\d{2}-\d{2}(T[\d:.]+Z?)?", bound):
            raise invalid(f"Invalid query: bad date '{bound}'", "query")
    # ISO-8601 strings sort as dates; the upper bound covers its whole day.
    upper = high + "\uffff" if high else None

    def matches(device: dict[str, Any]) -> bool:
        stamp = device.get(field)
        if not stamp:
            return False
        return (not low or stamp >= low) and (upper is None or stamp <= upper)

    return matches


def _term(operator: str | None, value: str) -> Predicate:
    if operator is None:
        needle = value.casefold()
        return lambda d: (
            any(needle in str(d.get(f, "")).casefold() for f in FREE_TEXT_FIELDS)
            or any(needle in u.get("email", "").casefold() for u in d.get("recentUsers", ()))
        )
    operator = operator.lower()
    if operator == "status":
        wanted = STATUS_ALIASES.get(value.lower(), value.upper())
        return lambda d: d.get("status") == wanted
    if operator == "id":
        if len(value) < 3:
            return lambda d: d.get("serialNumber", "").casefold() == value.casefold()
        return _contains("serialNumber", value)
    if operator in TEXT_OPERATORS:
        return _contains(TEXT_OPERATORS[operator], value)
    if operator == "recent_user":
        needle = value.casefold()
        return lambda d: any(needle in u.get("email", "").casefold() for u in d.get("recentUsers", ()))
    if operator in DATE_OPERATORS:
        return _date_range(DATE_OPERATORS[operator], value)
    if operator in MAC_OPERATORS:
        mac = value.replace(":", "").lower()
        return lambda d: d.get(MAC_OPERATORS[operator], "").lower() == mac
    if operator == "chrome_version":
        return lambda d: d.get("osVersion", "").startswith(value)
    if operator == "boot_mode":
        return lambda d: d.get("bootMode", "").lower() == value.lower()
    raise invalid(f"Invalid query: unknown operator '{operator}'", "query")


def compile_query(query: str | None) -> Predicate | None:
    if not query or not query.strip():
        return None
    predicates = [
        _term(m.group(1), m.group(2) if m.group(2) is not None else m.group(3)) for m in TERM.finditer(query)
    ]
    return lambda device: all(p(device) for p in predicates)


# orderBy values and the device field each sorts on.
ORDER_FIELDS = {
    "annotatedLocation": "annotatedLocation",
    "annotatedUser": "annotatedUser",
    "lastSync": "lastSync",
    "notes": "notes",
    "serialNumber": "serialNumber",
    "status": "status",
}
