"""Admin > Google > Gestion ChromeOS: the page where the integration lives, "Autoriser Google" and its callback.

| URL name                  | method | who                    | what                                                     |
|---------------------------|--------|------------------------|----------------------------------------------------------|
| ``chromeos:manage``       | GET    | every role             | prerequisites, the integration, counts, other panels     |
| ``chromeos:authorize``    | POST   | tenant admins          | redirect to Google's consent screen                      |
| ``chromeos:oauth_callback`` | GET  | tenant admins          | Google's redirect back: store the integration or explain |

How other areas extend the page (sync: "Synchro maintenant", progress, history; removal: "Supprimer"):

* their markup lives in their own partials, ``templates/chromeos/_sync_panel.html`` (shown once an integration
  exists) and ``templates/chromeos/_removal_panel.html`` (always included: it decides what to show, e.g. the
  outcome of a finished removal when no integration is left), which ``manage.html`` includes;
* their data comes from a function ``(tenant, integration, user) -> dict`` in their own selectors module, listed
  by dotted path in ``chromeos.selectors.integration.MANAGE_PAGE_SECTIONS``; its keys are merged into the
  context (see that module);
* live parts (progress) poll their own partial endpoints with htmx from inside their partial.

The base context: ``integration`` (or None), ``prerequisites``, ``ldap``, ``can_authorize``,
``authorize_blocker`` (why "Autoriser Google" is disabled), ``reauth_required``, ``device_count``,
``org_unit_count``, ``scope_rows``, ``customer_rows``; and from the context processor ``can_operate`` and
``can_administer`` for showing buttons.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import URLPattern, path, reverse
from django.utils.translation import gettext_lazy as _
from django.views import View

from chromeos.selectors.integration import manage_page_context
from chromeos.services import integration as services
from mdm.permissions import ADMIN_ROLES, TenantRoleRequiredMixin


def oauth_redirect_uri(request: HttpRequest) -> str:
    """The exact redirect URI registered at Google: from CONSOLE_BASE_URL when set, else from the request."""
    callback = reverse("chromeos:oauth_callback")
    base = settings.CONSOLE_BASE_URL
    if base:
        return base.rstrip("/") + callback
    return request.build_absolute_uri(callback)


class ManageView(TenantRoleRequiredMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        return render(request, "chromeos/manage.html", manage_page_context(self.tenant, self.actor))


class AuthorizeView(TenantRoleRequiredMixin, View):
    allowed_roles = ADMIN_ROLES
    http_method_names = ["post"]

    def post(self, request: HttpRequest) -> HttpResponse:
        try:
            url = services.integration_authorize_start(
                tenant=self.tenant,
                user=self.actor,
                session=request.session,
                redirect_uri=oauth_redirect_uri(request),
            )
        except services.AuthorizationError as error:
            messages.error(request, error.message)
            return HttpResponseRedirect(reverse("chromeos:manage"))
        return HttpResponseRedirect(url)


class OAuthCallbackView(TenantRoleRequiredMixin, View):
    """Google redirects the admin's browser here; a GET by nature, protected by the single-use state."""

    allowed_roles = ADMIN_ROLES

    def get(self, request: HttpRequest) -> HttpResponse:
        try:
            services.integration_authorize_complete(
                tenant=self.tenant, user=self.actor, session=request.session, params=request.GET.dict()
            )
        except services.AuthorizationError as error:
            messages.error(request, error.message)
        else:
            messages.success(request, _("Configuration réussie de ChromeOS"))
        # Redirect so that a reload does not replay the code, and the address bar drops it.
        return HttpResponseRedirect(reverse("chromeos:manage"))


urlpatterns: list[URLPattern] = [
    path("admin/google/chromeos/", ManageView.as_view(), name="manage"),
    path("admin/google/chromeos/autoriser/", AuthorizeView.as_view(), name="authorize"),
    path("admin/google/chromeos/oauth/callback/", OAuthCallbackView.as_view(), name="oauth_callback"),
]
