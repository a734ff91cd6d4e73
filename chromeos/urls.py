from chromeos.views import device_views, devices, integration, policies, removal, sync

app_name = "chromeos"

urlpatterns = [
    *integration.urlpatterns,
    *sync.urlpatterns,
    *removal.urlpatterns,
    *device_views.urlpatterns,
    *devices.urlpatterns,
    *policies.urlpatterns,
]
