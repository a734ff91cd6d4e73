"""Language and country names for codes that come from outside (Google's customer record, directories).

People read "Français" and "France", not "fr" and "FR". Languages use Django's own table (every language it
knows, in the interface's language); countries a short list of the ones a French-speaking console meets, the
code itself for any other.
"""

from __future__ import annotations

from django.utils.translation import get_language_info
from django.utils.translation import gettext_lazy as _

COUNTRIES = {
    "FR": _("France"),
    "BE": _("Belgique"),
    "CH": _("Suisse"),
    "LU": _("Luxembourg"),
    "MC": _("Monaco"),
    "CA": _("Canada"),
    "DE": _("Allemagne"),
    "ES": _("Espagne"),
    "IT": _("Italie"),
    "GB": _("Royaume-Uni"),
    "IE": _("Irlande"),
    "NL": _("Pays-Bas"),
    "PT": _("Portugal"),
    "US": _("États-Unis"),
    "MA": _("Maroc"),
    "SN": _("Sénégal"),
    "TN": _("Tunisie"),
    "DZ": _("Algérie"),
}


def language_name(code: str) -> str:
    """``fr`` → "Français" (in the active language); an unknown code is returned as given."""
    if not code:
        return ""
    for candidate in (code, code.replace("_", "-").split("-")[0]):
        try:
            return str(get_language_info(candidate.lower())["name_translated"]).capitalize()
        except KeyError:
            continue
    return code


def country_name(code: str) -> str:
    """``FR`` → "France"; a code outside the list is returned as given."""
    return str(COUNTRIES.get(code.upper(), code)) if code else ""
