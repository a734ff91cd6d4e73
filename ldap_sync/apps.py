from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LdapSyncConfig(AppConfig):
    name = "ldap_sync"
    verbose_name = _("Annuaire LDAP")

    def ready(self) -> None:
        from ldap_sync import audit_messages

        audit_messages.register()
