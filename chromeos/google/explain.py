"""Google's error texts in the admin's words.

Google answers in English, with a machine reason (``conditionNotMet``, ``quotaExceeded``...), an HTTP status, and
for batch calls a per-device ``google.rpc.Status`` message (« Illegal device state transition from DISABLED. »).
The console stores that text as Google gave it (``error_detail``: message, then ``(reason)`` and ``[HTTP n]``)
on job items, sync runs and policy assignments; the pages show :func:`explain_google_error`'s short sentence,
with the raw detail behind « Détail technique ». A text that matches no rule (or is the console's own French)
is shown as it is.

| Google says (message, reason or status)                                   | the admin reads                                              |
|----------------------------------------------------------------------------|--------------------------------------------------------------|
| « Illegal device state transition from DISABLED »                          | Google refuse : l'appareil est déjà désactivé.               |
| « … from ACTIVE »                                                          | Google refuse : l'appareil est déjà actif.                   |
| « … from DEPROVISIONED »                                                   | Google refuse : l'appareil est déprovisionné …               |
| « Illegal device state transition » (no state), 412 ``conditionNotMet``    | Google refuse : l'appareil n'est pas dans un état qui le permet. |
| « No available licenses »                                                  | Google refuse : plus aucune licence disponible …             |
| « Device is not active »                                                   | Google refuse : l'appareil n'est pas actif …                 |
| « Device not found », 404 ``notFound``                                     | Google ne connaît pas (ou plus) cet appareil ou cet objet.   |
| 501, ``notImplemented``, « Not Implemented », « kiosk mode only »          | Google ne prend pas en charge cette action pour cet appareil. |
| ``dailyLimitExceeded``                                                     | Quota Google atteint pour aujourd'hui …                      |
| 429, ``rateLimitExceeded``, ``userRateLimitExceeded``, ``quotaExceeded``   | Quota Google atteint : Google ralentit les requêtes …         |
| ``insufficientPermissions``                                                | Google refuse : l'autorisation accordée ne couvre pas …      |
| ``forbidden``, « Not Authorized »                                          | Google refuse : le compte … n'est pas (ou plus) administrateur. |
| 401, ``authError``, ``invalid_grant``                                      | Google n'accepte plus l'autorisation de la console …          |
| 500, 502, 503, 504, ``backendError``                                        | Google est momentanément indisponible …                      |
| 400 ``invalid`` / ``INVALID_ARGUMENT``, « Invalid Input »                  | Google refuse la demande : une valeur envoyée n'est pas valide. |
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _

from chromeos.google.errors import GoogleError

_STATUS = re.compile(r"\[HTTP (\d{3})\]")
_REASON = re.compile(r"\(([a-zA-Z_]+)\)")


@dataclass(frozen=True)
class Explained:
    """A Google error in words: ``summary`` is the sentence for the admin, ``detail`` Google's raw text."""

    summary: str
    detail: str


def error_detail(exc: GoogleError) -> str:
    """What the console stores of a Google error: its message, then its reason and HTTP status when the
    message does not already say them (``explain_google_error`` reads them back)."""
    parts = [exc.message or type(exc).__name__]
    if exc.reason and exc.reason not in exc.message:
        parts.append(f"({exc.reason})")
    if exc.status and f"HTTP {exc.status}" not in exc.message:
        parts.append(f"[HTTP {exc.status}]")
    return " ".join(parts)


def _rules() -> list[tuple[re.Pattern[str] | None, set[str], set[int], Promise]]:
    """(message pattern, reasons, HTTP statuses, sentence): the first rule that matches any of the three wins.
    Per-device messages first (they are precise), then reasons, then statuses."""
    return [
        (
            re.compile(r"state transition from DISABLED", re.I),
            set(),
            set(),
            _("Google refuse : l'appareil est déjà désactivé."),
        ),
        (
            re.compile(r"state transition from ACTIVE", re.I),
            set(),
            set(),
            _("Google refuse : l'appareil est déjà actif."),
        ),
        (
            re.compile(r"state transition from DEPROVISIONED", re.I),
            set(),
            set(),
            _(
                "Google refuse : l'appareil est déprovisionné ; il ne peut plus être désactivé ni réactivé "
                "(il doit d'abord être réinscrit)."
            ),
        ),
        (
            re.compile(r"no available licen[cs]es", re.I),
            set(),
            set(),
            _(
                "Google refuse : plus aucune licence Chrome disponible pour réactiver l'appareil. "
                "Libérez ou achetez une licence, puis relancez."
            ),
        ),
        (
            re.compile(r"device is not active", re.I),
            set(),
            set(),
            _(
                "Google refuse : l'appareil n'est pas actif (désactivé ou déprovisionné), il ne reçoit pas de commande."
            ),
        ),
        (
            re.compile(r"illegal device state transition", re.I),
            {"conditionNotMet"},
            {412},
            _("Google refuse : l'appareil n'est pas dans un état qui permet cette action."),
        ),
        (
            re.compile(r"not implemented|kiosk mode only|only (?:supported|available) (?:on|in) kiosk", re.I),
            {"notImplemented", "unsupported"},
            {501, 505},
            _("Google ne prend pas en charge cette action pour cet appareil."),
        ),
        (
            re.compile(r"device not found|resource not found", re.I),
            {"notFound"},
            {404},
            _(
                "Google ne connaît pas (ou plus) cet appareil ou cet objet : il a peut-être été supprimé chez Google."
            ),
        ),
        (
            None,
            {"dailyLimitExceeded"},
            set(),
            _(
                "Quota Google atteint pour aujourd'hui : l'opération reprendra quand Google rétablira le quota."
            ),
        ),
        (
            re.compile(r"quota exceeded|rate limit", re.I),
            {"rateLimitExceeded", "userRateLimitExceeded", "quotaExceeded"},
            {429},
            _(
                "Quota Google atteint : Google ralentit les requêtes de la console. Réessayez dans quelques "
                "minutes."
            ),
        ),
        (
            None,
            {"insufficientPermissions"},
            set(),
            _(
                "Google refuse : l'autorisation accordée à la console ne couvre pas cette opération. "
                "Réautorisez Google depuis Gestion ChromeOS."
            ),
        ),
        (
            re.compile(r"not authorized to access", re.I),
            {"forbidden"},
            set(),
            _(
                "Google refuse : le compte qui a autorisé la console n'est pas (ou plus) administrateur du "
                "domaine."
            ),
        ),
        (
            re.compile(r"invalid_grant|token has been expired or revoked", re.I),
            {"authError", "invalid_grant"},
            {401},
            _("Google n'accepte plus l'autorisation de la console : réautorisation requise."),
        ),
        (
            re.compile(r"backend error|service unavailable|timed? ?out", re.I),
            {"backendError", "internalError"},
            {500, 502, 503, 504},
            _("Google est momentanément indisponible : réessayez plus tard."),
        ),
        (
            re.compile(r"invalid input|invalid value|INVALID_ARGUMENT", re.I),
            {"invalid", "badRequest", "invalidArgument"},
            {400},
            _("Google refuse la demande : une valeur envoyée n'est pas valide."),
        ),
    ]


def explain_google_error(text: str) -> Explained | None:
    """The admin's sentence for a stored Google error text, or None when no rule knows it (the text is then
    shown as it is: it may be the console's own words)."""
    text = (text or "").strip()
    if not text:
        return None
    status_match = _STATUS.search(text)
    status = int(status_match.group(1)) if status_match else None
    reasons = set(_REASON.findall(text))
    for pattern, rule_reasons, statuses, sentence in _rules():
        if (
            (pattern is not None and pattern.search(text))
            or reasons & rule_reasons
            or (status is not None and status in statuses)
        ):
            return Explained(summary=str(sentence), detail=text)
    return None
