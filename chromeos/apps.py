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

        # A Blueprint or an app assigned to an OU is not deleted from the console: it lists the assignments.
        from chromeos.selectors.policies import subject_usages
        from mdm.services import register_usage_provider

        register_usage_provider(subject_usages)

        # Accueil: the guide's setup checklist, then the fleet's health.
        from chromeos.selectors.home import home_cockpit
        from mdm.home import register_home_panel

        register_home_panel("chromeos/_home_cockpit.html", home_cockpit)

        # The tenant's integration, syncs, failures, assignments and directory on its /support/ page.
        from chromeos.selectors.support import tenant_cockpit
        from mdm.support import register_support_panel

        register_support_panel("admin/chromeos/_support_tenant.html", tenant_cockpit)

        # How its audit codes read in the journal.
        from chromeos import audit_messages

        audit_messages.register()

        # One reaper for every kind of job (mdm/jobs.py): this app's syncs and device jobs.
        from chromeos.services.devices import device_jobs_reap
        from chromeos.services.sync import sync_runs_reap
        from mdm.jobs import register_reaper

        register_reaper("chromeos.sync", sync_runs_reap)
        register_reaper("chromeos.device_jobs", device_jobs_reap)
        from chromeos.services.devices import device_commands_reap

        register_reaper("chromeos.device_commands", device_commands_reap)
        from chromeos.services.policies import policy_jobs_reap

        register_reaper("chromeos.policy_jobs", policy_jobs_reap)
        from chromeos.services.removal import removal_runs_reap

        register_reaper("chromeos.removals", removal_runs_reap)

        # Deleting a Blueprint or an app deletes its assignments (CASCADE) and puts back at Google what they wrote.
        from django.db.models.signals import pre_delete

        from chromeos.services.policies import policy_assignments_revert_on_delete
        from mdm.models import App, Blueprint

        def blueprint_deleted(sender: type, instance: Blueprint, **kwargs: object) -> None:
            policy_assignments_revert_on_delete(blueprint=instance)

        def app_deleted(sender: type, instance: App, **kwargs: object) -> None:
            policy_assignments_revert_on_delete(app=instance)

        pre_delete.connect(
            blueprint_deleted, sender=Blueprint, weak=False, dispatch_uid="chromeos.blueprint_deleted"
        )
        pre_delete.connect(app_deleted, sender=App, weak=False, dispatch_uid="chromeos.app_deleted")
