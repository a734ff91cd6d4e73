from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ChromeosConfig(AppConfig):
    name = "chromeos"
    verbose_name = _("Gestion ChromeOS")
