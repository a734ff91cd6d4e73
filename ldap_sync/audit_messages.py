"""How the LDAP directory's audit codes read in the journal (see ``mdm.audit``)."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from mdm.audit import AuditMessage, detail_link, register_audit_messages, url_or_none


def _directory(event: object) -> str | None:
    return url_or_none("ldap_sync:directory")


def register() -> None:
    register_audit_messages(
        {
            "ldap.directory.create": AuditMessage(
                _("%(actor)s a configuré l'annuaire LDAP %(object)s."), _directory
            ),
            "ldap.directory.update": AuditMessage(
                _("%(actor)s a modifié la configuration de l'annuaire LDAP %(object)s (%(changed)s)."),
                _directory,
            ),
            "ldap.org_units.select": AuditMessage(
                _("%(actor)s a choisi les unités organisationnelles LDAP à ajouter (%(added)s ajoutée(s))."),
                _directory,
            ),
            "ldap.sync.request": AuditMessage(
                _("%(actor)s a lancé la synchronisation de l'annuaire %(object)s."),
                detail_link("ldap_sync:run", "run_id"),
            ),
            "ldap.sync.confirm_removals": AuditMessage(
                _(
                    "%(actor)s a confirmé les retraits de la synchronisation LDAP "
                    "(%(org_units)s unité(s), %(users)s utilisateur(s))."
                ),
                detail_link("ldap_sync:run", "guarded_run_id"),
            ),
            "ldap.org_unit.assignments_at_risk": AuditMessage(
                _(
                    "L'unité Google %(object)s perd son unité LDAP (%(ldap_path)s) et porte %(assignments)s "
                    "affectation(s), toujours appliquées chez Google : réaffectez-les ou retirez-les."
                ),
                lambda event: url_or_none("chromeos:policies"),
            ),
        },
        categories={"ldap.": "ldap"},
    )
