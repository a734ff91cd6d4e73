from django.urls import path

from ops import views

app_name = "ops"

urlpatterns = [
    path("alertes/", views.AlertListView.as_view(), name="alerts"),
]
