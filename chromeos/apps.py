from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ChromeosConfig(AppConfig):
    name = "chromeos"
    verbose_name = _("Gestion ChromeOS")

    def ready(self) -> None:
        from chromeos.forms.policies import ChromeOSSettingsForm
        from mdm.forms import register_blueprint_settings_form
        from mdm.models import Platform

        # The Blueprint page edits ChromeOS settings through the typed form of the policy schema catalog.
        register_blueprint_settings_form(Platform.CHROMEOS, ChromeOSSettingsForm)
