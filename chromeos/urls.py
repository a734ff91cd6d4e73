from chromeos.views import devices, integration, policies, removal, sync

app_name = "chromeos"

urlpatterns = [
    *integration.urlpatterns,
    *sync.urlpatterns,
    *removal.urlpatterns,
    *devices.urlpatterns,
    *policies.urlpatterns,
]
