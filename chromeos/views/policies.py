"""Affectations ChromeOS: assign Blueprints and apps to supported Google OUs, preview, apply, unassign, and the
reports per Blueprint and per app. Every role reads; admins and operators assign, apply and unassign."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.http import urlencode
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views import View

from chromeos.forms.policies import AssignmentForm
from chromeos.models import GoogleIntegration, IntegrationStatus, OrgUnit, PolicyAssignment, UnassignMode
from chromeos.policy_schemas import APP_POLICIES, SETTINGS_BY_KEY, app_target_id, blueprint_writes
from chromeos.selectors import policies as selectors
from chromeos.services import policies as services
from mdm.csv_export import csv_format, csv_response
from mdm.models import App, Blueprint, Platform
from mdm.permissions import OPERATE_ROLES, TenantRoleRequiredMixin
from mdm.services import audit_record

REPORT_PAGE_SIZE = 50


class _PolicyView(TenantRoleRequiredMixin, View):
    write_roles = OPERATE_ROLES

    def assignment(self, pk: int) -> PolicyAssignment:
        try:
            return selectors.assignment_detail(pk)
        except PolicyAssignment.DoesNotExist:
            raise Http404 from None


class _ReadOnlyAssignmentView(_PolicyView):
    """A page that only reads: other tenants' objects still answer 404 to any method, never 405."""

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        self.assignment(pk)
        return HttpResponseNotAllowed(["GET"])


def _assignable_blueprints() -> list[tuple[int, str]]:
    return [
        (b.pk, b.name)
        for b in Blueprint.objects.filter(platform=Platform.CHROMEOS).order_by("name")
        if blueprint_writes(b.settings or {})
    ]


def _unassignable_blueprints() -> list[tuple[int, str]]:
    """ChromeOS Blueprints without any ChromeOS setting: listed greyed out, with a way to fix them."""
    return [
        (b.pk, b.name)
        for b in Blueprint.objects.filter(platform=Platform.CHROMEOS).order_by("name")
        if not blueprint_writes(b.settings or {})
    ]


def _assignable_apps() -> list[tuple[int, str]]:
    return [
        (a.pk, f"{a.name} ({a.get_kind_display()})") for a in App.objects.order_by("name") if app_target_id(a)
    ]


def _assignment_form(rows: list[selectors.OrgUnitRow], data: Any = None) -> AssignmentForm:
    supported = [(r.org_unit.pk, r.org_unit.path) for r in rows if r.unsupported_reason is None]
    return AssignmentForm(
        data,
        org_units=supported,
        blueprints=_assignable_blueprints(),
        apps=_assignable_apps(),
        unassignable=_unassignable_blueprints(),
    )


def _overview(
    request: HttpRequest, integration: GoogleIntegration | None, form: Any = None, status: int = 200
) -> HttpResponse:
    rows = selectors.org_unit_rows(integration) if integration else []
    context = {
        "integration": integration,
        "active": integration is not None and integration.status == IntegrationStatus.ACTIVE,
        "rows": rows,
        "form": form or (_assignment_form(rows) if integration else None),
        "busy": selectors.any_busy([a for r in rows for a in r.assignments]),
        "supported_count": sum(1 for r in rows if r.unsupported_reason is None),
        "blueprints": Blueprint.objects.filter(platform=Platform.CHROMEOS).order_by("name"),
        "apps": App.objects.order_by("name"),
        "unassignable": _unassignable_blueprints(),
    }
    return render(request, "chromeos/policies_overview.html", context, status=status)


class PolicyOverviewView(_PolicyView):
    def get(self, request: HttpRequest) -> HttpResponse:
        return _overview(request, selectors.current_integration())


class PolicyAssignView(_PolicyView):
    def get(self, request: HttpRequest) -> HttpResponse:
        return HttpResponseRedirect(reverse("chromeos:policies"))

    def post(self, request: HttpRequest) -> HttpResponse:
        integration = selectors.current_integration()
        if integration is None:
            messages.error(request, _("Autorisez d'abord Google depuis la page Gestion ChromeOS."))
            return HttpResponseRedirect(reverse("chromeos:policies"))
        rows = selectors.org_unit_rows(integration)
        form = _assignment_form(rows, request.POST)
        if not form.is_valid():
            return _overview(request, integration, form, status=400)
        org_unit = get_object_or_404(
            OrgUnit.objects.filter(integration=integration), pk=form.cleaned_data["org_unit"]
        )
        kind, pk = form.subject_parts()
        try:
            if kind == "blueprint":
                assignment = services.policy_assignment_create(
                    integration=integration,
                    org_unit=org_unit,
                    actor=self.actor,
                    blueprint=get_object_or_404(Blueprint.objects.all(), pk=pk),
                )
            else:
                assignment = services.policy_assignment_create(
                    integration=integration,
                    org_unit=org_unit,
                    actor=self.actor,
                    app=get_object_or_404(App.objects.all(), pk=pk),
                    app_context=form.cleaned_data.get("app_context") or "",
                    install_type=form.cleaned_data.get("install_type") or "",
                )
        except services.PolicyError as exc:
            form.add_error(None, exc.message)
            return _overview(request, integration, form, status=400)
        messages.success(request, _("Affectation créée. Vérifiez l'aperçu puis appliquez-la."))
        return HttpResponseRedirect(reverse("chromeos:policy_assignment", kwargs={"pk": assignment.pk}))


class PolicyAssignmentView(_ReadOnlyAssignmentView):
    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        assignment = self.assignment(pk)
        context = {
            "assignment": assignment,
            "unsupported_reason": services.org_unit_unsupported_reason(assignment.org_unit),
            "can_retarget": services.retarget_reason(assignment) is not None,
            "outdated": services.assignment_is_outdated(assignment),
            "counts": selectors.assignment_device_counts(assignment),
            **selectors.assignment_job(assignment),
            "modes": UnassignMode.choices,
            "has_parent": bool(assignment.org_unit.parent_org_unit_id),
        }
        return render(request, "chromeos/policies_assignment.html", context)


class PolicyStateView(_ReadOnlyAssignmentView):
    """The state panel, polled by the page while Google works."""

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        assignment = self.assignment(pk)
        context = {
            "assignment": assignment,
            "outdated": services.assignment_is_outdated(assignment),
            **selectors.assignment_job(assignment),
        }
        response = render(request, "chromeos/policies_state.html", context)
        if request.headers.get("HX-Request") and not context["busy"]:
            # Google is done: reload the page once so its buttons and previews follow the new state.
            response["HX-Refresh"] = "true"
        return response


class PolicyPreviewView(_ReadOnlyAssignmentView):
    """The apply preview (reads Google): loaded by the assignment page once it is shown."""

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        assignment = self.assignment(pk)
        preview = services.policy_preview_apply(assignment)
        return render(
            request, "chromeos/policies_preview.html", {"assignment": assignment, "preview": preview}
        )


class PolicyUnassignPreviewView(_ReadOnlyAssignmentView):
    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        assignment = self.assignment(pk)
        preview = services.policy_preview_unassign(assignment)
        context = {
            "assignment": assignment,
            "preview": preview,
            "has_parent": bool(assignment.org_unit.parent_org_unit_id),
        }
        return render(request, "chromeos/policies_unassign_preview.html", context)


class _AssignmentButtonView(_PolicyView):
    """A button on an assignment's page: GET leads back to the page; POST asks the service (``act``) and says
    how it went there."""

    done: Any = ""

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        self.assignment(pk)
        return HttpResponseRedirect(reverse("chromeos:policy_assignment", kwargs={"pk": pk}))

    def act(self, assignment: PolicyAssignment) -> None:
        raise NotImplementedError

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        assignment = self.assignment(pk)
        try:
            self.act(assignment)
        except services.PolicyError as exc:
            messages.error(request, exc.message)
        else:
            messages.success(request, self.done)
        return HttpResponseRedirect(reverse("chromeos:policy_assignment", kwargs={"pk": pk}))


class PolicyApplyView(_AssignmentButtonView):
    done = gettext_lazy("Application demandée : Google reçoit les paramètres.")

    def act(self, assignment: PolicyAssignment) -> None:
        services.policy_assignment_apply_request(assignment=assignment, actor=self.actor)


class PolicyCancelView(_AssignmentButtonView):
    """« Annuler »: withdraw an apply or a removal that no worker took yet (nothing sent to Google)."""

    done = gettext_lazy("Demande annulée : rien n'a été envoyé à Google.")

    def act(self, assignment: PolicyAssignment) -> None:
        services.policy_assignment_cancel(assignment=assignment, actor=self.actor)


class PolicyUnassignView(_AssignmentButtonView):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        assignment = self.assignment(pk)
        mode = request.POST.get("mode", "")
        try:
            deleted = services.policy_assignment_unassign_request(
                assignment=assignment, mode=mode, actor=self.actor
            )
        except services.PolicyError as exc:
            messages.error(request, exc.message)
            return HttpResponseRedirect(reverse("chromeos:policy_assignment", kwargs={"pk": pk}))
        if deleted:
            messages.success(request, _("Affectation retirée (rien n'avait été appliqué chez Google)."))
        else:
            messages.success(request, _("Retrait demandé : Google rétablit les valeurs."))
        return HttpResponseRedirect(reverse("chromeos:policies"))


class PolicyReleaseView(_PolicyView):
    """Forget an assignment whose OU disappeared from Google (nothing to undo there any more)."""

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        self.assignment(pk)
        return HttpResponseRedirect(reverse("chromeos:policies"))

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        assignment = self.assignment(pk)
        try:
            services.policy_assignment_release(assignment=assignment, actor=self.actor)
        except services.PolicyError as exc:
            messages.error(request, exc.message)
            return HttpResponseRedirect(reverse("chromeos:policy_assignment", kwargs={"pk": pk}))
        messages.success(
            request, _("Affectation libérée : l'unité organisationnelle n'existe plus chez Google.")
        )
        return HttpResponseRedirect(reverse("chromeos:policies"))


class PolicyRetargetView(_PolicyView):
    """« Réaffecter »: move an assignment whose OU disappeared (Google or LDAP) to another existing OU."""

    def _render(self, request: HttpRequest, assignment: PolicyAssignment, error: str = "", status: int = 200):
        context = {
            "assignment": assignment,
            "reason": services.retarget_reason(assignment),
            "choices": services.retarget_choices(assignment),
            "applied": selectors.applied_settings(assignment),
            "error": error,
        }
        return render(request, "chromeos/policies_retarget.html", context, status=status)

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        return self._render(request, self.assignment(pk))

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        assignment = self.assignment(pk)
        raw = request.POST.get("org_unit", "")
        target = (
            OrgUnit.objects.filter(integration_id=assignment.integration_id, pk=int(raw)).first()
            if raw.isdigit() and len(raw) < 19
            else None
        )
        if target is None:
            return self._render(
                request, assignment, _("Choisissez l'unité organisationnelle de destination."), status=400
            )
        try:
            moved = services.policy_assignment_retarget(
                assignment=assignment, org_unit=target, actor=self.actor
            )
        except services.PolicyError as exc:
            return self._render(request, assignment, exc.message, status=400)
        messages.success(
            request,
            _("Affectation réaffectée à %(path)s : vérifiez l'aperçu puis appliquez-la.")
            % {"path": target.path},
        )
        return HttpResponseRedirect(reverse("chromeos:policy_assignment", kwargs={"pk": moved.pk}))


class _ReportView(_PolicyView):
    """A Blueprint's or an app's assignments and its inventory: devices counted per state, per device OU and
    assignment; the devices themselves only once a state or an OU is picked (and in the CSV export)."""

    def report(
        self, request: HttpRequest, subject: Blueprint | App, rows: list[PolicyAssignment], **extra: Any
    ) -> HttpResponse:
        flt = selectors.inventory_filter(request.GET.get("state"), request.GET.get("ou"))
        groups = selectors.inventory_groups(rows)
        shown = [g for g in groups if flt.matches(g)]
        page = device_rows = None
        if flt.active:
            devices = selectors.inventory_devices(rows, groups, flt).order_by("serial_number", "pk")
            page = Paginator(devices, REPORT_PAGE_SIZE).get_page(request.GET.get("page"))
            device_rows = selectors.inventory_rows(list(page.object_list), rows, flt)
        context = {
            "subject": subject,
            "assignments": [(a, selectors.assignment_device_counts(a)) for a in rows],
            "groups": shown,
            "totals": selectors.inventory_totals(shown),
            "states": [(s, selectors.inventory_state_label(s)) for s in selectors.INVENTORY_STATES],
            "flt": flt,
            "query": urlencode({k: v for k, v in (("state", flt.state), ("ou", flt.org_unit)) if v}),
            "page": page,
            "device_rows": device_rows,
            **extra,
        }
        return render(request, "chromeos/policies_report.html", context)

    def export(self, request: HttpRequest, subject: Blueprint | App, rows: list[PolicyAssignment]) -> Any:
        flt = selectors.inventory_filter(request.GET.get("state"), request.GET.get("ou"))
        devices = selectors.inventory_devices(rows, selectors.inventory_groups(rows), flt).order_by(
            "serial_number", "pk"
        )
        fmt = csv_format(request)
        audit_record(
            tenant=self.tenant,
            actor=self.actor,
            action="policy.inventory_export",
            target=subject.name,
            details={"state": flt.state, "org_unit": flt.org_unit},
        )
        header = [
            _("Numéro de série"),
            "device_id",
            _("Unité du périphérique"),
            _("Configuration ou appli"),
            _("Via l'unité"),
            _("Héritée"),
            _("État"),
            _("Détail"),
            _("Dernière synchro"),
        ]

        def lines() -> Any:
            chunk: list[Any] = []
            for device in devices.iterator(chunk_size=500):
                chunk.append(device)
                if len(chunk) == 500:
                    yield from _inventory_lines(selectors.inventory_rows(chunk, rows, flt))
                    chunk = []
            yield from _inventory_lines(selectors.inventory_rows(chunk, rows, flt))

        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        return csv_response(fmt, header, lines(), filename=f"inventaire-{stamp}.csv")


def _inventory_lines(rows: list[selectors.DeviceReportRow]) -> Any:
    for row in rows:
        for entry in row.entries:
            yield [
                row.device.serial_number,
                row.device.device_id,
                row.device.org_unit_path,
                entry.assignment.subject_label,
                entry.via,
                entry.inherited,
                entry.state_label,
                entry.detail,
                row.device.last_sync,
            ]


class PolicyBlueprintReportView(_ReportView):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        get_object_or_404(Blueprint.objects.all(), pk=pk)
        return HttpResponseNotAllowed(["GET"])

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        blueprint = get_object_or_404(Blueprint.objects.all(), pk=pk)
        settings = [
            (s.label, s.display(blueprint.settings[s.key]))
            for s in SETTINGS_BY_KEY.values()
            if (blueprint.settings or {}).get(s.key) is not None
        ]
        rows = selectors.subject_assignments(blueprint=blueprint)
        return self.report(request, blueprint, rows, kind="blueprint", settings=settings)


class PolicyAppReportView(_ReportView):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        get_object_or_404(App.objects.all(), pk=pk)
        return HttpResponseNotAllowed(["GET"])

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        app = get_object_or_404(App.objects.all(), pk=pk)
        rows = selectors.subject_assignments(app=app)
        contexts = [(p.context, app.kind in p.kinds) for p in APP_POLICIES.values()]
        return self.report(request, app, rows, kind="app", app_id=app_target_id(app), contexts=contexts)


class PolicyBlueprintInventoryExportView(_ReportView):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        get_object_or_404(Blueprint.objects.all(), pk=pk)
        return HttpResponseNotAllowed(["GET"])

    def get(self, request: HttpRequest, pk: int) -> Any:
        blueprint = get_object_or_404(Blueprint.objects.all(), pk=pk)
        return self.export(request, blueprint, selectors.subject_assignments(blueprint=blueprint))


class PolicyAppInventoryExportView(_ReportView):
    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        get_object_or_404(App.objects.all(), pk=pk)
        return HttpResponseNotAllowed(["GET"])

    def get(self, request: HttpRequest, pk: int) -> Any:
        app = get_object_or_404(App.objects.all(), pk=pk)
        return self.export(request, app, selectors.subject_assignments(app=app))


urlpatterns = [
    path("politiques/", PolicyOverviewView.as_view(), name="policies"),
    path("politiques/affecter/", PolicyAssignView.as_view(), name="policy_assign"),
    path("politiques/affectations/<int:pk>/", PolicyAssignmentView.as_view(), name="policy_assignment"),
    path("politiques/affectations/<int:pk>/etat/", PolicyStateView.as_view(), name="policy_state"),
    path("politiques/affectations/<int:pk>/apercu/", PolicyPreviewView.as_view(), name="policy_preview"),
    path(
        "politiques/affectations/<int:pk>/apercu-retrait/",
        PolicyUnassignPreviewView.as_view(),
        name="policy_unassign_preview",
    ),
    path("politiques/affectations/<int:pk>/appliquer/", PolicyApplyView.as_view(), name="policy_apply"),
    path("politiques/affectations/<int:pk>/retirer/", PolicyUnassignView.as_view(), name="policy_unassign"),
    path("politiques/affectations/<int:pk>/annuler/", PolicyCancelView.as_view(), name="policy_cancel"),
    path("politiques/affectations/<int:pk>/liberer/", PolicyReleaseView.as_view(), name="policy_release"),
    path(
        "politiques/affectations/<int:pk>/reaffecter/", PolicyRetargetView.as_view(), name="policy_retarget"
    ),
    path(
        "politiques/configurations/<int:pk>/",
        PolicyBlueprintReportView.as_view(),
        name="policy_blueprint_report",
    ),
    path("politiques/applis/<int:pk>/", PolicyAppReportView.as_view(), name="policy_app_report"),
    path(
        "politiques/configurations/<int:pk>/inventaire.csv",
        PolicyBlueprintInventoryExportView.as_view(),
        name="policy_blueprint_inventory_export",
    ),
    path(
        "politiques/applis/<int:pk>/inventaire.csv",
        PolicyAppInventoryExportView.as_view(),
        name="policy_app_inventory_export",
    ),
]
