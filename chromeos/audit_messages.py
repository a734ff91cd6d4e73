"""How the ChromeOS integration's audit codes read in the journal (see ``mdm.audit``)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from chromeos.models import DeviceAction
from mdm.audit import AuditMessage, detail_link, register_audit_messages, url_or_none


def _manage(event: object) -> str | None:
    return url_or_none("chromeos:manage")


def _device_message(rest: str) -> AuditMessage | None:
    """``device.<action>`` and ``device.<action>.finished``."""
    finished = rest.endswith(".finished")
    code = rest.removesuffix(".finished")
    if code not in DeviceAction.values:
        return None
    label = DeviceAction(code).label
    job = detail_link("chromeos:device_job", "job_id")
    if finished:
        text = _(
            "« %(label)s » sur %(object)s est terminée : %(succeeded)s réussite(s), %(failed)s échec(s)."
        )
    else:
        text = _("%(actor)s a lancé « %(label)s » sur %(object)s.")
    return AuditMessage(_LabelledText(text, label), job)


class _LabelledText:
    """A sentence with the action's own label filled in when it is read (in the reader's language)."""

    def __init__(self, text: object, label: object) -> None:
        self.text, self.label = text, label

    def __str__(self) -> str:
        return str(self.text).replace("%(label)s", str(self.label).replace("%", "%%"))


def register() -> None:
    assignment = detail_link("chromeos:policy_assignment", "assignment_id")
    register_audit_messages(
        {
            "integration.authorize_start": AuditMessage(
                _("%(actor)s a commencé l'autorisation de Google."), _manage
            ),
            "integration.authorize_failed": AuditMessage(
                _("L'autorisation de Google demandée par %(actor)s a échoué (%(error)s)."), _manage
            ),
            "integration.authorize": AuditMessage(
                _("%(actor)s a autorisé Google pour le domaine %(object)s."), _manage
            ),
            "integration.reauthorize": AuditMessage(
                _("%(actor)s a réautorisé Google pour le domaine %(object)s."), _manage
            ),
            "integration.reauth_required": AuditMessage(
                _(
                    "Google n'accepte plus l'autorisation du domaine %(object)s : réautorisation requise (%(reason)s)."
                ),
                _manage,
            ),
            "chromeos.sync.request": AuditMessage(
                _("%(actor)s a lancé « Synchro maintenant » pour le domaine %(object)s."), _manage
            ),
            "chromeos.sync.confirm_removals": AuditMessage(
                _(
                    "%(actor)s a confirmé le retrait de %(pending_removals)s périphérique(s) absent(s) de Google (%(object)s)."
                ),
                _manage,
            ),
            "google.remove_request": AuditMessage(
                _(
                    "%(actor)s a demandé la suppression de l'intégration Google %(object)s (référence %(reference)s)."
                ),
                _manage,
            ),
            "google.remove": AuditMessage(
                _("L'intégration Google %(object)s a été supprimée (référence %(reference)s)."), _manage
            ),
            "google.remove_failed": AuditMessage(
                _("La suppression de l'intégration Google %(object)s a échoué : %(error)s."), _manage
            ),
            "device.export": AuditMessage(_("%(actor)s a exporté la liste des périphériques en CSV.")),
            "device.retry_failed": AuditMessage(
                _(
                    "%(actor)s a préparé la relance de l'action n° %(source_job_id)s sur ses "
                    "%(devices)s périphérique(s) en échec."
                ),
                detail_link("chromeos:device_job", "job_id"),
            ),
            "device_view.share": AuditMessage(
                _("%(actor)s a partagé la vue %(object)s avec toute l'organisation."),
            ),
            "device_view.unshare": AuditMessage(
                _("%(actor)s a cessé de partager la vue %(object)s."),
            ),
            "device_view.rename": AuditMessage(
                _("%(actor)s a renommé la vue partagée %(previous_name)s en %(object)s."),
            ),
            "device_view.delete": AuditMessage(_("%(actor)s a supprimé la vue partagée %(object)s.")),
            "policy.assign": AuditMessage(_("%(actor)s a affecté %(object)s."), assignment),
            "policy.apply": AuditMessage(
                _("%(actor)s a demandé l'application de %(object)s chez Google."), assignment
            ),
            "policy.applied": AuditMessage(_("Google a appliqué %(object)s."), assignment),
            "policy.apply_failed": AuditMessage(
                _("L'application de %(object)s a échoué : %(error)s."), assignment
            ),
            "policy.unassign": AuditMessage(_("%(actor)s a retiré l'affectation %(object)s."), assignment),
            "policy.unassigned": AuditMessage(_("L'affectation %(object)s a été retirée chez Google.")),
            "policy.unassign_failed": AuditMessage(
                _("Le retrait de l'affectation %(object)s a échoué : %(error)s."), assignment
            ),
            "policy.release": AuditMessage(
                _("%(actor)s a libéré l'affectation %(object)s (unité organisationnelle disparue de Google).")
            ),
            "policy.inventory_export": AuditMessage(
                _("%(actor)s a exporté l'inventaire de %(object)s en CSV.")
            ),
            "policy.retarget": AuditMessage(
                _(
                    "%(actor)s a réaffecté %(object)s, depuis l'unité disparue %(from_org_unit)s : "
                    "l'ancienne unité est libérée."
                ),
                detail_link("chromeos:policy_assignment", "new_assignment_id"),
            ),
            "chromeos.org_unit.recreated": AuditMessage(
                _(
                    "L'unité organisationnelle %(object)s a été recréée dans Google (nouvel identifiant) : "
                    "ses affectations sont conservées, à appliquer de nouveau."
                )
            ),
            "chromeos.org_unit.missing": AuditMessage(
                _(
                    "L'unité organisationnelle %(object)s a disparu de Google : ses affectations sont "
                    "conservées comme « OU disparue »."
                )
            ),
        },
        categories={
            "integration.": "google",
            "chromeos.sync.": "google",
            "chromeos.org_unit.": "policies",
            "google.": "google",
            "device.": "devices",
            "device_view.": "devices",
            "policy.": "policies",
        },
        prefixes={"device.": _device_message},
    )
