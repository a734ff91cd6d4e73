from __future__ import annotations

import re
from typing import Any

from django import forms
from django.core.validators import MaxValueValidator, MinValueValidator
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from ldap_sync.client import is_valid_bind_name, is_valid_dn, looks_like_filter, validate_uri
from ldap_sync.kinds import KIND_FIELDS, DirectoryKind, defaults
from ldap_sync.models import LdapDirectory, OuSelection
from mdm.forms import TenantModelForm
from mdm.outbound import has_control_characters

# Attribute names go into filters unescaped (only values can be escaped): allow nothing but a name.
ATTRIBUTE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,63}$")
GUARD_FIELDS = ("removal_guard_percent", "removal_guard_minimum", "missing_grace_days")
DN_FIELDS = ("base_dn", "group_base_dn", "admin_group_dn", "operator_group_dn", "readonly_group_dn")
FILTER_FIELDS = ("ou_filter", "user_filter", "disabled_filter")
KIND_REQUIRED_FIELDS = ("kind", "id_attribute", "login_attributes", "group_type")
ATTRIBUTE_FIELDS = (
    "id_attribute",
    "uid_attribute",
    "email_attribute",
    "email_fallback_attribute",
    "name_attribute",
)
# Seconds. 0 would fail every LDAP login; an LDAP login holds a web thread up to both, so they stay short:
# a directory that takes longer than that to answer is down for the console's purposes.
TIMEOUT_LIMITS = {"network_timeout": (1, 30), "operation_timeout": (1, 60)}
PASSWORD_DESTINATION_FIELDS = ("uri", "bind_dn", "start_tls", "ca_certificate")
# The PEM is multi-line; every other text field goes on the wire as one line.
LINE_FIELDS = (
    "uri",
    "bind_password",
    "bind_dn",
    *DN_FIELDS,
    *FILTER_FIELDS,
    *ATTRIBUTE_FIELDS,
    "login_attributes",
)


class LdapDirectoryForm(TenantModelForm):
    bind_password = forms.CharField(
        label=_("Mot de passe de liaison"),
        required=False,
        strip=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text=_("Laissez vide pour conserver le mot de passe enregistré."),
    )

    class Meta:
        model = LdapDirectory
        fields = [
            "kind",
            "uri",
            "start_tls",
            "ca_certificate",
            "bind_dn",
            "bind_password",
            "base_dn",
            "ou_filter",
            "user_filter",
            "disabled_filter",
            "id_attribute",
            "uid_attribute",
            "login_attributes",
            "email_attribute",
            "email_fallback_attribute",
            "name_attribute",
            "network_timeout",
            "operation_timeout",
            "group_type",
            "group_base_dn",
            "removal_guard_percent",
            "removal_guard_minimum",
            "missing_grace_days",
            "admin_group_dn",
            "operator_group_dn",
            "readonly_group_dn",
        ]
        widgets = {"ca_certificate": forms.Textarea(attrs={"rows": 4, "spellcheck": "false"})}

    def __init__(self, *args: Any, keep_stored_password: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # ldap_configure: whoever runs it holds the database and the keys, so the stored password is theirs.
        self.keep_stored_password = keep_stored_password
        # The stored password is never sent back to the browser; an empty field keeps it.
        self.stored_password = self.instance.bind_password or "" if self.instance.pk else ""
        # Where and how the stored password travels: changing any of these requires typing the password again.
        self.stored_destination = {name: getattr(self.instance, name) for name in PASSWORD_DESTINATION_FIELDS}
        self.initial.pop("bind_password", None)
        for name, (low, high) in TIMEOUT_LIMITS.items():
            timeout_field = self.fields[name]
            timeout_field.validators += [MinValueValidator(low), MaxValueValidator(high)]
            timeout_field.widget.attrs.update(min=low, max=high)
        # Left empty (or absent from an older page's POST), these take the kind's value: never a blank identity.
        for name in KIND_REQUIRED_FIELDS:
            self.fields[name].required = False
        self.fields["removal_guard_percent"].validators.append(MaxValueValidator(100))
        self.guard_before = {name: getattr(self.instance, name) for name in GUARD_FIELDS}
        for name in GUARD_FIELDS:  # left out (older scripts, ldap_configure): the current value stays
            self.fields[name].required = False

    def clean_uri(self) -> str:
        uri = self.cleaned_data["uri"].strip()
        problem = validate_uri(uri)
        if problem:
            raise forms.ValidationError(gettext(problem))
        return uri

    def clean_bind_password(self) -> str:
        password = self.cleaned_data.get("bind_password") or ""
        self.password_changed = bool(password)
        return password

    def clean_ca_certificate(self) -> str:
        pem = self.cleaned_data["ca_certificate"].strip()
        if not pem:
            return ""
        from cryptography import x509

        try:
            x509.load_pem_x509_certificates(pem.encode())
        except ValueError as exc:
            raise forms.ValidationError(
                _("Ce n'est pas un certificat PEM (-----BEGIN CERTIFICATE----- …).")
            ) from exc
        return pem + "\n"

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        for name in GUARD_FIELDS:
            if data.get(name) is None and name not in self.errors:
                data[name] = getattr(self.instance, name)
        for name in LINE_FIELDS:
            if has_control_characters(str(data.get(name) or "")):
                self.add_error(
                    name,
                    _(
                        "Ce champ contient des caractères de contrôle (retour chariot, saut de ligne, "
                        "caractère nul…) : retirez-les."
                    ),
                )
                data.pop(name, None)
        self._fill_kind_defaults(data)
        bind_dn = (data.get("bind_dn") or "").strip()
        data["bind_dn"] = bind_dn
        if bind_dn and not is_valid_bind_name(bind_dn):
            self.add_error(
                "bind_dn",
                _(
                    "Indiquez un DN (cn=svc,dc=example,dc=com), un UPN (svc@example.com) "
                    "ou DOMAINE\\utilisateur."
                ),
            )
        if not data.get("bind_password") and self.stored_password and "bind_password" not in self.errors:
            if data.get("bind_dn") and not self.keep_stored_password and self.destination_changed(data):
                self.add_error(
                    "bind_password",
                    _(
                        "L'adresse du serveur, le DN de liaison ou le chiffrement a changé : saisissez à nouveau "
                        "le mot de passe de liaison (le mot de passe enregistré n'est envoyé qu'au serveur "
                        "enregistré)."
                    ),
                )
            else:
                data["bind_password"] = self.stored_password
        for name in DN_FIELDS:
            value = (data.get(name) or "").strip()
            data[name] = value
            if value and not is_valid_dn(value):
                self.add_error(name, _("Ce DN n'est pas valide (exemple : ou=Paris,dc=example,dc=com)."))
        if not data.get("base_dn") and "base_dn" not in self.errors:
            self.add_error("base_dn", _("Indiquez le DN de base."))
        for name in FILTER_FIELDS:
            value = (data.get(name) or "").strip()
            data[name] = value
            if value and not looks_like_filter(value):
                self.add_error(
                    name,
                    _("Filtre mal formé : il doit être entre parenthèses, par exemple (objectClass=person)."),
                )
        for name in ATTRIBUTE_FIELDS:
            value = (data.get(name) or "").strip()
            data[name] = value
            if value and not ATTRIBUTE_NAME.match(value):
                self.add_error(name, _("Un nom d'attribut LDAP : lettres, chiffres et tirets."))
        logins = (data.get("login_attributes") or "").split()
        data["login_attributes"] = " ".join(logins)
        if any(not ATTRIBUTE_NAME.match(value) for value in logins):
            self.add_error(
                "login_attributes",
                _("Des noms d'attributs LDAP séparés par des espaces : lettres, chiffres et tirets."),
            )
        uri = data.get("uri") or ""
        if data.get("start_tls") and uri.lower().startswith("ldaps://"):
            self.add_error(
                "start_tls", _("StartTLS ne s'utilise qu'avec ldap:// (ldaps:// est déjà chiffré).")
            )
        if data.get("bind_dn") and not data.get("bind_password") and "bind_password" not in self.errors:
            self.add_error("bind_password", _("Indiquez le mot de passe du DN de liaison."))
        return data

    def _fill_kind_defaults(self, data: dict[str, Any]) -> None:
        """A new kind brings its defaults to every field still at the previous kind's default (or empty)."""
        previous = self.instance.kind or DirectoryKind.OPENLDAP
        # A POST from before these settings existed (an open page, a script) keeps them as they are.
        for name in (*KIND_FIELDS, "kind", "group_base_dn"):
            if name not in self.data:
                data[name] = getattr(self.instance, name)
        kind = data.get("kind") or previous
        data["kind"] = kind
        if kind != previous:
            old = defaults(previous)
            for name in KIND_FIELDS:
                if (data.get(name) or "").strip() in ("", old[name]):
                    data[name] = defaults(kind)[name]
        for name in KIND_REQUIRED_FIELDS[1:]:
            if not (data.get(name) or "").strip():
                data[name] = defaults(kind)[name]

    def destination_changed(self, data: dict[str, Any]) -> bool:
        stored = self.stored_destination
        return (
            (data.get("uri") or "").strip() != (stored["uri"] or "").strip()
            or (data.get("bind_dn") or "").strip() != (stored["bind_dn"] or "").strip()
            or bool(data.get("start_tls")) != bool(stored["start_tls"])
            or (data.get("ca_certificate") or "").strip() != (stored["ca_certificate"] or "").strip()
        )

    def changed_fields(self) -> list[str]:
        changed = [
            name
            for name in self.changed_data
            if name != "bind_password"
            and not (name in GUARD_FIELDS and self.cleaned_data.get(name) == self.guard_before[name])
            and self.cleaned_data.get(name) != self.initial.get(name)
        ]
        if getattr(self, "password_changed", False):
            changed.append("bind_password")
        return changed


class OrgUnitSelectionForm(forms.Form):
    mode = forms.ChoiceField(
        label=_("Unités organisationnelles ajoutées"), choices=OuSelection.choices, widget=forms.RadioSelect
    )
    selected = forms.TypedMultipleChoiceField(coerce=int, required=False, choices=())
    # The page's script sends the ticked OUs as one comma-separated field: a thousand checkboxes would be a
    # thousand fields, past Django's DATA_UPLOAD_MAX_NUMBER_FIELDS (HTTP 400 before any view runs).
    selected_ids = forms.CharField(required=False, max_length=200_000)

    def __init__(self, *args: Any, org_unit_ids: list[int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.org_unit_ids = set(org_unit_ids)
        # Only this tenant's OUs are valid choices: an id of another tenant's OU is rejected as invalid.
        self.fields["selected"].choices = [(pk, pk) for pk in org_unit_ids]  # type: ignore[attr-defined]

    def clean_selected_ids(self) -> list[int]:
        text = self.cleaned_data.get("selected_ids") or ""
        try:
            ids = {int(part) for part in text.split(",") if part.strip()}
        except ValueError as exc:
            raise forms.ValidationError(_("Choix d'unités organisationnelles illisible.")) from exc
        if ids - self.org_unit_ids:
            raise forms.ValidationError(_("Choix d'unités organisationnelles illisible."))
        return sorted(ids)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        data["selected"] = sorted(set(data.get("selected") or []) | set(data.get("selected_ids") or []))
        if data.get("mode") == OuSelection.SELECTED and not data.get("selected"):
            raise forms.ValidationError(_("Choisissez au moins une unité organisationnelle."))
        return data
