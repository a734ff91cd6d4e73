from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class OpsConfig(AppConfig):
    """Running the console: health and readiness, worker liveness, metrics, structured logs, alerts."""

    name = "ops"
    verbose_name = _("Exploitation")

    def ready(self) -> None:
        from ops import worker  # noqa: F401 - connects the Celery signals of worker liveness
