"""« Vues »: the fleet table's saved views (filters, sort, columns) — save, open, rename, share, delete.

Thin: the form validates, ``chromeos.services.device_views`` decides who may change what, the selectors give
only what the user may see (another user's private view and another tenant's view are 404).
"""

from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.views import View

from chromeos.forms.device_views import SavedViewForm
from chromeos.models import SavedDeviceView
from chromeos.selectors import devices as device_selectors
from chromeos.selectors.device_views import visible_view
from chromeos.services import device_views as services
from chromeos.views.devices import COLUMNS_SESSION_KEY, _chosen_columns
from mdm.permissions import TenantRoleRequiredMixin


def _list_url(query: str) -> str:
    return reverse("chromeos:device_list") + (f"?{query}" if query else "")


class DeviceViewCreateView(TenantRoleRequiredMixin, View):
    """Saves the list's current filters, sort and columns under a name (every role: a view only reads)."""

    def get(self, request: HttpRequest) -> HttpResponse:
        form = SavedViewForm(initial={"query": request.GET.get("query", "")})
        return self._render(request, form)

    def post(self, request: HttpRequest) -> HttpResponse:
        form = SavedViewForm(request.POST)
        if form.is_valid():
            data = form.cleaned_data
            try:
                view = services.device_view_create(
                    owner=self.actor,
                    name=data["name"],
                    query=data["query"],
                    columns=_chosen_columns(request),
                    shared=data["shared"],
                )
            except services.DuplicateViewName:
                form.add_error(
                    "name", _("Vous avez déjà une vue nommée « %(name)s ».") % {"name": data["name"]}
                )
            else:
                messages.success(request, _("Vue « %(name)s » enregistrée.") % {"name": view.name})
                return HttpResponseRedirect(_list_url(view.query))
        return self._render(request, form, status=400)

    def _render(self, request: HttpRequest, form: SavedViewForm, status: int = 200) -> HttpResponse:
        return render(request, "chromeos/device_view_form.html", {"form": form, "view": None}, status=status)


class DeviceViewOpenView(TenantRoleRequiredMixin, View):
    """Opens a view: its columns become the list's, its filters and sort go in the URL."""

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        view = visible_view(self.actor, pk)
        columns = [c for c in view.columns if c in device_selectors.COLUMNS]
        if columns:
            request.session[COLUMNS_SESSION_KEY] = columns
        return HttpResponseRedirect(_list_url(view.query))

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        visible_view(self.actor, pk)  # another's: 404 whatever the method
        return HttpResponseNotAllowed(["GET"])


class DeviceViewEditView(TenantRoleRequiredMixin, View):
    """Renames or (un)shares a view: its owner, or an admin for a shared view."""

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        view = self._view(pk)
        form = SavedViewForm(initial={"name": view.name, "shared": view.shared}, with_query=False)
        return self._render(request, view, form)

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        view = self._view(pk)
        form = SavedViewForm(request.POST, with_query=False)
        if form.is_valid():
            try:
                services.device_view_update(
                    view=view,
                    actor=self.actor,
                    name=form.cleaned_data["name"],
                    shared=form.cleaned_data["shared"],
                )
            except services.DuplicateViewName:
                form.add_error(
                    "name",
                    _("%(owner)s a déjà une vue nommée « %(name)s ».")
                    % {"owner": view.owner.display_name, "name": form.cleaned_data["name"]},
                )
            else:
                messages.success(request, _("Vue « %(name)s » enregistrée.") % {"name": view.name})
                return HttpResponseRedirect(_list_url(view.query))
        return self._render(request, view, form, status=400)

    def _view(self, pk: int) -> SavedDeviceView:
        view = visible_view(self.actor, pk)
        if not services.may_change(view, self.actor):
            raise PermissionDenied("Only the owner or an admin changes a shared view.")
        return view

    def _render(
        self, request: HttpRequest, view: SavedDeviceView, form: SavedViewForm, status: int = 200
    ) -> HttpResponse:
        context = {"form": form, "view": view}
        return render(request, "chromeos/device_view_form.html", context, status=status)


class DeviceViewDeleteView(DeviceViewEditView):
    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        self._view(pk)
        return HttpResponseRedirect(reverse("chromeos:device_view_edit", args=[pk]))

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        view = self._view(pk)
        services.device_view_delete(view=view, actor=self.actor)
        messages.success(request, _("Vue « %(name)s » supprimée.") % {"name": view.name})
        return HttpResponseRedirect(reverse("chromeos:device_list"))


urlpatterns = [
    path("devices/vues/nouvelle/", DeviceViewCreateView.as_view(), name="device_view_create"),
    path("devices/vues/<int:pk>/", DeviceViewOpenView.as_view(), name="device_view"),
    path("devices/vues/<int:pk>/modifier/", DeviceViewEditView.as_view(), name="device_view_edit"),
    path("devices/vues/<int:pk>/supprimer/", DeviceViewDeleteView.as_view(), name="device_view_delete"),
]
