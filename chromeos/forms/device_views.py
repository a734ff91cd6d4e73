"""The fleet table's saved view: its name and whether the tenant shares it; the filters it keeps."""

from __future__ import annotations

from typing import Any

from django import forms
from django.http import QueryDict
from django.utils.translation import gettext_lazy as _

from chromeos.forms.devices import DeviceFilterForm

QUERY_MAX_LENGTH = 2000


class SavedViewForm(forms.Form):
    name = forms.CharField(
        label=_("Nom de la vue"),
        max_length=80,
        strip=True,
        error_messages={"required": _("Donnez un nom à la vue."), "max_length": _("80 caractères au plus.")},
    )
    shared = forms.BooleanField(
        label=_("Partager avec toute l'organisation"),
        required=False,
        help_text=_("Tous les utilisateurs de l'organisation la verront dans le menu « Vues »."),
    )
    # The list's query string when the view was saved (filters and sort): kept as a hidden field.
    query = forms.CharField(required=False, widget=forms.HiddenInput, max_length=QUERY_MAX_LENGTH * 2)

    def __init__(self, *args: Any, with_query: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if not with_query:
            del self.fields["query"]

    def clean_name(self) -> str:
        name = " ".join(str(self.cleaned_data["name"]).split())
        if not name:
            raise forms.ValidationError(_("Donnez un nom à la vue."))
        return name

    def clean_query(self) -> str:
        """Only the list's filters and sort are kept, and only if the list accepts them as they are."""
        raw = QueryDict(self.cleaned_data.get("query") or "")
        kept = QueryDict(mutable=True)
        for key in DeviceFilterForm.base_fields:
            if raw.get(key):
                kept[key] = raw[key]
        filters = DeviceFilterForm(kept)
        filters.fields["model"].choices = [(kept.get("model", ""), "")]  # type: ignore[attr-defined]
        filters.fields["os_version"].choices = [(kept.get("os_version", ""), "")]  # type: ignore[attr-defined]
        # The field is hidden: its errors are the form's, shown above the name.
        query = kept.urlencode()
        if not filters.is_valid():
            self.add_error(None, _("Ces filtres ne sont pas valides : corrigez-les dans la liste."))
        elif len(query) > QUERY_MAX_LENGTH:
            self.add_error(None, _("Ces filtres sont trop longs pour être enregistrés."))
        return query
