from __future__ import annotations

import json
import posixpath
from typing import Any

from django import forms
from django.conf import settings
from django.contrib.auth import authenticate
from django.contrib.auth.forms import AuthenticationForm
from django.core.files.uploadedfile import UploadedFile
from django.forms.fields import InvalidJSONInput, JSONString
from django.template.defaultfilters import filesizeformat
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _

from mdm.jsoninput import JSONInputError, parse_json_input
from mdm.models import App, AppKind, Blueprint, Tenant
from mdm.uploads import ALLOWED_EXTENSIONS, Package, PackageRejected, inspect_package


class ConsoleLoginForm(AuthenticationForm):
    """Local accounts sign in with their user name; directory (LDAP) accounts also name their organisation."""

    tenant = forms.SlugField(
        label=_("Organisation"),
        required=False,
        help_text=_("Identifiant de votre organisation, pour un compte de l'annuaire LDAP."),
    )
    field_order = ["tenant", "username", "password"]

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username")
        password = self.cleaned_data.get("password")
        tenant = self.cleaned_data.get("tenant") or None
        if username is not None and password:
            self.user_cache = authenticate(self.request, username=username, password=password, tenant=tenant)
            if self.user_cache is None:
                # The directory's own reason (locked, disabled, expired password...), set by TenantLDAPBackend.
                reason = getattr(self.request, "ldap_login_error", None)
                if reason:
                    raise forms.ValidationError(gettext(reason), code="ldap_refused")
                raise self.get_invalid_login_error()
            self.confirm_login_allowed(self.user_cache)
        return self.cleaned_data


class AuditFilterForm(forms.Form):
    category = forms.ChoiceField(label=_("Catégorie"), required=False)
    actor = forms.CharField(label=_("Acteur"), required=False, max_length=200)
    action = forms.CharField(label=_("Action"), required=False, max_length=100)
    date_from = forms.DateField(label=_("Du"), required=False, widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label=_("Au"), required=False, widget=forms.DateInput(attrs={"type": "date"}))

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        from mdm.audit import CATEGORIES

        super().__init__(*args, **kwargs)
        self.fields["category"].choices = [("", _("Toutes")), *CATEGORIES.items()]  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("date_from") and data.get("date_to") and data["date_from"] > data["date_to"]:
            raise forms.ValidationError(_("La date de début est postérieure à la date de fin."))
        return data


class TenantModelForm(forms.ModelForm):
    """A ModelForm for a tenant-owned model; the tenant is set from the view, never from input."""

    unique_field = "name"

    def __init__(self, *args: Any, tenant: Tenant, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.instance.tenant = tenant

    def _unique_clash(self, **lookup: Any) -> bool:
        model = type(self.instance)
        return model.objects.filter(**lookup).exclude(pk=self.instance.pk).exists()


# Typed settings forms contributed by platform integrations, registered from their AppConfig.ready(): the
# Blueprint page shows the platform's own form instead of raw JSON, and mdm imports none of them. A settings
# form takes ``(data, *, settings, blueprint, prefix)``, renders itself (``template_name``) and, once valid,
# returns the Blueprint's new settings from ``to_settings()``.
BLUEPRINT_SETTINGS_FORMS: dict[str, type[forms.Form]] = {}


def register_blueprint_settings_form(platform: str, form_class: type[forms.Form]) -> None:
    BLUEPRINT_SETTINGS_FORMS[platform] = form_class


class StrictJSONField(forms.JSONField):
    """JSON typed by a user, parsed strictly with limits (mdm/jsoninput.py): errors, never a 500."""

    def to_python(self, value: Any) -> Any:
        if self.disabled:
            return value
        if value in self.empty_values:
            return None
        if isinstance(value, list | dict | int | float | JSONString):
            return value
        try:
            converted = parse_json_input(str(value))
        except JSONInputError as exc:
            raise forms.ValidationError(gettext(exc.message), code="invalid", params=exc.params) from exc
        return JSONString(converted) if isinstance(converted, str) else converted

    def bound_data(self, data: Any, initial: Any) -> Any:
        if self.disabled:
            return initial
        if data is None:
            return None
        try:
            return parse_json_input(str(data))
        except JSONInputError:
            return InvalidJSONInput(data)


class BlueprintForm(TenantModelForm):
    settings = StrictJSONField(
        label=_("Paramètres (JSON)"),
        required=False,
        initial=dict,
        widget=forms.Textarea(attrs={"rows": 8}),
        help_text=_("Objet JSON. Les paramètres ChromeOS ont leur propre formulaire."),
    )

    class Meta:
        model = Blueprint
        fields = ["name", "platform", "description", "settings"]

    def __init__(self, *args: Any, typed_settings: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if typed_settings:
            # The platform's typed form edits the settings; the raw JSON field would fight with it.
            del self.fields["settings"]

    def clean_name(self) -> str:
        name = self.cleaned_data["name"].strip()
        if self._unique_clash(name=name):
            raise forms.ValidationError(_("Une configuration porte déjà ce nom."))
        return name

    def clean_settings(self) -> dict[str, Any]:
        value = self.cleaned_data.get("settings")
        if value in (None, ""):
            return {}
        if not isinstance(value, dict):
            raise forms.ValidationError(_("Les paramètres doivent être un objet JSON, par exemple {}."))
        return value


class _StoredPackage:
    """What the file widget shows as « Actuellement » : the uploader's name, linked to the download view."""

    def __init__(self, url: str, name: str) -> None:
        self.url = url
        self.name = name

    def __str__(self) -> str:
        return self.name


class PackageFileInput(forms.ClearableFileInput):
    """The stored package is linked through the console's download view (tenant and role checked), never
    through a media URL, and named as it was uploaded rather than by its random storage name."""

    download_url = ""
    display_name = ""

    def get_context(self, name: str, value: Any, attrs: dict[str, Any] | None) -> dict[str, Any]:
        context = super().get_context(name, value, attrs)
        if context["widget"]["is_initial"] and self.download_url:
            context["widget"]["value"] = _StoredPackage(self.download_url, self.display_name)
        return context


class AppForm(TenantModelForm):
    class Meta:
        model = App
        fields = ["name", "kind", "identifier", "file"]
        widgets = {"file": PackageFileInput(attrs={"accept": ",".join(ALLOWED_EXTENSIONS)})}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["file"].help_text = _("Paquet %(types)s, de %(limit)s au plus.") % {
            "types": ", ".join(ALLOWED_EXTENSIONS),
            "limit": filesizeformat(settings.APP_UPLOAD_MAX_BYTES),
        }
        widget = self.fields["file"].widget
        assert isinstance(widget, PackageFileInput)
        if self.instance.pk and self.instance.file:
            widget.download_url = reverse("mdm:app_download", args=[self.instance.pk])
            widget.display_name = self.instance.file_name or posixpath.basename(self.instance.file.name)
        self.package: Package | None = None

    def clean_file(self) -> Any:
        upload = self.cleaned_data.get("file")
        if isinstance(upload, UploadedFile):
            try:
                self.package = inspect_package(upload)
            except PackageRejected as exc:
                raise forms.ValidationError(exc.message) from exc
        return upload

    def clean(self) -> dict[str, Any]:
        super().clean()
        data = self.cleaned_data
        kind, identifier = data.get("kind"), (data.get("identifier") or "").strip()
        if kind == AppKind.CHROME and identifier and not _is_chrome_id(identifier):
            self.add_error("identifier", _("Un ID d'extension Chrome compte 32 lettres de a à p."))
        # False: the "clear" box was ticked.
        has_file = data.get("file") or (self.instance.file and data.get("file") is not False)
        if kind == AppKind.UPLOADED and not has_file and "file" not in self.errors:
            self.add_error("file", _("Une appli de type fichier a besoin d'un fichier."))
        if kind and identifier and self._unique_clash(kind=kind, identifier=identifier):
            self.add_error("identifier", _("Cette appli existe déjà."))
        data["identifier"] = identifier
        return data

    def _post_clean(self) -> None:
        super()._post_clean()  # type: ignore[misc]
        if self.package is not None:
            self.instance.file_name = self.package.name
            self.instance.file_size = self.package.size
            self.instance.file_sha256 = self.package.sha256
        elif self.cleaned_data.get("file") is False:
            self.instance.file_name, self.instance.file_size, self.instance.file_sha256 = "", None, ""


def _is_chrome_id(value: str) -> bool:
    return len(value) == 32 and all("a" <= c <= "p" for c in value)


def pretty_json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False)


class TenantSettingsForm(forms.Form):
    """The tenant's settings an admin chooses in the console (« Paramètres »)."""

    time_zone = forms.ChoiceField(
        label=_("Fuseau horaire"),
        help_text=_(
            "Les heures des pages, des exports CSV et de l'espace support sont affichées dans ce fuseau."
        ),
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from mdm.models import time_zone_names

        self.fields["time_zone"].choices = [(name, name) for name in sorted(time_zone_names())]  # type: ignore[attr-defined]
        self.fields["time_zone"].error_messages["invalid_choice"] = _(
            "« %(value)s » n'est pas un fuseau horaire connu (ex. : Europe/Paris)."
        )
