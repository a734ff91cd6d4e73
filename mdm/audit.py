"""The audit log for humans: one sentence per event, its object linked, grouped in categories.

Events keep their stable codes (``blueprint.update``, ``device.cmd_reboot.finished``): those are what
support greps and what the CSV keeps. Each app registers how its codes read (``register_audit_messages``),
a sentence with ``%(actor)s`` and ``%(object)s`` (the event's target, linked when the object has a page),
plus any of the event's details by name. An unknown code still reads as a sentence, never as a dict repr.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.urls import NoReverseMatch, reverse
from django.utils.html import conditional_escape, format_html
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext_lazy as _

from mdm import csv_export
from mdm.display import neutralise
from mdm.models import AuditEvent

CATEGORIES: dict[str, Any] = {
    "console": _("Configurations et applis"),
    "ldap": _("Annuaire LDAP"),
    "google": _("Intégration Google"),
    "devices": _("Périphériques"),
    "policies": _("Affectations"),
    "signin": _("Connexions"),
    "other": _("Autres"),
}
# Code prefix → category; the longest matching prefix wins.
CATEGORY_PREFIXES: dict[str, str] = {
    "tenant.": "console",
    "blueprint.": "console",
    "app.": "console",
    "auth.": "signin",
}


@dataclass(frozen=True)
class AuditMessage:
    sentence: Any  # lazy text with %(actor)s, %(object)s and detail names
    link: Callable[[AuditEvent], str | None] | None = None


AUDIT_MESSAGES: dict[str, AuditMessage] = {}
# For codes built from a variable part (``device.<action>``): prefix → how to read them.
AUDIT_PREFIX_MESSAGES: dict[str, Callable[[str], AuditMessage | None]] = {}


def register_audit_messages(
    messages: dict[str, AuditMessage],
    *,
    categories: dict[str, str] | None = None,
    prefixes: dict[str, Callable[[str], AuditMessage | None]] | None = None,
) -> None:
    AUDIT_MESSAGES.update(messages)
    CATEGORY_PREFIXES.update(categories or {})
    AUDIT_PREFIX_MESSAGES.update(prefixes or {})


def url_or_none(name: str, *args: Any) -> str | None:
    """A page's URL, or None when the id is missing (an event written before the object had a page)."""
    if any(a in (None, "") for a in args):
        return None
    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None


def detail_link(name: str, key: str) -> Callable[[AuditEvent], str | None]:
    return lambda event: url_or_none(name, (event.details or {}).get(key))


def category_of(action: str) -> str:
    best, best_len = "other", 0
    for prefix, category in CATEGORY_PREFIXES.items():
        if action.startswith(prefix) and len(prefix) > best_len:
            best, best_len = category, len(prefix)
    return best


def category_prefixes(category: str) -> list[str]:
    return [prefix for prefix, cat in CATEGORY_PREFIXES.items() if cat == category]


def _message(action: str) -> AuditMessage | None:
    if action in AUDIT_MESSAGES:
        return AUDIT_MESSAGES[action]
    for prefix, build in AUDIT_PREFIX_MESSAGES.items():
        if action.startswith(prefix):
            found = build(action[len(prefix) :])
            if found is not None:
                return found
    return None


def _value(value: Any) -> str:
    """A detail's value in words: no ``None``, no Python reprs."""
    if value is None or value == "":
        return "—"
    if isinstance(value, bool):
        return str(_("oui") if value else _("non"))
    if isinstance(value, dict):
        return ", ".join(f"{k} : {_value(v)}" for k, v in value.items()) or "—"
    if isinstance(value, list | tuple):
        return ", ".join(_value(v) for v in value) or "—"
    return str(value)


def actor_name(event: AuditEvent) -> str:
    actor = event.actor
    return actor.display_name if actor is not None else event.actor_label


def sentence(event: AuditEvent) -> SafeString:
    """The event as one sentence, its object linked when it has a page (HTML-safe)."""
    message = _message(event.action)
    link = message.link(event) if message and message.link else None
    target = event.target or "—"
    obj = (
        format_html('<a href="{}">{}</a>', link, target)
        if link
        else format_html("<strong>{}</strong>", target)
    )
    values: dict[str, Any] = {
        k: conditional_escape(_value(v)) for k, v in (event.details or {}).items() if isinstance(k, str)
    }
    values.update(actor=conditional_escape(actor_name(event)), object=obj)
    if message is None:
        template = _("%(actor)s : action « %(code)s » sur %(object)s.")
        values["code"] = conditional_escape(event.action)
    else:
        template = message.sentence
    try:
        text = conditional_escape(str(template)) % _Defaulting(values)
    except (ValueError, TypeError):
        text = conditional_escape(str(template))
    return mark_safe(text)  # noqa: S308 - the template and every value were escaped above


class _Defaulting(dict[str, Any]):
    """A detail a sentence names but an old event lacks reads as a dash, not as a KeyError."""

    def __missing__(self, key: str) -> str:
        return "—"


def detail_pairs(event: AuditEvent) -> list[tuple[str, str]]:
    """The event's details as (name, value in words), for the disclosure under the sentence and the CSV."""
    return [(str(k), _value(v)) for k, v in (event.details or {}).items()]


def csv_row(event: AuditEvent, when: str) -> list[str]:
    text = str(sentence(event))
    plain = _strip_tags(text)
    details = " ; ".join(f"{k} = {v}" for k, v in detail_pairs(event))
    return [
        when,
        actor_name(event),
        str(CATEGORIES[category_of(event.action)]),
        plain,
        event.action,
        event.target,
        details,
    ]


def _strip_tags(text: str) -> str:
    import html

    from django.utils.html import strip_tags

    return html.unescape(strip_tags(text))


def csv_safe(value: str) -> str:
    # Targets and details come from people, Google and LDAP: formulas (also after blanks, and full-width signs)
    # and invisible characters are neutralised as in every export (mdm/csv_export.py).
    return csv_export.csv_safe(neutralise(value))


def core_messages() -> dict[str, AuditMessage]:
    blueprint = detail_link("mdm:blueprint_edit", "blueprint_id")
    app = detail_link("mdm:app_edit", "app_id")
    return {
        "tenant.create": AuditMessage(
            _("Le locataire %(object)s a été créé, avec l'administrateur %(admin)s.")
        ),
        "tenant.settings.update": AuditMessage(
            _("%(actor)s a changé le fuseau horaire de %(previous_time_zone)s à %(time_zone)s."),
            lambda event: url_or_none("mdm:settings"),
        ),
        "blueprint.create": AuditMessage(_("%(actor)s a créé la configuration %(object)s."), blueprint),
        "blueprint.update": AuditMessage(_("%(actor)s a modifié la configuration %(object)s."), blueprint),
        "blueprint.delete": AuditMessage(_("%(actor)s a supprimé la configuration %(object)s.")),
        "app.create": AuditMessage(_("%(actor)s a ajouté l'appli %(object)s."), app),
        "app.update": AuditMessage(_("%(actor)s a modifié l'appli %(object)s."), app),
        "app.delete": AuditMessage(_("%(actor)s a supprimé l'appli %(object)s.")),
        # Sign-ins (mdm.services.signin_record): the object is the user name as typed.
        "auth.login": AuditMessage(_("Connexion de %(object)s depuis l'adresse %(address)s.")),
        "auth.login_failed": AuditMessage(
            _(
                "Échec de connexion pour %(object)s depuis l'adresse %(address)s (mot de passe ou compte refusé)."
            )
        ),
        "auth.login_blocked": AuditMessage(
            _(
                "Connexion refusée sans vérification pour %(object)s depuis l'adresse %(address)s : trop d'échecs."
            )
        ),
    }
