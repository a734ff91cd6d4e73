from __future__ import annotations

import csv
import posixpath
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from django.contrib import messages
from django.contrib.auth.views import LoginView
from django.core.paginator import Paginator
from django.db.models import Model, QuerySet
from django.forms import Form, ModelForm
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
    StreamingHttpResponse,
)
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.translation import get_language
from django.utils.translation import gettext_lazy as _
from django.views import View

from mdm import audit, selectors, services
from mdm.display import neutralise
from mdm.forms import (
    BLUEPRINT_SETTINGS_FORMS,
    AppForm,
    AuditFilterForm,
    BlueprintForm,
    ConsoleLoginForm,
    TenantSettingsForm,
)
from mdm.home import home_panels
from mdm.models import App, Blueprint, Platform, User
from mdm.permissions import ADMIN_ROLES, OPERATE_ROLES, TenantRoleRequiredMixin

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise


class ConsoleLoginView(LoginView):
    form_class = ConsoleLoginForm
    template_name = "registration/login.html"
    redirect_authenticated_user = True


class HomeView(TenantRoleRequiredMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        context = {
            "blueprint_count": Blueprint.objects.count(),
            "app_count": App.objects.count(),
            "recent_events": selectors.audit_events(selectors.AuditFilter())[:8],
            "panels": home_panels(self.tenant, self.actor),
        }
        return render(request, "mdm/home.html", context)


def _audit_filter(request: HttpRequest) -> tuple[AuditFilterForm, selectors.AuditFilter]:
    form = AuditFilterForm(request.GET or None)
    if form.is_valid():
        return form, selectors.AuditFilter(**form.cleaned_data)
    return form, selectors.AuditFilter()


class AuditLogView(TenantRoleRequiredMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        form, flt = _audit_filter(request)
        page = Paginator(selectors.audit_events(flt), 50).get_page(request.GET.get("page"))
        query = request.GET.copy()
        query.pop("page", None)
        context = {
            "form": form,
            "page": page,
            "query": query.urlencode(),
            "actions": selectors.audit_actions(),
        }
        return render(request, "mdm/audit_list.html", context)


class _Echo:
    def write(self, value: str) -> str:
        return value


class AuditExportView(TenantRoleRequiredMixin, View):
    """The journal as filtered, in CSV: ``;`` and French words for French spreadsheets, ``,`` in English
    (``?sep=,`` or ``?sep=;`` to choose), times in the tenant's zone."""

    def get(self, request: HttpRequest) -> StreamingHttpResponse:
        _form, flt = _audit_filter(request)
        sep = request.GET.get("sep") or (";" if get_language() == "fr" else ",")
        if sep not in (";", ","):
            sep = ";"
        events = selectors.audit_events(flt)
        header = [
            str(h)
            for h in (
                _("Date"),
                _("Acteur"),
                _("Catégorie"),
                _("Événement"),
                _("Code"),
                _("Cible"),
                _("Détails"),
            )
        ]

        # The response streams after the middleware has restored the console's zone: the tenant's is kept here.
        tz = timezone.get_current_timezone()

        def stream() -> Iterator[str]:
            writer = csv.writer(_Echo(), delimiter=sep)
            yield "\ufeff"  # spreadsheets then read the file as UTF-8
            yield writer.writerow(header)
            for event in events.iterator(chunk_size=500):
                when = date_format(timezone.localtime(event.created_at, tz), "SHORT_DATETIME_FORMAT")
                yield writer.writerow([audit.csv_safe(v) for v in audit.csv_row(event, when)])

        stamp = timezone.localtime().strftime("%Y%m%d-%H%M")
        response = StreamingHttpResponse(stream(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = f'attachment; filename="journal-audit-{stamp}.csv"'
        return response


class _TenantObjectListView(TenantRoleRequiredMixin, View):
    model: type[Model]
    template_name: str

    def get(self, request: HttpRequest) -> HttpResponse:
        objects: QuerySet[Any] = self.model.objects.all()  # type: ignore[attr-defined]
        page = Paginator(objects, 50).get_page(request.GET.get("page"))
        return render(request, self.template_name, {"page": page})


class _TenantObjectEditView(TenantRoleRequiredMixin, View):
    """Create (no pk) or edit one tenant object. Every role reads; admins and operators write."""

    write_roles = OPERATE_ROLES
    model: type[Model]
    form_class: type[ModelForm]
    template_name: str
    list_url: str
    saved_message: StrOrPromise

    def get_object(self, pk: int | None) -> Model | None:
        if pk is None:
            return None
        return get_object_or_404(self.model.objects.all(), pk=pk)  # type: ignore[attr-defined]

    def build_forms(self, obj: Any, data: Any = None, files: Any = None) -> dict[str, Any]:
        """The page's forms by context name; ``form`` is the object's own. Subclasses add theirs."""
        return {"form": self.form_class(data, files, instance=obj, tenant=self.tenant)}  # type: ignore[call-arg]

    def before_save(self, forms: dict[str, Any]) -> None:
        """Fold the extra forms' cleaned data into ``forms["form"].instance``."""

    def get(self, request: HttpRequest, pk: int | None = None) -> HttpResponse:
        obj = self.get_object(pk)
        return render(request, self.template_name, {**self.build_forms(obj), "object": obj})

    def post(self, request: HttpRequest, pk: int | None = None) -> HttpResponse:
        obj = self.get_object(pk)
        forms = self.build_forms(obj, request.POST, request.FILES)
        # Validate every form (no short-circuit), so the admin sees all errors at once.
        results = [form.is_valid() for form in forms.values() if form is not None]
        if not all(results):
            return render(request, self.template_name, {**forms, "object": obj}, status=400)
        self.before_save(forms)
        self.save(forms["form"].instance, self.actor)
        messages.success(request, self.saved_message)
        return HttpResponseRedirect(reverse(self.list_url))

    def save(self, instance: Any, actor: User) -> None:
        raise NotImplementedError


class BlueprintListView(_TenantObjectListView):
    model = Blueprint
    template_name = "mdm/blueprint_list.html"


class BlueprintEditView(_TenantObjectEditView):
    model = Blueprint
    form_class = BlueprintForm
    template_name = "mdm/blueprint_form.html"
    list_url = "mdm:blueprint_list"
    saved_message = _("Configuration enregistrée.")

    def save(self, instance: Blueprint, actor: User) -> None:
        services.blueprint_save(blueprint=instance, actor=actor)

    def build_forms(self, obj: Any, data: Any = None, files: Any = None) -> dict[str, Any]:
        typed = self.settings_form(obj, data)
        form = BlueprintForm(data, instance=obj, tenant=self.tenant, typed_settings=typed is not None)
        return {"form": form, "settings_form": typed}

    def before_save(self, forms: dict[str, Any]) -> None:
        if forms["settings_form"] is not None:
            forms["form"].instance.settings = forms["settings_form"].to_settings()

    def settings_form(self, obj: Blueprint | None, data: Any = None) -> Form | None:
        """The typed settings form of the Blueprint's platform, if an integration registered one."""
        platform = (data or {}).get("platform") or (obj.platform if obj else Platform.CHROMEOS)
        form_class = BLUEPRINT_SETTINGS_FORMS.get(platform)
        if form_class is None:
            return None
        return form_class(data, settings=obj.settings if obj else {}, blueprint=obj, prefix="settings")  # type: ignore[call-arg]


class AppListView(_TenantObjectListView):
    model = App
    template_name = "mdm/app_list.html"


class _TenantObjectDeleteView(TenantRoleRequiredMixin, View):
    """Delete one Blueprint or app: GET asks for confirmation (and lists what still uses it), POST deletes.

    Something still assigned is refused with its assignments listed: each is undone from its own page, with its
    preview and restore-or-inherit choice, so deleting never changes devices' policies unseen.
    """

    allowed_roles = OPERATE_ROLES
    model: type[Model]
    list_url: str
    edit_url: str
    deleted_message: StrOrPromise

    def get_object(self, pk: int) -> Any:
        return get_object_or_404(self.model.objects.all(), pk=pk)  # type: ignore[attr-defined]

    def render_page(self, obj: Any, usages: list[services.Usage], status: int = 200) -> HttpResponse:
        context = {"object": obj, "usages": usages, "edit_url": reverse(self.edit_url, args=[obj.pk])}
        return render(self.request, "mdm/confirm_delete.html", context, status=status)

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        obj = self.get_object(pk)
        return self.render_page(obj, services.subject_usages(obj))

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        obj = self.get_object(pk)
        try:
            self.delete(obj, self.actor)
        except services.SubjectInUse as exc:
            return self.render_page(obj, exc.usages, status=409)
        messages.success(request, self.deleted_message)
        return HttpResponseRedirect(reverse(self.list_url))

    def delete(self, obj: Any, actor: User) -> None:
        raise NotImplementedError


class BlueprintDeleteView(_TenantObjectDeleteView):
    model = Blueprint
    list_url = "mdm:blueprint_list"
    edit_url = "mdm:blueprint_edit"
    deleted_message = _("Configuration supprimée.")

    def delete(self, obj: Blueprint, actor: User) -> None:
        services.blueprint_delete(blueprint=obj, actor=actor)


class AppDeleteView(_TenantObjectDeleteView):
    model = App
    list_url = "mdm:app_list"
    edit_url = "mdm:app_edit"
    deleted_message = _("Appli supprimée.")

    def delete(self, obj: App, actor: User) -> None:
        services.app_delete(app=obj, actor=actor)


class AppDownloadView(TenantRoleRequiredMixin, View):
    """An app's package, for every role of its tenant: always an attachment, never rendered by the browser."""

    def get(self, request: HttpRequest, pk: int) -> FileResponse:
        app = get_object_or_404(App.objects.all(), pk=pk)
        if not app.file:
            raise Http404("This app has no package.")
        try:
            handle = app.file.open("rb")
        except FileNotFoundError as exc:
            raise Http404("The package is missing from storage.") from exc
        # The saved file's name is shown by the admin's own system: no bidi control may reorder it there.
        name = neutralise(app.file_name or posixpath.basename(app.file.name))
        response = FileResponse(
            handle, as_attachment=True, filename=name, content_type="application/octet-stream"
        )
        response["X-Content-Type-Options"] = "nosniff"
        response["Cache-Control"] = "private, no-store"
        return response

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        # Another tenant's app is not found, whatever the method: its existence is not revealed by a 405.
        get_object_or_404(App.objects.all(), pk=pk)
        return HttpResponseNotAllowed(["GET", "HEAD"])


class AppEditView(_TenantObjectEditView):
    model = App
    form_class = AppForm
    template_name = "mdm/app_form.html"
    list_url = "mdm:app_list"
    saved_message = _("Appli enregistrée.")

    def save(self, instance: App, actor: User) -> None:
        services.app_save(app=instance, actor=actor)


class TenantSettingsView(TenantRoleRequiredMixin, View):
    """« Paramètres »: every role reads the tenant's settings, admins change them."""

    write_roles = ADMIN_ROLES

    def get(self, request: HttpRequest) -> HttpResponse:
        form = TenantSettingsForm(initial={"time_zone": self.tenant.time_zone})
        return self._render(request, form)

    def post(self, request: HttpRequest) -> HttpResponse:
        form = TenantSettingsForm(request.POST)
        if not form.is_valid():
            return self._render(request, form, status=400)
        if services.tenant_settings_update(
            tenant=self.tenant, actor=self.actor, time_zone=form.cleaned_data["time_zone"]
        ):
            messages.success(request, _("Paramètres enregistrés."))
        return HttpResponseRedirect(reverse("mdm:settings"))

    def _render(self, request: HttpRequest, form: TenantSettingsForm, status: int = 200) -> HttpResponse:
        context = {"form": form, "now": timezone.localtime(), "tenant": self.tenant}
        return render(request, "mdm/settings.html", context, status=status)
