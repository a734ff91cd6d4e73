from importlib.util import find_spec

from django.contrib import admin
from django.contrib.auth.views import LogoutView
from django.urls import include, path

from mdm import views

app_urls = [
    path("admin/parametres/", views.TenantSettingsView.as_view(), name="settings"),
    path("audit/", views.AuditLogView.as_view(), name="audit"),
    path("audit/export.csv", views.AuditExportView.as_view(), name="audit_export"),
    path("configurations/", views.BlueprintListView.as_view(), name="blueprint_list"),
    path("configurations/nouvelle/", views.BlueprintEditView.as_view(), name="blueprint_create"),
    path("configurations/<int:pk>/", views.BlueprintEditView.as_view(), name="blueprint_edit"),
    path("configurations/<int:pk>/supprimer/", views.BlueprintDeleteView.as_view(), name="blueprint_delete"),
    path("applis/", views.AppListView.as_view(), name="app_list"),
    path("applis/nouvelle/", views.AppEditView.as_view(), name="app_create"),
    path("applis/<int:pk>/", views.AppEditView.as_view(), name="app_edit"),
    path("applis/<int:pk>/supprimer/", views.AppDeleteView.as_view(), name="app_delete"),
    path("applis/<int:pk>/fichier/", views.AppDownloadView.as_view(), name="app_download"),
]

urlpatterns = [
    path("", views.HomeView.as_view(), name="home"),
    path("login/", views.ConsoleLoginView.as_view(), name="login"),
    path("logout/", LogoutView.as_view(), name="logout"),
    path("i18n/", include("django.conf.urls.i18n")),
    # django-admin is the support team's tool; "Admin" in the console's sidebar means the tenant's settings.
    path("support/", admin.site.urls),
    path("", include((app_urls, "mdm"))),
    path("", include("ops.urls", namespace="ops")),
]

# Each integration app brings its own pages under its namespace.
for app_label, prefix in (("ldap_sync", "admin/ldap/"), ("chromeos", "")):
    if find_spec(f"{app_label}.urls") is not None:
        urlpatterns.append(path(prefix, include(f"{app_label}.urls", namespace=app_label)))
