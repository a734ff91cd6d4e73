"""Périphériques: the device inventory, its detail page, device actions and remote commands.

Every page is tenant-scoped (``ChromeOSDevice.objects`` and friends); reading is open to every role, acting
(drafting, confirming, cancelling an action) to operators and admins only.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

from django.contrib import messages
from django.core.paginator import Paginator
from django.http import (
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
    QueryDict,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, render
from django.urls import path, reverse
from django.utils import timezone
from django.utils.translation import gettext as _
from django.views import View

from chromeos.forms.device_views import SavedViewForm
from chromeos.forms.devices import ActionConfirmForm, ActionPrepareForm, ColumnsForm, DeviceFilterForm
from chromeos.models import (
    ChromeOSDevice,
    DeviceAction,
    DeviceActionJob,
    DeviceCommand,
    JobStatus,
    SavedDeviceView,
)
from chromeos.selectors import devices as selectors
from chromeos.selectors.device_sheet import device_sheet, raw_payload
from chromeos.selectors.device_views import visible_views
from chromeos.selectors.org_unit_tree import flatten, org_unit_tree
from chromeos.services import devices as services
from chromeos.services.device_views import may_change
from mdm.csv_export import csv_format, csv_response
from mdm.permissions import OPERATE_ROLES, TenantRoleRequiredMixin, can_operate
from mdm.services import audit_record

COLUMNS_SESSION_KEY = "chromeos.device_columns"
PER_PAGE_SESSION_KEY = "chromeos.device_per_page"
DEFAULT_PER_PAGE = 50
# Filters behind « Ajouter un filtre » (search, status and OU are always shown).
MORE_FILTERS = (
    "include_children",
    "support",
    "os_version",
    "model",
    "sync_older_than_days",
    "aue",
    "removed",
)
# Query-string keys that are the list's state, not its filter.
NOT_FILTER_KEYS = {"page", "set_columns", "columns", "per_page", "sep"}


def _chosen_columns(request: HttpRequest) -> list[str]:
    chosen = request.session.get(COLUMNS_SESSION_KEY)
    if not chosen:
        return list(selectors.DEFAULT_COLUMNS)
    return [c for c in selectors.COLUMNS if c in chosen] or list(selectors.DEFAULT_COLUMNS)


def _filter_query(query: QueryDict) -> QueryDict:
    kept = query.copy()
    for key in NOT_FILTER_KEYS:
        kept.pop(key, None)
    return kept


def filter_from_query(query: QueryDict | dict[str, Any]) -> selectors.DeviceFilter:
    """The list's filter from its query string, without reading the facets (no query)."""
    form = DeviceFilterForm(query)
    # Facet choices are not known here: any model / OS version value is accepted as typed.
    form.fields["model"].choices = [(query.get("model", ""), "")]  # type: ignore[attr-defined]
    form.fields["os_version"].choices = [(query.get("os_version", ""), "")]  # type: ignore[attr-defined]
    return form.to_filter()


class DeviceListView(TenantRoleRequiredMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        if "set_columns" in request.GET:
            return self._save_columns(request)
        models = selectors.distinct_values("model")
        os_versions = selectors.distinct_values("os_version")
        query = _filter_query(request.GET)
        form = DeviceFilterForm(query or None, models=models, os_versions=os_versions)
        flt = form.to_filter()
        per_page = int(request.session.get(PER_PAGE_SESSION_KEY, DEFAULT_PER_PAGE))
        try:
            page_number = int(request.GET.get("page", "1"))
        except ValueError:
            page_number = 1
        result = selectors.device_page(flt, page_number, per_page)
        rows, total, pages, page_number = result.rows, result.total, result.pages, result.number
        columns = _chosen_columns(request)
        filter_qs = query.urlencode()
        ou_tree = org_unit_tree(query.get("org_unit", "") if form.is_valid() else "")
        # The tree's links keep the other filters and the sort; the OU (and its sub-OU choice) is the link's own.
        ou_base = query.copy()
        for key in ("org_unit", "include_children", "page"):
            ou_base.pop(key, None)
        context = {
            "form": form,
            "flt": flt,
            "rows": rows,
            "total": total,
            "capped": result.capped,
            "page_number": page_number,
            "pages": pages,
            "per_page": per_page,
            "columns": [(key, selectors.COLUMNS[key][1]) for key in columns],
            "column_keys": columns,
            "columns_form": ColumnsForm(initial={"columns": columns, "per_page": per_page}),
            "headers": self._headers(columns, flt, query),
            "filter_qs": filter_qs,
            "page_links": self._page_links(filter_qs, page_number, pages),
            "org_units": [n.path for n in flatten(ou_tree) if n.known],
            "ou_tree": ou_tree,
            **self._views(filter_qs),
            "ou_base": ou_base.urlencode(),
            "actions": DeviceAction.choices,
            "statuses": selectors.STATUSES,
            "export_url": reverse("chromeos:device_export") + (f"?{filter_qs}" if filter_qs else ""),
            # The other separator than the language's (French Excel wants ";", most other tools ",").
            "export_other_sep": "semicolon" if csv_format(request).delimiter == "," else "comma",
            "chips": self._chips(form, query),
            "more_filters_open": any(query.get(k) for k in MORE_FILTERS),
        }
        return render(request, "chromeos/device_list.html", context)

    def _views(self, filter_qs: str) -> dict[str, Any]:
        """The « Vues » menu: the user's views, the others' shared ones, and the form to save the current one."""
        mine: list[SavedDeviceView] = []
        shared: list[SavedDeviceView] = []
        for view in visible_views(self.actor):
            view.may_change = may_change(view, self.actor)  # type: ignore[attr-defined]
            (mine if view.owner_id == self.actor.pk else shared).append(view)
        return {
            "my_views": mine,
            "shared_views": shared,
            "view_form": SavedViewForm(initial={"query": filter_qs}, auto_id="view_%s"),
        }

    @staticmethod
    def _chips(form: DeviceFilterForm, query: QueryDict) -> list[dict[str, str]]:
        """The active filters as chips, each with the list's URL without it (the others kept)."""
        if not form.is_bound or not form.is_valid():
            return []
        chips = []
        for name, field in form.fields.items():
            value = query.get(name, "")
            if not value or name in ("sort", "dir"):
                continue
            choices = {str(k): v for k, v in getattr(field, "choices", []) or []}
            rest = query.copy()
            rest.pop(name, None)
            rest.pop("page", None)
            chips.append(
                {
                    "name": name,
                    "label": str(field.label),
                    "value": str(choices.get(value, value)),
                    "url": reverse("chromeos:device_list") + (f"?{rest.urlencode()}" if rest else ""),
                }
            )
        return chips

    def _save_columns(self, request: HttpRequest) -> HttpResponse:
        form = ColumnsForm(request.GET)
        if form.is_valid():
            request.session[COLUMNS_SESSION_KEY] = form.cleaned_data["columns"] or list(
                selectors.DEFAULT_COLUMNS
            )
            if form.cleaned_data.get("per_page"):
                request.session[PER_PAGE_SESSION_KEY] = form.cleaned_data["per_page"]
        query = _filter_query(request.GET).urlencode()
        return HttpResponseRedirect(reverse("chromeos:device_list") + (f"?{query}" if query else ""))

    @staticmethod
    def _headers(columns: list[str], flt: selectors.DeviceFilter, query: QueryDict) -> list[dict[str, Any]]:
        headers = []
        for key in columns:
            active = flt.sort == key
            descending = not flt.descending if active else False
            q = query.copy()
            q["sort"] = key
            q["dir"] = "desc" if descending else "asc"
            headers.append(
                {
                    "key": key,
                    "label": selectors.COLUMNS[key][1],
                    "url": "?" + q.urlencode(),
                    "active": active,
                    "descending": flt.descending if active else False,
                }
            )
        return headers

    @staticmethod
    def _page_links(filter_qs: str, page: int, pages: int) -> dict[str, str]:
        prefix = f"?{filter_qs}&" if filter_qs else "?"
        links = {}
        if page > 1:
            links["first"] = f"{prefix}page=1"
            links["previous"] = f"{prefix}page={page - 1}"
        if page < pages:
            links["next"] = f"{prefix}page={page + 1}"
            links["last"] = f"{prefix}page={pages}"
        return links


class DeviceExportView(TenantRoleRequiredMixin, View):
    """CSV of every device the list's filter matches, streamed from a server-side cursor (``mdm/csv_export.py``:
    formulas neutralised, separator and values in the interface's language, times in the display zone)."""

    def get(self, request: HttpRequest) -> StreamingHttpResponse:
        flt = filter_from_query(_filter_query(request.GET))
        columns = _chosen_columns(request)
        fmt = csv_format(request)
        audit_record(
            tenant=self.tenant,
            actor=self.actor,
            action="device.export",
            target=_("Export CSV des périphériques"),
            details={"filter": _filter_query(request.GET).urlencode()[:300], "columns": columns},
        )
        header = ["device_id", *[str(selectors.COLUMNS[c][1]) for c in columns]]
        rows = selectors.csv_rows(flt, columns)
        status_at = columns.index("status") + 1 if "status" in columns else None
        statuses = {code: str(label) for code, label in selectors.STATUSES.items()}

        def worded(rows: Iterator[tuple[Any, ...]]) -> Iterator[list[Any]]:
            for row in rows:
                values = list(row)
                if status_at is not None and values[status_at]:
                    values[status_at] = statuses.get(values[status_at], values[status_at])
                yield values

        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        return csv_response(fmt, header, worded(rows), filename=f"peripheriques-{stamp}.csv")


class _ReadOnlyObjectView(TenantRoleRequiredMixin, View):
    """A page that only reads one object: another tenant's object is 404 whatever the method, ours is 405."""

    def lookup(self, pk: int) -> Any:
        raise NotImplementedError

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        self.lookup(pk)
        return HttpResponseNotAllowed(["GET"])


class DeviceDetailView(_ReadOnlyObjectView):
    def lookup(self, pk: int) -> ChromeOSDevice:
        return get_object_or_404(ChromeOSDevice.objects.all(), pk=pk)

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        device = get_object_or_404(ChromeOSDevice.objects.select_related("integration"), pk=pk)
        org_unit = selectors.device_org_unit(device)
        supported = org_unit.supported if org_unit is not None else None
        context = {
            "device": device,
            "sheet": device_sheet(device),
            "raw_payload": raw_payload(device),
            "changes": selectors.device_changes(device),
            "commands": selectors.device_commands(device),
            "action_items": selectors.device_action_items(device),
            "org_unit": org_unit,
            "org_unit_supported": supported,
            "aue_state": selectors.aue_state(device.auto_update_expiration),
            "status_label": selectors.STATUSES.get(device.status, device.status),
            "actions": _device_actions(device),
        }
        context["commands_pending"] = any(c.finished_at is None for c in context["commands"])
        return render(request, "chromeos/device_detail.html", context)


def _device_actions(device: ChromeOSDevice) -> list[tuple[str, str]]:
    """The actions that make sense for this device's status (Google refuses the others)."""
    status = device.status
    actions: list[DeviceAction] = []
    if status == "ACTIVE":
        actions += [DeviceAction.DISABLE]
    if status == "DISABLED":
        actions += [DeviceAction.REENABLE]
    if status in ("ACTIVE", "DISABLED", "INACTIVE"):
        actions += [DeviceAction.DEPROVISION]
    actions += [DeviceAction.MOVE, DeviceAction.ANNOTATE]
    if status == "ACTIVE":
        actions += [
            DeviceAction.REBOOT,
            DeviceAction.SCREENSHOT,
            DeviceAction.SET_VOLUME,
            DeviceAction.WIPE_USERS,
            DeviceAction.POWERWASH,
        ]
    return [(a.value, str(a.label)) for a in actions]


class DeviceCommandsView(_ReadOnlyObjectView):
    """The detail page's commands table (an htmx partial, refreshed while a command is not final)."""

    def lookup(self, pk: int) -> ChromeOSDevice:
        return get_object_or_404(ChromeOSDevice.objects.all(), pk=pk)

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        device = self.lookup(pk)
        commands = selectors.device_commands(device)
        return render(
            request,
            "chromeos/_device_commands.html",
            {
                "device": device,
                "commands": commands,
                "commands_pending": any(c.finished_at is None for c in commands),
            },
        )


class ActionPrepareView(TenantRoleRequiredMixin, View):
    """POST from the list: draft an action on the checked rows or on every device of the filter."""

    allowed_roles = OPERATE_ROLES

    def post(self, request: HttpRequest) -> HttpResponse:
        form = ActionPrepareForm(request.POST)
        back = reverse("chromeos:device_list")
        if not form.is_valid():
            for error in form.non_field_errors() or [_("Demande d'action invalide.")]:
                messages.error(request, str(error))
            back_query = request.POST.get("filter", "")
            return HttpResponseRedirect(back + (f"?{back_query}" if back_query else ""))
        data = form.cleaned_data
        flt = None
        selection = "selection"
        if data["scope"] == "filter":
            query = _filter_query(QueryDict(data.get("filter") or ""))
            flt = filter_from_query(query)
            selection = "filter:" + query.urlencode()
        try:
            job = services.device_action_prepare(
                actor=self.actor,
                action=data["action"],
                device_pks=data.get("ids") or [],
                flt=flt,
                selection=selection,
            )
        except services.ActionError as exc:
            messages.error(request, str(exc))
            return HttpResponseRedirect(back)
        return HttpResponseRedirect(reverse("chromeos:device_action_confirm", kwargs={"pk": job.pk}))


class DeviceActionView(TenantRoleRequiredMixin, View):
    """POST from a device's page: draft an action on this one device."""

    allowed_roles = OPERATE_ROLES

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        device = get_object_or_404(ChromeOSDevice.objects.all(), pk=pk)
        return HttpResponseRedirect(reverse("chromeos:device_detail", kwargs={"pk": device.pk}))

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        device = get_object_or_404(ChromeOSDevice.objects.all(), pk=pk)
        action = request.POST.get("action", "")
        params: dict[str, Any] = {}
        if action == DeviceAction.ANNOTATE:
            # Editing one device starts from its current values, every field ticked.
            params = {
                "annotations": {
                    "annotated_user": device.annotated_user,
                    "annotated_location": device.annotated_location,
                    "annotated_asset_id": device.annotated_asset_id,
                    "notes": device.notes,
                }
            }
        try:
            job = services.device_action_prepare(
                actor=self.actor,
                action=action,
                device_pks=[device.pk],
                selection=f"device:{device.pk}",
                params=params,
            )
        except services.ActionError as exc:
            messages.error(request, str(exc))
            return HttpResponseRedirect(reverse("chromeos:device_detail", kwargs={"pk": device.pk}))
        return HttpResponseRedirect(reverse("chromeos:device_action_confirm", kwargs={"pk": job.pk}))


class ActionConfirmView(TenantRoleRequiredMixin, View):
    """The confirmation: the exact devices (deviceId and serial), the parameters, the typed confirmation."""

    allowed_roles = OPERATE_ROLES

    def _job(self, pk: int) -> DeviceActionJob:
        return get_object_or_404(DeviceActionJob.objects.select_related("requested_by"), pk=pk)

    def _form(
        self, job: DeviceActionJob, data: Any = None, params: dict[str, Any] | None = None
    ) -> ActionConfirmForm:
        initial: dict[str, Any] = {}
        params = job.params if params is None else params
        if job.action == DeviceAction.ANNOTATE and params.get("annotations"):
            initial = {**params["annotations"], "annotate_fields": list(params["annotations"])}
        # A draft of « Relancer les échecs » starts from the parameters of the job it retries.
        for name in ("org_unit_path", "deprovision_reason", "volume"):
            if params.get(name) not in (None, ""):
                initial[name] = params[name]
        org_units = services.move_target_org_units() if job.action == DeviceAction.MOVE else []
        return ActionConfirmForm(
            data, initial=initial, action=job.action, count=job.total, org_units=org_units
        )

    @staticmethod
    def _preview_params(job: DeviceActionJob, data: QueryDict) -> dict[str, Any]:
        """The parameters typed so far, for the preview only (the confirmation validates them again)."""
        if job.action == DeviceAction.MOVE:
            path = data.get("org_unit_path", "")
            return {"org_unit_path": path} if path in services.move_target_org_units() else {}
        if job.action == DeviceAction.ANNOTATE:
            chosen = [f for f in data.getlist("annotate_fields") if f in services.ANNOTATION_LIMITS]
            return {"annotations": {f: data.get(f, "")[: services.ANNOTATION_LIMITS[f]] for f in chosen}}
        return {}

    def _render(
        self,
        request: HttpRequest,
        job: DeviceActionJob,
        form: ActionConfirmForm,
        status: int = 200,
        params: dict[str, Any] | None = None,
    ):
        preview = list(selectors.job_items(job)[: services.CONFIRMATION_PREVIEW])
        context = {
            "job": job,
            "form": form,
            "preview": preview,
            "changes": selectors.action_change_preview(
                job, job.params if params is None else params, services.CONFIRMATION_PREVIEW
            ),
            "can_preview": job.action in (DeviceAction.MOVE, DeviceAction.ANNOTATE),
            "more": max(0, job.total - len(preview)),
            "destructive": services.is_destructive(job.action),
            "is_command": services.is_command(job.action),
            "not_active": job.inactive_devices,
            "powerwash": job.action == DeviceAction.POWERWASH,
            "reenable": job.action == DeviceAction.REENABLE,
            "expired": services.draft_expired(job),
            "threshold": services.TYPED_CONFIRMATION_THRESHOLD,
        }
        return render(request, "chromeos/device_action_confirm.html", context, status=status)

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        job = self._job(pk)
        if job.status != JobStatus.DRAFT:
            return HttpResponseRedirect(reverse("chromeos:device_job", kwargs={"pk": job.pk}))
        return self._render(request, job, self._form(job))

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        job = self._job(pk)
        if job.status != JobStatus.DRAFT:
            return HttpResponseRedirect(reverse("chromeos:device_job", kwargs={"pk": job.pk}))
        params = self._preview_params(job, request.POST)
        if "preview" in request.POST:
            # « Prévisualiser »: the same page, each device's current → new value for what was typed.
            return self._render(request, job, self._form(job, params=params), params=params)
        form = self._form(job, request.POST)
        if not form.is_valid():
            return self._render(request, job, form, status=400, params=params)
        try:
            services.device_action_confirm(job=job, actor=self.actor, params=form.params())
        except services.ActionError as exc:
            form.add_error(None, str(exc))
            return self._render(request, job, form, status=400)
        messages.success(request, _("Action confirmée : elle s'exécute en arrière-plan."))
        return HttpResponseRedirect(reverse("chromeos:device_job", kwargs={"pk": job.pk}))


class ActionCancelView(TenantRoleRequiredMixin, View):
    allowed_roles = OPERATE_ROLES

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        job = get_object_or_404(DeviceActionJob.objects.all(), pk=pk)
        return HttpResponseRedirect(reverse("chromeos:device_action_confirm", kwargs={"pk": job.pk}))

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        job = get_object_or_404(DeviceActionJob.objects.all(), pk=pk)
        was_draft = job.status == JobStatus.DRAFT
        try:
            services.device_action_cancel(job=job, actor=self.actor)
        except services.ActionError as exc:
            messages.error(request, str(exc))
            return HttpResponseRedirect(reverse("chromeos:device_job", kwargs={"pk": job.pk}))
        if was_draft:
            messages.info(request, _("Action annulée : aucun périphérique n'a été modifié."))
            return HttpResponseRedirect(reverse("chromeos:device_list"))
        messages.info(
            request,
            _("Action annulée : les périphériques pas encore envoyés à Google ne seront pas modifiés."),
        )
        return HttpResponseRedirect(reverse("chromeos:device_job", kwargs={"pk": job.pk}))


class JobRetryFailedView(TenantRoleRequiredMixin, View):
    """« Relancer les échecs »: a new draft on the failed devices only, then the normal confirmation."""

    allowed_roles = OPERATE_ROLES

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        job = get_object_or_404(DeviceActionJob.objects.all(), pk=pk)
        return HttpResponseRedirect(reverse("chromeos:device_job", kwargs={"pk": job.pk}))

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        job = get_object_or_404(DeviceActionJob.objects.all(), pk=pk)
        try:
            retry = services.device_action_retry_failed(job=job, actor=self.actor)
        except services.ActionError as exc:
            messages.error(request, str(exc))
            return HttpResponseRedirect(reverse("chromeos:device_job", kwargs={"pk": job.pk}))
        return HttpResponseRedirect(reverse("chromeos:device_action_confirm", kwargs={"pk": retry.pk}))


class JobListView(TenantRoleRequiredMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        page = Paginator(selectors.recent_jobs(500), 50).get_page(request.GET.get("page"))
        return render(request, "chromeos/device_job_list.html", {"page": page})


class JobDetailView(_ReadOnlyObjectView):
    """A job's progress and its result per device (Google's reason for each failure)."""

    def lookup(self, pk: int) -> DeviceActionJob:
        return get_object_or_404(
            DeviceActionJob.objects.select_related("requested_by", "confirmed_by", "retry_of"), pk=pk
        )

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        job = self.lookup(pk)
        if job.status == JobStatus.DRAFT:
            if can_operate(self.actor):
                return HttpResponseRedirect(reverse("chromeos:device_action_confirm", kwargs={"pk": job.pk}))
            raise Http404
        status_filter = request.GET.get("result", "")
        if status_filter not in ("", "pending", "succeeded", "failed"):
            status_filter = ""
        items = selectors.job_items(job, status_filter)
        page = Paginator(items, 200).get_page(request.GET.get("page"))
        commands = {}
        if services.is_command(job.action):
            commands = {
                c.device_id: c
                for c in DeviceCommand.objects.filter(job=job, device_id__in=[i.device_id for i in page])
            }
        done = (
            job.succeeded + job.failed
            if job.finished_at
            else selectors.job_items(job).exclude(status="pending").count()
        )
        # Google accepted the commands but the devices have not reported yet: not a success so far.
        awaiting_devices = (
            services.is_command(job.action)
            and job.finished_at is not None
            and DeviceCommand.objects.filter(job=job, finished_at__isnull=True).exists()
        )
        running = job.status in (JobStatus.QUEUED, JobStatus.RUNNING) or awaiting_devices
        context = {
            "job": job,
            "page": page,
            "rows": [(item, commands.get(item.device_id)) for item in page],
            "done": done,
            "running": running,
            "awaiting_devices": awaiting_devices,
            "retry_in": services.device_action_job_retry_in(job),
            "waits_for_broker": services.device_action_job_waits_for_broker(job),
            "result": status_filter,
            "query": urlencode({"result": status_filter}) if status_filter else "",
            "is_command": services.is_command(job.action),
            "parameters": selectors.job_parameters(job),
            "can_retry_failed": (
                can_operate(self.actor)
                and job.failed > 0
                and job.status in (JobStatus.PARTIAL, JobStatus.FAILED, JobStatus.CANCELLED)
            ),
        }
        partial = request.headers.get("HX-Request")
        template = "chromeos/_device_job_body.html" if partial else "chromeos/device_job.html"
        return render(request, template, context)


urlpatterns = [
    path("devices/", DeviceListView.as_view(), name="device_list"),
    path("devices/export.csv", DeviceExportView.as_view(), name="device_export"),
    path("devices/actions/", ActionPrepareView.as_view(), name="device_action_prepare"),
    path("devices/actions/<int:pk>/", ActionConfirmView.as_view(), name="device_action_confirm"),
    path("devices/actions/<int:pk>/cancel/", ActionCancelView.as_view(), name="device_action_cancel"),
    path("devices/jobs/", JobListView.as_view(), name="device_job_list"),
    path("devices/jobs/<int:pk>/", JobDetailView.as_view(), name="device_job"),
    path("devices/jobs/<int:pk>/retry-failed/", JobRetryFailedView.as_view(), name="device_job_retry_failed"),
    path("devices/<int:pk>/", DeviceDetailView.as_view(), name="device_detail"),
    path("devices/<int:pk>/action/", DeviceActionView.as_view(), name="device_action"),
    path("devices/<int:pk>/commands/", DeviceCommandsView.as_view(), name="device_commands"),
]
