from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class LdapSyncConfig(AppConfig):
    name = "ldap_sync"
    verbose_name = _("Annuaire LDAP")

    def ready(self) -> None:
        from ldap_sync import audit_messages

        audit_messages.register()

        # One reaper for every kind of job (mdm/jobs.py): this app's syncs.
        from ldap_sync.services import ldap_sync_runs_reap
        from mdm.jobs import register_reaper

        register_reaper("ldap_sync.sync", ldap_sync_runs_reap)
