"""Reads of the removal panel: what a removal would delete and keep, and the state of the latest removal."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from django.utils.translation import gettext as _

from chromeos.models import GoogleIntegration, PolicyAssignment, RemovalRun, RemovalStatus
from chromeos.services.removal import (
    REMOVED_MODELS,
    RUN_KIND,
    model_key,
    removal_counts,
    removal_progress,
    removal_run_is_stale,
)
from mdm import jobs
from mdm.models import App, Blueprint, Tenant


@dataclass(frozen=True)
class CountRow:
    label: str
    count: int


@dataclass
class RemovalPanel:
    integration: GoogleIntegration | None
    latest_run: RemovalRun | None
    # Filled only when the removal can be asked for (the dialog's content).
    deleted: list[CountRow] = field(default_factory=list)
    kept: list[CountRow] = field(default_factory=list)
    progress: dict[str, Any] | None = None
    # A queued removal whose message waits in the outbox (the broker is down): the panel says why it waits.
    waits_for_broker: bool = False
    # Assignments whose policies the console wrote at Google (what removal leaves in force unless restored).
    applied_policies: list[Any] = field(default_factory=list)

    @property
    def removing(self) -> bool:
        run = self.latest_run
        return run is not None and run.is_active and not removal_run_is_stale(run)

    @property
    def failed_run(self) -> RemovalRun | None:
        """The latest run, if it failed (or died) and the integration is still there: what "Réessayer" retries."""
        run = self.latest_run
        if run is None or self.integration is None:
            return None
        if run.status == RemovalStatus.FAILED or removal_run_is_stale(run):
            return run
        return None

    @property
    def succeeded_run(self) -> RemovalRun | None:
        """The latest run, if it removed the integration and none was authorized since."""
        run = self.latest_run
        if run is not None and run.status == RemovalStatus.SUCCEEDED and self.integration is None:
            return run
        return None

    @property
    def deleted_rows(self) -> list[CountRow]:
        """What the latest run deleted, labelled."""
        return count_rows(self.latest_run.deleted) if self.latest_run is not None else []

    @property
    def can_remove(self) -> bool:
        return self.integration is not None and not self.removing


def model_label(key: str) -> str:
    """How people call the rows of a removed model (keyed as in counts)."""
    if key == model_key(GoogleIntegration):
        # The integration row is what the guide calls the enrollment metadata.
        return _("métadonnées d'inscription Google (domaine, compte administrateur, autorisations, jetons)")
    for model in REMOVED_MODELS:
        if model_key(model) == key:
            return str(model._meta.verbose_name_plural)
    return key


# What admins look for first; models not listed (added later) follow in deletion order.
DISPLAY_ORDER = ("chromeosdevice", "orgunit", "policyassignment", "devicecommand")


def count_rows(counts: dict[str, int]) -> list[CountRow]:
    """Counts keyed by model, labelled for people, devices first."""
    order = [*DISPLAY_ORDER, *(model_key(m) for m in REMOVED_MODELS if model_key(m) not in DISPLAY_ORDER)]
    keys = sorted(counts, key=lambda key: order.index(key) if key in order else len(order))
    return [CountRow(model_label(key), counts[key]) for key in keys]


def removal_preview(tenant: Tenant) -> tuple[list[CountRow], list[CountRow]]:
    """(what goes, what stays) if the tenant's integration were removed now."""
    deleted = count_rows(removal_counts(tenant))
    kept = [
        CountRow(str(Blueprint._meta.verbose_name_plural), Blueprint.unscoped.filter(tenant=tenant).count()),
        CountRow(str(App._meta.verbose_name_plural), App.unscoped.filter(tenant=tenant).count()),
    ]
    return deleted, kept


def removal_panel(tenant: Tenant, *, with_preview: bool) -> RemovalPanel:
    integration = (
        GoogleIntegration.unscoped.only("id", "status", "domain", "customer_id", "status_detail", "tenant_id")
        .filter(tenant=tenant)
        .first()
    )
    latest_run = RemovalRun.unscoped.select_related("tenant").filter(tenant=tenant).first()
    panel = RemovalPanel(integration=integration, latest_run=latest_run)
    if panel.removing and latest_run is not None:
        progress = removal_progress(latest_run.pk)
        if progress is not None:
            panel.progress = {**progress, "label": model_label(progress["model"])}
        panel.waits_for_broker = jobs.waits_for_broker(
            RUN_KIND, latest_run.pk, queued=latest_run.status == RemovalStatus.QUEUED
        )
    if with_preview and panel.can_remove:
        panel.deleted, panel.kept = removal_preview(tenant)
        panel.applied_policies = list(
            PolicyAssignment.unscoped.filter(tenant=tenant)
            .exclude(applied_values={})
            .select_related("org_unit", "blueprint", "app")
            .order_by("org_unit__path", "id")[:200]
        )
    return panel
