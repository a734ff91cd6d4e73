"""Admin > LDAP: configure the directory, test it, sync it, choose the OUs to add, follow the runs.

Every role reads; admins configure, test and choose OUs; admins and operators sync (mdm/permissions.py).
Messages from the client, the checks and the run log are French msgids: they are translated here.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.translation import gettext
from django.utils.translation import gettext_lazy as _
from django.views import View

from ldap_sync import kinds, selectors, services
from ldap_sync.diagnostics import ConnectionReport
from ldap_sync.forms import LdapDirectoryForm, OrgUnitSelectionForm
from ldap_sync.models import LdapDirectory, LdapOrgUnit, LdapSyncRun, SyncTrigger
from mdm.models import Role
from mdm.permissions import ADMIN_ROLES, OPERATE_ROLES, TenantRoleRequiredMixin


def translate_log_line(line: dict[str, Any]) -> dict[str, str]:
    message = gettext(line.get("msgid", ""))
    params = line.get("params") or {}
    if params:
        try:
            message = message % params
        except (
            KeyError,
            TypeError,
            ValueError,
        ):  # a translation that lost a placeholder must not break the page
            message = line.get("msgid", "") % params
    return {"at": line.get("at", ""), "level": line.get("level", "info"), "message": message}


def translate_report(report: ConnectionReport) -> list[dict[str, str]]:
    return [
        {
            "label": gettext(step.label),
            "status": step.status.value,
            "message": gettext(step.message) if step.message else "",
            "detail": step.detail,
        }
        for step in report.steps
    ]


class _LdapView(TenantRoleRequiredMixin, View):
    def directory(self) -> LdapDirectory | None:
        return LdapDirectory.objects.first()


class DirectoryView(_LdapView):
    """The LDAP page. POST saves the configuration (admins)."""

    write_roles = ADMIN_ROLES

    def get(self, request: HttpRequest) -> HttpResponse:
        directory = self.directory()
        form = LdapDirectoryForm(instance=directory, tenant=self.tenant)
        return self.render_page(form, directory)

    def post(self, request: HttpRequest) -> HttpResponse:
        directory = self.directory()
        form = LdapDirectoryForm(request.POST, instance=directory, tenant=self.tenant)
        if not form.is_valid():
            return self.render_page(form, directory, status=400)
        services.directory_save(
            directory=form.instance, actor=self.actor, changed_fields=form.changed_fields()
        )
        messages.success(request, _("Configuration LDAP enregistrée."))
        return HttpResponseRedirect(reverse("ldap_sync:directory"))

    def render_page(
        self,
        form: LdapDirectoryForm,
        directory: LdapDirectory | None,
        *,
        report: ConnectionReport | None = None,
        status: int = 200,
    ) -> HttpResponse:
        # The whole tree on one page: choosing subtrees across pages would be error-prone.
        org_units = selectors.ldap_org_unit_tree(self.tenant)
        context = {
            "form": form,
            "directory": directory,
            "prerequisites": selectors.ldap_prerequisites(self.tenant),
            "runs": selectors.ldap_sync_runs(self.tenant, limit=10),
            "org_units": org_units,
            "ou_form": OrgUnitSelectionForm(
                initial={"mode": directory.ou_selection if directory else "all"}, org_unit_ids=[]
            ),
            "report": translate_report(report) if report else None,
            "report_ok": report.ok if report else None,
            "report_counts": selectors.import_comparison(self.tenant, report) if report else None,
            "report_roles": [
                {
                    "role": Role(group.role).label,
                    "dn": group.group_dn,
                    "count": group.user_count,
                    "detail": group.detail,
                }
                for group in (report.role_groups if report else [])
            ],
            "password_set": bool(directory and directory.bind_password),
            "kind_defaults_json": json.dumps(kinds.DEFAULTS),
        }
        return render(self.request, "ldap_sync/directory.html", context, status=status)


class DirectoryTestView(DirectoryView):
    """ "Tester la connexion" with the values in the form (not saved; an empty password means the stored one)."""

    allowed_roles = ADMIN_ROLES
    write_roles = ADMIN_ROLES
    http_method_names = ["post"]

    def post(self, request: HttpRequest) -> HttpResponse:
        directory = self.directory()
        form = LdapDirectoryForm(request.POST, instance=directory, tenant=self.tenant)
        if not form.is_valid():
            return self.render_page(form, directory, status=400)
        report = services.directory_test_connection(directory=form.instance)
        return self.render_page(form, directory, report=report)


class SyncView(_LdapView):
    """ "Synchroniser": queue a sync now."""

    allowed_roles = OPERATE_ROLES
    http_method_names = ["post"]

    def post(self, request: HttpRequest) -> HttpResponse:
        directory = self.directory()
        if directory is None or not directory.is_configured:
            messages.error(request, _("Configurez d'abord le serveur LDAP."))
            return HttpResponseRedirect(reverse("ldap_sync:directory"))
        run = services.sync_request(directory=directory, trigger=SyncTrigger.MANUAL, actor=self.actor)
        messages.success(request, _("Synchronisation demandée."))
        return HttpResponseRedirect(reverse("ldap_sync:run", kwargs={"pk": run.pk}))


class OrgUnitSelectionView(_LdapView):
    """ "Ajouter les unités organisationnelles": all, or the chosen subtrees."""

    allowed_roles = ADMIN_ROLES
    http_method_names = ["post"]

    def post(self, request: HttpRequest) -> HttpResponse:
        directory = self.directory()
        if directory is None:
            messages.error(request, _("Configurez d'abord le serveur LDAP."))
            return HttpResponseRedirect(reverse("ldap_sync:directory"))
        ids = list(LdapOrgUnit.objects.values_list("pk", flat=True))
        form = OrgUnitSelectionForm(request.POST, org_unit_ids=ids)
        if not form.is_valid():
            for error in form.errors.values():
                messages.error(request, " ".join(str(message) for message in error))
            return HttpResponseRedirect(reverse("ldap_sync:directory"))
        services.org_units_select(
            directory=directory,
            actor=self.actor,
            mode=form.cleaned_data["mode"],
            selected_ids=form.cleaned_data["selected"],
        )
        messages.success(request, _("Unités organisationnelles ajoutées enregistrées."))
        return HttpResponseRedirect(reverse("ldap_sync:directory") + "#ous")


class RunListView(_LdapView):
    """The run history, alone: the LDAP page refreshes it with htmx while a run is unfinished."""

    def get(self, request: HttpRequest) -> HttpResponse:
        return render(
            request, "ldap_sync/_runs.html", {"runs": selectors.ldap_sync_runs(self.tenant, limit=10)}
        )


class RunDetailView(_LdapView):
    def get_run(self, pk: int) -> LdapSyncRun:
        return get_object_or_404(LdapSyncRun.objects.all(), pk=pk)

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        run = self.get_run(pk)
        pending = run.pending_removals or {}
        context = {
            "run": run,
            "log": [translate_log_line(line) for line in run.log],
            "pending_org_units": pending.get("org_units", []),
            "pending_users": pending.get("users", []),
            "skipped": run.skipped,
            "waits_for_broker": services.ldap_sync_run_waits_for_broker(run),
        }
        return render(request, "ldap_sync/run_detail.html", context)

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        self.get_run(pk)  # another tenant's run is "not found", whatever the method
        return HttpResponseNotAllowed(["GET"])


class CancelRunView(_LdapView):
    """ "Annuler la synchronisation": a queued run never starts, one reading the directory stops before applying."""

    allowed_roles = OPERATE_ROLES

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        run = get_object_or_404(LdapSyncRun.objects.all(), pk=pk)  # another tenant's run is "not found"
        return HttpResponseRedirect(reverse("ldap_sync:run", kwargs={"pk": run.pk}))

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        run = get_object_or_404(LdapSyncRun.objects.all(), pk=pk)
        try:
            services.sync_cancel(run=run, actor=self.actor)
        except services.CancelRefused as refused:
            messages.error(request, gettext(refused.message) % refused.params)
        else:
            messages.success(request, _("Synchronisation annulée : rien n'a été modifié dans la console."))
        return HttpResponseRedirect(reverse("ldap_sync:run", kwargs={"pk": run.pk}))


class ConfirmRemovalsView(_LdapView):
    """ "Confirmer les suppressions" of a guarded run: a new sync may remove exactly what it listed."""

    allowed_roles = ADMIN_ROLES

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        run = get_object_or_404(LdapSyncRun.objects.all(), pk=pk)  # another tenant's run is "not found"
        return HttpResponseRedirect(reverse("ldap_sync:run", kwargs={"pk": run.pk}))

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        run = get_object_or_404(LdapSyncRun.objects.all(), pk=pk)
        directory = self.directory()
        if directory is None:
            return HttpResponseRedirect(reverse("ldap_sync:directory"))
        try:
            new_run = services.sync_confirm_removals(directory=directory, run=run, actor=self.actor)
        except services.ConfirmationRefused as refused:
            messages.error(request, gettext(refused.message))
            return HttpResponseRedirect(reverse("ldap_sync:run", kwargs={"pk": run.pk}))
        messages.success(request, _("Suppressions confirmées : une synchronisation les applique."))
        return HttpResponseRedirect(reverse("ldap_sync:run", kwargs={"pk": new_run.pk}))
