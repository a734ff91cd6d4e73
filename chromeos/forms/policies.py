"""Forms of policy assignments: the typed ChromeOS settings of a Blueprint (registered with ``mdm`` for the
ChromeOS platform, see ``ChromeosConfig.ready``), and the assignment form."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from django import forms
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.template.loader import render_to_string
from django.utils.safestring import SafeString, mark_safe
from django.utils.translation import gettext_lazy as _

from chromeos.policy_schemas import (
    BLUEPRINT_SETTINGS,
    RESTRICTED_LIST,
    SECTION_HELP,
    SETTINGS_BY_KEY,
    AppContext,
    InstallType,
    PolicySetting,
    Section,
)

if TYPE_CHECKING:
    from django.forms import BoundField
    from django_stubs_ext import StrOrPromise

    from mdm.models import Blueprint

NOT_CONFIGURED = ""
MAX_LIST_ENTRIES = 500
DOMAIN_WILDCARD = re.compile(r"^\*@[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?$")


def _encode(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


class ChromeOSSettingsForm(forms.Form):
    """One field per catalog setting; "Non configuré" leaves the setting to what the OU inherits.

    Keys of ``Blueprint.settings`` that are not in the catalog are kept as they are: nothing is lost by saving.
    """

    template_name = "chromeos/policies_blueprint_settings.html"

    def __init__(
        self,
        data: Any = None,
        *,
        settings: dict[str, Any] | None = None,
        blueprint: Blueprint | None = None,
        prefix: str = "settings",
    ) -> None:
        super().__init__(data, prefix=prefix)
        self.original = dict(settings or {})
        self.blueprint = blueprint
        for setting in BLUEPRINT_SETTINGS:
            self.fields[setting.key] = self._field(setting)
            if setting.key in self.original and self.original[setting.key] is not None:
                value = self.original[setting.key]
                self.initial[setting.key] = "\n".join(value) if setting.kind == "list" else _encode(value)

    @staticmethod
    def _field(setting: PolicySetting) -> forms.Field:
        if setting.kind == "list":
            return forms.CharField(
                label=setting.label,
                help_text=setting.help_text,
                required=False,
                widget=forms.Textarea(attrs={"rows": 3}),
            )
        choices: list[tuple[str, StrOrPromise]] = [
            (NOT_CONFIGURED, _("Non configuré (hérité de l'unité parente)"))
        ]
        choices += [(_encode(value), label) for value, label in setting.choices]
        return forms.ChoiceField(
            label=setting.label, help_text=setting.help_text, required=False, choices=choices
        )

    def render(
        self, template_name: str | None = None, context: Any = None, renderer: Any = None
    ) -> SafeString:
        # The sections' template lives in the project's templates/, which Django's form renderer does not search.
        return mark_safe(render_to_string(template_name or self.template_name, context or {"form": self}))  # noqa: S308

    __str__ = render
    __html__ = render

    def _decode(self, setting: PolicySetting, raw: Any) -> Any:
        if setting.kind == "list":
            return raw
        if raw in (None, NOT_CONFIGURED):
            return None
        for value, _label in setting.choices:
            if _encode(value) == raw:
                return value
        raise ValidationError(_("Valeur inconnue."))  # ChoiceField already refused it; kept for safety

    def clean_sign_in_allowlist(self) -> list[str] | None:
        raw = self.cleaned_data.get("sign_in_allowlist") or ""
        entries: list[str] = []
        for line in raw.replace(",", "\n").splitlines():
            entry = line.strip()
            if not entry or entry in entries:
                continue
            if not DOMAIN_WILDCARD.match(entry):
                try:
                    validate_email(entry)
                except ValidationError:
                    raise ValidationError(
                        _("« %(entry)s » n'est ni une adresse e-mail ni un domaine du type *@exemple.fr."),
                        params={"entry": entry},
                    ) from None
            entries.append(entry)
        if len(entries) > MAX_LIST_ENTRIES:
            raise ValidationError(_("Au plus %(max)d utilisateurs."), params={"max": MAX_LIST_ENTRIES})
        return entries or None

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        restriction = data.get("sign_in_restriction")
        allowlist = data.get("sign_in_allowlist")
        if restriction == RESTRICTED_LIST and not allowlist:
            self.add_error("sign_in_allowlist", _("Indiquez au moins un utilisateur ou un domaine autorisé."))
        elif allowlist and restriction != RESTRICTED_LIST:
            self.add_error(
                "sign_in_allowlist",
                _("La liste ne sert qu'avec « Limiter la connexion à une liste d'utilisateurs »."),
            )
        return data

    def to_settings(self) -> dict[str, Any]:
        """The Blueprint's new ``settings``: the catalog's configured values plus the keys it does not know."""
        settings = {k: v for k, v in self.original.items() if k not in SETTINGS_BY_KEY}
        for setting in BLUEPRINT_SETTINGS:
            value = self._decode(setting, self.cleaned_data.get(setting.key))
            if value is not None:
                settings[setting.key] = value
        return settings

    def sections(self) -> list[tuple[str, str, list[BoundField]]]:
        """(title, help, fields) per section, for the template."""
        return [
            (
                str(section.label),
                str(SECTION_HELP.get(section, "")),
                [self[s.key] for s in BLUEPRINT_SETTINGS if s.section == section],
            )
            for section in Section
        ]


class SubjectSelect(forms.Select):
    """The subject list, with the Blueprints that cannot be assigned shown greyed out in their group: an admin
    sees them and why, instead of wondering where they went. They are not choices: the form refuses them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.unassignable: list[tuple[str, str]] = []

    def optgroups(self, name: str, value: list[str], attrs: dict[str, Any] | None = None) -> list[Any]:
        groups = super().optgroups(name, value, attrs)
        blueprint_group = str(_("Configurations (Blueprints)"))
        for group_name, options, index in groups:
            if group_name == blueprint_group:
                for key, label in self.unassignable:
                    option = self.create_option(name, key, label, False, index or 0, subindex=len(options))
                    option["attrs"]["disabled"] = True  # Select's options do not inherit the attrs passed
                    options.append(option)
        return groups


class AssignmentForm(forms.Form):
    """What to assign where. Choices come from the view (supported OUs, ChromeOS Blueprints, apps)."""

    org_unit = forms.TypedChoiceField(label=_("Unité organisationnelle"), coerce=int)
    subject = forms.ChoiceField(label=_("Configuration ou appli"), widget=SubjectSelect)
    app_context = forms.ChoiceField(
        label=_("Contexte (applis)"), choices=AppContext.choices, initial=AppContext.USERS, required=False
    )
    install_type = forms.ChoiceField(
        label=_("Type d'installation (applis)"),
        choices=InstallType.choices,
        initial=InstallType.FORCE_INSTALL,
        required=False,
    )

    def __init__(
        self,
        data: Any = None,
        *,
        org_units: list[tuple[int, str]],
        blueprints: list[tuple[int, str]],
        apps: list[tuple[int, str]],
        unassignable: list[tuple[int, str]] | None = None,
    ) -> None:
        super().__init__(data)
        org_unit_field = self.fields["org_unit"]
        assert isinstance(org_unit_field, forms.ChoiceField)
        org_unit_field.choices = [("", "—"), *org_units]
        subject_field = self.fields["subject"]
        assert isinstance(subject_field, forms.ChoiceField)
        subject_field.choices = [
            ("", "—"),
            (_("Configurations (Blueprints)"), [(f"blueprint:{pk}", name) for pk, name in blueprints]),
            (_("Applis"), [(f"app:{pk}", name) for pk, name in apps]),
        ]
        widget = subject_field.widget
        assert isinstance(widget, SubjectSelect)
        widget.unassignable = [
            (f"unassignable:{pk}", str(_("%(name)s — aucun paramètre ChromeOS") % {"name": name}))
            for pk, name in unassignable or []
        ]

    def subject_parts(self) -> tuple[str, int]:
        kind, _sep, pk = self.cleaned_data["subject"].partition(":")
        return kind, int(pk)
