from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class MdmConfig(AppConfig):
    name = "mdm"
    verbose_name = _("Console MDM")

    def ready(self) -> None:
        from mdm.audit import core_messages, register_audit_messages

        # The journal's sentences for the core's own codes; integrations add theirs in their ready().
        register_audit_messages(core_messages())

        from django.db.models.signals import post_delete

        from mdm.models import App
        from mdm.services import app_package_release

        # However an app row goes (the console, django-admin, its tenant deleted), its package leaves the disk.
        def app_deleted(sender: type, instance: App, **kwargs: object) -> None:
            app_package_release(instance)

        post_delete.connect(app_deleted, sender=App, weak=False, dispatch_uid="mdm.app_package_release")

        from django.contrib.auth.signals import user_logged_in, user_login_failed

        from mdm import auth, checks  # noqa: F401  (checks registers the deployment checks)

        # After axes' own receivers (axes is listed before mdm): they mark a throttled request first.
        user_logged_in.connect(auth.on_user_logged_in, dispatch_uid="mdm-signin-audit-success")
        user_login_failed.connect(auth.on_user_login_failed, dispatch_uid="mdm-signin-audit-failure")
