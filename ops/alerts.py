"""Alerts for people: a tenant's admins are e-mailed once when its ChromeOS sync keeps failing
(``OPS_ALERT_SYNC_FAILURES`` finished runs in a row, 3 by default), when Google needs re-authorization, or when a
sync holds removals back until an admin confirms them.

"Once" is per episode (``Alert.episode``, unique per tenant and kind): the first failed run of the streak, the
authorization that Google refused, the moment removals were first held (``removals_held_since``). A success ends a failure streak, a new
authorization ends a re-authorization episode: the next problem is a new episode and a new e-mail.

Evaluated after every sync (``chromeos.services.sync.devices_sync``) and every few minutes by beat
(``alerts_scan_task``: re-authorization is also discovered by device actions and policies). Each sent alert is
in the console (``ops:alerts``), in /support/ and counted in ``mdm_alert_emails_total``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.conf import settings
from django.core.mail import send_mail
from django.db import IntegrityError, transaction
from django.urls import reverse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from chromeos.models import GoogleIntegration, IntegrationStatus, SyncRun, SyncStatus
from mdm.models import Role, Tenant, User
from ops import metrics
from ops.models import Alert, AlertKind

logger = logging.getLogger(__name__)

STREAK_LOOKBACK = 100
COMPLETED = (SyncStatus.SUCCEEDED, SyncStatus.PARTIAL, SyncStatus.GUARDED, SyncStatus.FAILED)


@dataclass(frozen=True)
class Condition:
    kind: str
    episode: str
    subject: str
    body: str


def failures_threshold() -> int:
    return max(1, int(getattr(settings, "OPS_ALERT_SYNC_FAILURES", 3)))


def _streak(integration: GoogleIntegration, status: str, among: tuple[str, ...]) -> list[SyncRun]:
    """The newest runs (of statuses ``among``) that all have ``status``, newest first."""
    streak: list[SyncRun] = []
    runs = SyncRun.unscoped.filter(integration=integration, status__in=among).order_by("-created_at", "-id")
    for run in runs[:STREAK_LOOKBACK]:
        if run.status != status:
            break
        streak.append(run)
    return streak


def _console_url(path: str) -> str:
    base = getattr(settings, "CONSOLE_BASE_URL", "")
    return f"{base.rstrip('/')}{path}" if base else path


def conditions(tenant: Tenant) -> list[Condition]:
    """What the tenant's admins should hear about now (French first: the console's language)."""
    integration = GoogleIntegration.unscoped.filter(tenant=tenant).first()
    if integration is None:
        return []
    manage = _console_url(reverse("chromeos:manage"))
    found: list[Condition] = []
    if integration.status == IntegrationStatus.REAUTH_REQUIRED:
        found.append(
            Condition(
                AlertKind.REAUTH_REQUIRED,
                f"authorized:{integration.authorized_at.isoformat()}",
                _("Google demande une nouvelle autorisation (%(tenant)s)") % {"tenant": tenant.name},
                _(
                    "Google a refusé l'autorisation de la console pour %(domain)s : la synchronisation horaire "
                    "et les actions sur les périphériques sont suspendues. Un administrateur doit cliquer sur "
                    "« Autoriser Google » dans Gestion ChromeOS : %(url)s"
                )
                % {"domain": integration.domain, "url": manage},
            )
        )
    failed = _streak(integration, SyncStatus.FAILED, COMPLETED)
    if integration.status == IntegrationStatus.ACTIVE and len(failed) >= failures_threshold():
        found.append(
            Condition(
                AlertKind.SYNC_FAILING,
                f"first-failed-run:{failed[-1].pk}",
                _("La synchronisation ChromeOS échoue (%(tenant)s)") % {"tenant": tenant.name},
                _(
                    "Les %(count)s dernières synchronisations ChromeOS de %(domain)s ont échoué. Dernière "
                    "erreur : %(error)s\nLes périphériques affichés datent de la dernière synchronisation "
                    "réussie. Détails dans Gestion ChromeOS : %(url)s"
                )
                % {
                    "count": len(failed),
                    "domain": integration.domain,
                    "error": (failed[0].error or "-")[:300],
                    "url": manage,
                },
            )
        )
    # The deletion guard is a state of the integration: held from the first guarded run until an admin confirms.
    held_since = integration.removals_held_since
    if held_since is not None:
        latest = (
            SyncRun.unscoped.filter(integration=integration, status=SyncStatus.GUARDED)
            .order_by("-created_at", "-id")
            .first()
        )
        found.append(
            Condition(
                AlertKind.REMOVAL_GUARDED,
                f"removals-held-since:{held_since.isoformat()}",
                _("Des retraits de périphériques attendent votre confirmation (%(tenant)s)")
                % {"tenant": tenant.name},
                _(
                    "La synchronisation a trouvé %(count)s périphériques absents de Google, plus que le seuil de "
                    "%(threshold)s %% du parc : ils ne sont pas retirés tant qu'un administrateur ne l'a pas "
                    "confirmé dans Gestion ChromeOS : %(url)s"
                )
                % {
                    "count": latest.pending_removals if latest else "?",
                    "threshold": integration.deletion_guard_percent,
                    "url": manage,
                },
            )
        )
    return found


def _recipients(tenant: Tenant) -> list[str]:
    admins = User.objects.filter(tenant=tenant, role=Role.ADMIN, is_active=True).order_by("pk")
    addresses = []
    for user in admins:
        address = user.email or (user.username if "@" in user.username else "")
        if address and address not in addresses:
            addresses.append(address)
    return addresses


def alerts_evaluate(tenant: Tenant) -> list[Alert]:
    """Send what is due for this tenant, each episode once; the alerts sent now."""
    sent: list[Alert] = []
    with translation.override(settings.LANGUAGE_CODE):
        for condition in conditions(tenant):
            try:
                with transaction.atomic():
                    alert, created = Alert.unscoped.get_or_create(
                        tenant=tenant,
                        kind=condition.kind,
                        episode=condition.episode,
                        defaults={"subject": condition.subject, "body": condition.body},
                    )
            except IntegrityError:
                continue  # another process created it at the same moment: it sends
            if not created:
                continue
            _send(alert, tenant)
            sent.append(alert)
    return sent


def _send(alert: Alert, tenant: Tenant) -> None:
    alert.recipients = _recipients(tenant)
    if not alert.recipients:
        alert.error = _("Aucun administrateur avec une adresse e-mail.")
    else:
        try:
            send_mail(alert.subject, alert.body, None, alert.recipients, fail_silently=False)
        except Exception as error:
            logger.warning("alert %s not sent: %s", alert.kind, type(error).__name__)
            alert.error = _("Envoi impossible : %(error)s") % {"error": type(error).__name__}
        else:
            alert.sent_at = timezone.now()
            metrics.inc("mdm_alert_emails", alert.kind)
            logger.info("alert %s e-mailed to %s admins", alert.kind, len(alert.recipients))
    alert.save(update_fields=["recipients", "sent_at", "error"])


def alerts_scan() -> int:
    """Beat: tenants waiting for re-authorization (device actions and policies discover it too, not only syncs,
    which evaluate their tenant themselves); the number of alerts sent."""
    tenant_ids = GoogleIntegration.unscoped.filter(status=IntegrationStatus.REAUTH_REQUIRED).values_list(
        "tenant_id", flat=True
    )
    count = 0
    for tenant in Tenant.objects.filter(pk__in=list(tenant_ids)):
        count += len(alerts_evaluate(tenant))
    return count
