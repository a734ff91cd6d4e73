"""Removing the Google integration: confirmation (dialog, or this page without JavaScript), request, progress,
retry. Tenant admins only, except the progress partial that every role of the tenant may watch."""

from __future__ import annotations

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.utils.translation import gettext as _
from django.views import View

from chromeos.models import RemovalRun, RemovalStatus
from chromeos.selectors.removal import removal_panel
from chromeos.services.removal import RemovalError, removal_cancel, removal_request, removal_run_is_stale
from mdm.models import User
from mdm.permissions import ADMIN_ROLES, TenantRoleRequiredMixin

MANAGE_URL = "chromeos:manage"


class RemovalView(TenantRoleRequiredMixin, View):
    """GET: the confirmation page (the dialog's content, for browsers without JavaScript). POST: remove."""

    allowed_roles = ADMIN_ROLES

    def get(self, request: HttpRequest) -> HttpResponse:
        panel = removal_panel(self.tenant, with_preview=True)
        if not panel.can_remove:
            messages.info(request, _("Il n'y a pas d'intégration Google à supprimer."))
            return HttpResponseRedirect(reverse(MANAGE_URL))
        return render(request, "chromeos/removal_confirm.html", {"removal": panel})

    def post(self, request: HttpRequest) -> HttpResponse:
        return _request_removal(request, self.actor, retry_of=None)


class RemovalRetryView(TenantRoleRequiredMixin, View):
    """ "Réessayer" on a failed removal: a new run, linked to the failed one."""

    allowed_roles = ADMIN_ROLES

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        get_object_or_404(RemovalRun.objects.all(), pk=pk)
        return HttpResponseRedirect(reverse(MANAGE_URL))

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        failed = get_object_or_404(RemovalRun.objects.all(), pk=pk)
        if failed.status != RemovalStatus.FAILED and not removal_run_is_stale(failed):
            messages.error(request, _("Seule une suppression en échec peut être relancée."))
            return HttpResponseRedirect(reverse(MANAGE_URL))
        return _request_removal(request, self.actor, retry_of=failed)


class RemovalCancelView(TenantRoleRequiredMixin, View):
    """ "Annuler la suppression" while it is queued (nothing done yet); refused with the reason once it started."""

    allowed_roles = ADMIN_ROLES

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        get_object_or_404(RemovalRun.objects.all(), pk=pk)
        return HttpResponseRedirect(reverse(MANAGE_URL))

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        run = get_object_or_404(RemovalRun.objects.all(), pk=pk)
        try:
            removal_cancel(run=run, actor=self.actor)
        except RemovalError as error:
            messages.error(request, str(error))
        else:
            messages.success(
                request, _("Suppression annulée : rien n'a été fait chez Google ni dans la console.")
            )
        return HttpResponseRedirect(reverse(MANAGE_URL))


class RemovalProgressView(TenantRoleRequiredMixin, View):
    """The removal panel alone, polled by htmx while a removal runs."""

    def get(self, request: HttpRequest) -> HttpResponse:
        panel = removal_panel(self.tenant, with_preview=self.actor.is_tenant_admin)
        response = render(request, "chromeos/_removal_panel.html", {"removal": panel})
        if request.headers.get("HX-Request") and not panel.removing:
            # Finished: the whole Gestion ChromeOS page changes (back to "Autoriser Google"), not just the panel.
            response["HX-Refresh"] = "true"
        return response


def _request_removal(request: HttpRequest, user: User, *, retry_of: RemovalRun | None) -> HttpResponse:
    assert user.tenant is not None
    try:
        run = removal_request(
            tenant=user.tenant,
            actor=user,
            retry_of=retry_of,
            restore_policies=request.POST.get("restore_policies") == "on",
        )
    except RemovalError as error:
        messages.error(request, str(error))
    else:
        messages.success(
            request,
            _("Suppression de l'intégration Google demandée (référence %(reference)s).")
            % {"reference": run.support_reference},
        )
    return HttpResponseRedirect(reverse(MANAGE_URL))


urlpatterns = [
    path("admin/google/chromeos/remove/", RemovalView.as_view(), name="remove"),
    path("admin/google/chromeos/remove/progress/", RemovalProgressView.as_view(), name="removal_progress"),
    path("admin/google/chromeos/remove/<int:pk>/retry/", RemovalRetryView.as_view(), name="removal_retry"),
    path("admin/google/chromeos/remove/<int:pk>/cancel/", RemovalCancelView.as_view(), name="removal_cancel"),
]
