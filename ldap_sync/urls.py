from django.urls import path

from ldap_sync import views

app_name = "ldap_sync"

urlpatterns = [
    path("", views.DirectoryView.as_view(), name="directory"),
    path("tester/", views.DirectoryTestView.as_view(), name="test"),
    path("synchroniser/", views.SyncView.as_view(), name="sync"),
    path("unites/", views.OrgUnitSelectionView.as_view(), name="org_units"),
    path("synchronisations/", views.RunListView.as_view(), name="runs"),
    path("synchronisations/<int:pk>/", views.RunDetailView.as_view(), name="run"),
    path(
        "synchronisations/<int:pk>/confirmer/", views.ConfirmRemovalsView.as_view(), name="confirm_removals"
    ),
    path("synchronisations/<int:pk>/annuler/", views.CancelRunView.as_view(), name="cancel"),
]
