"""The sync on the Gestion ChromeOS page: "Synchro maintenant", its live progress, "Confirmer la suppression",
"Annuler la synchronisation".

| URL name                          | method | who                 | what                                                  |
|-----------------------------------|--------|---------------------|-------------------------------------------------------|
| ``chromeos:sync_now``             | POST   | admins, operators   | queue a sync (or show the one under way)              |
| ``chromeos:sync_progress``        | GET    | every role          | the sync panel (htmx polls it while a sync runs)      |
| ``chromeos:sync_confirm_removals``| POST   | admins              | apply the removals a guarded run held back            |
| ``chromeos:sync_cancel``          | POST   | admins, operators   | cancel a queued or running sync                       |

With htmx the POSTs answer the panel itself; without JavaScript they redirect to the page with a message.
"""

from __future__ import annotations

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.template.loader import render_to_string
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext as _
from django.views import View

from chromeos.models import SyncRun, SyncTrigger
from chromeos.selectors.sync import SyncPanel, sync_counts, sync_panel, tenant_integration
from chromeos.services.sync import SyncNotAllowed, sync_cancel, sync_confirm_removals, sync_request
from mdm.models import User
from mdm.permissions import ADMIN_ROLES, OPERATE_ROLES, TenantRoleRequiredMixin

PANEL_TEMPLATE = "chromeos/_sync_panel.html"
SUMMARY_TEMPLATE = "chromeos/_sync_summary.html"


def _panel(request: HttpRequest, panel: SyncPanel, *, error: bool = False) -> HttpResponse:
    """The sync panel; once no sync runs, with the counts above it, swapped out of band: the last poll of a
    sync that just ended refreshes the device and OU counts and the last/next sync times without a reload."""
    response = render(request, PANEL_TEMPLATE, {"sync": panel, "sync_error": error})
    if panel.active is None and request.headers.get("HX-Request"):
        context = {"integration": panel.integration, "oob": True, **sync_counts(panel.integration)}
        response.content += render_to_string(SUMMARY_TEMPLATE, context, request=request).encode()
    return response


def _answer(request: HttpRequest, notice: str, *, error: bool = False) -> HttpResponse:
    if request.headers.get("HX-Request"):
        panel = sync_panel(notice=notice)
        if panel is None:
            raise Http404
        return _panel(request, panel, error=error)
    (messages.error if error else messages.success)(request, notice)
    return HttpResponseRedirect(reverse("chromeos:manage"))


def _user(request: HttpRequest) -> User:
    assert isinstance(request.user, User)
    return request.user


class SyncNowView(TenantRoleRequiredMixin, View):
    allowed_roles = OPERATE_ROLES
    http_method_names = ["post"]

    def post(self, request: HttpRequest) -> HttpResponse:
        integration = tenant_integration()
        if integration is None:
            raise Http404
        try:
            run, created = sync_request(
                integration=integration, trigger=SyncTrigger.MANUAL, user=_user(request)
            )
        except SyncNotAllowed as refused:
            return _answer(request, refused.message, error=True)
        if created:
            return _answer(request, _("Synchronisation n° %(number)s demandée.") % {"number": run.pk})
        return _answer(
            request, _("Une synchronisation est déjà en cours (n° %(number)s).") % {"number": run.pk}
        )


class SyncProgressView(TenantRoleRequiredMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        panel = sync_panel()
        if panel is None:
            raise Http404
        return _panel(request, panel)


def _posted_run_id(request: HttpRequest) -> int:
    """The run a panel's button names (``run``); anything else is no run of this tenant's: 404."""
    try:
        return int(request.POST.get("run", ""))
    except ValueError:
        raise Http404 from None


class SyncConfirmRemovalsView(TenantRoleRequiredMixin, View):
    allowed_roles = ADMIN_ROLES
    http_method_names = ["post"]

    def post(self, request: HttpRequest) -> HttpResponse:
        integration = tenant_integration()
        if integration is None:
            raise Http404
        run_id = _posted_run_id(request)
        try:
            run, created = sync_confirm_removals(integration=integration, run_id=run_id, user=_user(request))
        except SyncNotAllowed as refused:
            return _answer(request, refused.message, error=True)
        if not created:
            return _answer(
                request, _("Une synchronisation est déjà en cours (n° %(number)s).") % {"number": run.pk}
            )
        return _answer(
            request,
            _(
                "Suppression confirmée : la synchronisation n° %(number)s relit Google puis retire les périphériques absents."
            )
            % {"number": run.pk},
        )


class SyncCancelView(TenantRoleRequiredMixin, View):
    """« Annuler la synchronisation »: a queued run never starts, a running one stops at its next page."""

    allowed_roles = OPERATE_ROLES
    http_method_names = ["post"]

    def post(self, request: HttpRequest) -> HttpResponse:
        integration = tenant_integration()
        if integration is None:
            raise Http404
        run_id = _posted_run_id(request)
        try:
            run = sync_cancel(integration=integration, run_id=run_id, user=_user(request))
        except SyncRun.DoesNotExist:
            raise Http404 from None
        except SyncNotAllowed as refused:
            return _answer(request, refused.message, error=True)
        return _answer(
            request,
            _(
                "Synchronisation n° %(number)s annulée : ce qui a déjà été fusionné reste, aucun périphérique n'est retiré."
            )
            % {"number": run.pk},
        )


urlpatterns: list[URLPattern] = [
    path("admin/google/chromeos/sync/", SyncNowView.as_view(), name="sync_now"),
    path("admin/google/chromeos/sync/progress/", SyncProgressView.as_view(), name="sync_progress"),
    path(
        "admin/google/chromeos/sync/confirm-removals/",
        SyncConfirmRemovalsView.as_view(),
        name="sync_confirm_removals",
    ),
    path("admin/google/chromeos/sync/cancel/", SyncCancelView.as_view(), name="sync_cancel"),
]
