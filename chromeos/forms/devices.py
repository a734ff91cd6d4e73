"""Forms of the device inventory: the list's filters, the column chooser, an action's parameters and confirmation."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _

from chromeos.models import DeviceAction
from chromeos.selectors.devices import COLUMNS, DEFAULT_SORT, PAGE_SIZES, STATUSES, DeviceFilter
from chromeos.services.devices import (
    ANNOTATION_LIMITS,
    DEPROVISION_REASONS,
    TYPED_CONFIRMATION_THRESHOLD,
    is_destructive,
)


class DeviceFilterForm(forms.Form):
    q = forms.CharField(
        label=_("Rechercher"),
        required=False,
        max_length=200,
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": _("Série, inventaire, utilisateur, MAC, modèle…")}
        ),
    )
    status = forms.ChoiceField(label=_("Statut"), required=False)
    org_unit = forms.CharField(
        label=_("Unité organisationnelle"),
        required=False,
        max_length=1024,
        widget=forms.TextInput(attrs={"list": "org-units", "placeholder": "/"}),
    )
    include_children = forms.ChoiceField(
        label=_("Sous-unités"),
        required=False,
        choices=[("1", _("Incluses")), ("0", _("Exclues"))],
    )
    support = forms.ChoiceField(
        label=_("Prise en charge de l'UO"),
        required=False,
        choices=[
            ("", _("Toutes")),
            ("supported", _("Prises en charge (LDAP)")),
            ("unsupported", _("Non prises en charge")),
        ],
    )
    os_version = forms.ChoiceField(label=_("Version de l'OS"), required=False)
    model = forms.ChoiceField(label=_("Modèle"), required=False)
    sync_older_than_days = forms.IntegerField(
        label=_("Sans synchro depuis (jours)"), required=False, min_value=0, max_value=3650
    )
    aue = forms.ChoiceField(
        label=_("Fin des mises à jour"),
        required=False,
        choices=[("", _("Toutes")), ("passed", _("Dépassée")), ("soon", _("Dans moins de 6 mois"))],
    )
    removed = forms.ChoiceField(
        label=_("Retirés de Google"),
        required=False,
        choices=[("", _("Masqués")), ("only", _("Seulement eux")), ("all", _("Affichés aussi"))],
    )
    sort = forms.ChoiceField(required=False, choices=[(c, c) for c in COLUMNS], widget=forms.HiddenInput)
    dir = forms.ChoiceField(
        required=False, choices=[("asc", "asc"), ("desc", "desc")], widget=forms.HiddenInput
    )

    def __init__(
        self,
        data: Any = None,
        *,
        models: list[str] | None = None,
        os_versions: list[str] | None = None,
    ) -> None:
        super().__init__(data)
        everything = [("", _("Tous"))]
        self.fields["status"].choices = everything + list(STATUSES.items())  # type: ignore[attr-defined]
        # A value outside the current facets (e.g. a bookmarked URL) still filters: it stays selectable.
        current = data or {}
        model_values = sorted({*(models or []), str(current.get("model") or "")} - {""})
        os_values = sorted({*(os_versions or []), str(current.get("os_version") or "")} - {""})
        self.fields["model"].choices = everything + [(m, m) for m in model_values]  # type: ignore[attr-defined]
        self.fields["os_version"].choices = [("", _("Toutes"))] + [(v, v) for v in os_values]  # type: ignore[attr-defined]

    def to_filter(self) -> DeviceFilter:
        if not self.is_bound or not self.is_valid():
            return DeviceFilter()
        data = self.cleaned_data
        return DeviceFilter(
            q=data.get("q") or "",
            status=data.get("status") or "",
            org_unit=data.get("org_unit") or "",
            include_children=data.get("include_children") != "0",
            support=data.get("support") or "",
            os_version=data.get("os_version") or "",
            model=data.get("model") or "",
            sync_older_than_days=data.get("sync_older_than_days"),
            aue=data.get("aue") or "",
            removed=data.get("removed") or "",
            sort=data.get("sort") or DEFAULT_SORT,
            descending=data.get("dir") == "desc",
        )


class ColumnsForm(forms.Form):
    columns = forms.MultipleChoiceField(
        label=_("Colonnes"),
        required=False,
        choices=[(key, label) for key, (_f, label) in COLUMNS.items()],
        widget=forms.CheckboxSelectMultiple,
    )
    per_page = forms.TypedChoiceField(
        label=_("Lignes par page"), coerce=int, choices=[(n, n) for n in PAGE_SIZES], required=False
    )


class ActionPrepareForm(forms.Form):
    """The list's (or the detail page's) request to act: which action, on which devices."""

    action = forms.ChoiceField(label=_("Action"), choices=DeviceAction.choices)
    # "selection": the checked rows (``ids``); "filter": every device matching the list's filter (``filter``).
    scope = forms.ChoiceField(choices=[("selection", "selection"), ("filter", "filter")], initial="selection")
    ids = forms.TypedMultipleChoiceField(coerce=int, required=False)
    filter = forms.CharField(required=False, max_length=4000)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Any integer is acceptable here: the service keeps only the current tenant's devices.
        self.fields["ids"].valid_value = lambda value: True  # type: ignore[attr-defined]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("scope") == "selection" and not data.get("ids"):
            raise forms.ValidationError(_("Sélectionnez au moins un périphérique."))
        return data


class ActionConfirmForm(forms.Form):
    """The confirmation page's form: the action's parameters, and the typed confirmation when required."""

    org_unit_path = forms.ChoiceField(label=_("Unité organisationnelle de destination"), required=False)
    deprovision_reason = forms.ChoiceField(
        label=_("Motif du déprovisionnement"),
        required=False,
        choices=[("", "—"), *DEPROVISION_REASONS.items()],
    )
    volume = forms.IntegerField(label=_("Volume (%)"), required=False, min_value=0, max_value=100)
    annotated_user = forms.CharField(
        label=_("Utilisateur annoté"), required=False, max_length=ANNOTATION_LIMITS["annotated_user"]
    )
    annotated_location = forms.CharField(
        label=_("Emplacement"), required=False, max_length=ANNOTATION_LIMITS["annotated_location"]
    )
    annotated_asset_id = forms.CharField(
        label=_("Numéro d'inventaire"), required=False, max_length=ANNOTATION_LIMITS["annotated_asset_id"]
    )
    notes = forms.CharField(
        label=_("Notes"),
        required=False,
        max_length=ANNOTATION_LIMITS["notes"],
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    # Which annotations to write: a bulk edit changes only the ticked fields, leaving the others as they are.
    annotate_fields = forms.MultipleChoiceField(
        label=_("Champs à modifier"),
        required=False,
        choices=[
            ("annotated_user", _("Utilisateur annoté")),
            ("annotated_location", _("Emplacement")),
            ("annotated_asset_id", _("Numéro d'inventaire")),
            ("notes", _("Notes")),
        ],
        widget=forms.CheckboxSelectMultiple,
    )
    acknowledge_reenrollment = forms.BooleanField(
        label=_("J'ai compris : ces périphériques se réinscriront après le Powerwash."), required=False
    )
    typed_confirmation = forms.CharField(label=_("Confirmation"), required=False, max_length=20)

    def __init__(self, *args: Any, action: str, count: int, org_units: list[str], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.action = action
        self.count = count
        self.fields["org_unit_path"].choices = [("", "—")] + [(p, p) for p in org_units]  # type: ignore[attr-defined]
        self.requires_typed_confirmation = is_destructive(action) and count > TYPED_CONFIRMATION_THRESHOLD
        wanted = {
            DeviceAction.MOVE: {"org_unit_path"},
            DeviceAction.DEPROVISION: {"deprovision_reason"},
            DeviceAction.SET_VOLUME: {"volume"},
            DeviceAction.ANNOTATE: {
                "annotated_user",
                "annotated_location",
                "annotated_asset_id",
                "notes",
                "annotate_fields",
            },
            DeviceAction.POWERWASH: {"acknowledge_reenrollment"},
        }.get(DeviceAction(action), set())
        for name in list(self.fields):
            if name == "typed_confirmation":
                if not self.requires_typed_confirmation:
                    del self.fields[name]
                continue
            if name not in wanted:
                del self.fields[name]

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        action = self.action
        if action == DeviceAction.MOVE and not data.get("org_unit_path"):
            self.add_error("org_unit_path", _("Choisissez l'unité organisationnelle de destination."))
        if action == DeviceAction.DEPROVISION and not data.get("deprovision_reason"):
            self.add_error("deprovision_reason", _("Google exige un motif pour déprovisionner."))
        if action == DeviceAction.SET_VOLUME and data.get("volume") is None:
            self.add_error("volume", _("Indiquez le volume."))
        if action == DeviceAction.ANNOTATE and not data.get("annotate_fields"):
            self.add_error("annotate_fields", _("Cochez au moins un champ à modifier."))
        if action == DeviceAction.POWERWASH and not data.get("acknowledge_reenrollment"):
            self.add_error(
                "acknowledge_reenrollment",
                _("Confirmez avoir compris que les périphériques se réinscriront."),
            )
        if self.requires_typed_confirmation:
            typed = (data.get("typed_confirmation") or "").strip()
            if typed != str(self.count):
                self.add_error(
                    "typed_confirmation",
                    _("Saisissez le nombre exact de périphériques (%(count)s) pour confirmer.")
                    % {"count": self.count},
                )
        return data

    def params(self) -> dict[str, Any]:
        """The job's parameters, as the service expects them."""
        data = self.cleaned_data
        action = self.action
        if action == DeviceAction.MOVE:
            return {"org_unit_path": data["org_unit_path"]}
        if action == DeviceAction.DEPROVISION:
            return {"deprovision_reason": data["deprovision_reason"]}
        if action == DeviceAction.SET_VOLUME:
            return {"volume": data["volume"]}
        if action == DeviceAction.ANNOTATE:
            return {"annotations": {name: data.get(name) or "" for name in data["annotate_fields"]}}
        return {}
