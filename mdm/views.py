from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import messages
from django.contrib.auth.views import LoginView
from django.core.paginator import Paginator
from django.db.models import Model, QuerySet
from django.forms import Form, ModelForm
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.utils.translation import gettext_lazy as _
from django.views import View

from mdm import selectors, services
from mdm.forms import BLUEPRINT_SETTINGS_FORMS, AppForm, AuditFilterForm, BlueprintForm, ConsoleLoginForm
from mdm.models import App, Blueprint, Platform, User
from mdm.permissions import OPERATE_ROLES, TenantRoleRequiredMixin

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
        }
        return render(request, "mdm/home.html", context)


class AuditLogView(TenantRoleRequiredMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        form = AuditFilterForm(request.GET or None)
        flt = selectors.AuditFilter()
        if form.is_valid():
            flt = selectors.AuditFilter(**form.cleaned_data)
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


class AppEditView(_TenantObjectEditView):
    model = App
    form_class = AppForm
    template_name = "mdm/app_form.html"
    list_url = "mdm:app_list"
    saved_message = _("Appli enregistrée.")

    def save(self, instance: App, actor: User) -> None:
        services.app_save(app=instance, actor=actor)
