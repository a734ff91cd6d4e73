"""The console's page of alerts e-mailed to the tenant's admins (every role may read it)."""

from __future__ import annotations

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views import View

from mdm.permissions import TenantRoleRequiredMixin
from ops.models import Alert


class AlertListView(TenantRoleRequiredMixin, View):
    def get(self, request: HttpRequest) -> HttpResponse:
        page = Paginator(Alert.objects.all(), 25).get_page(request.GET.get("page"))
        return render(request, "ops/alert_list.html", {"page": page})
