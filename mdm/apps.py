from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MdmConfig(AppConfig):
    name = "mdm"
    verbose_name = _("Console MDM")

    def ready(self) -> None:
        from mdm.audit import core_messages, register_audit_messages

        # The journal's sentences for the core's own codes; integrations add theirs in their ready().
        register_audit_messages(core_messages())
