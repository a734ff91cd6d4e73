"""What support sees of a tenant's ChromeOS integration and LDAP directory on its /support/ page."""

from __future__ import annotations

from typing import Any

from django.db.models import Count
from django.urls import reverse

from chromeos.models import (
    ChromeOSDevice,
    DeviceActionJob,
    GoogleIntegration,
    JobStatus,
    OrgUnit,
    PolicyAssignment,
    SyncRun,
)
from ldap_sync.models import LdapDirectory, LdapSyncRun
from ldap_sync.selectors import ldap_prerequisites
from mdm.models import Tenant


def _admin_list(model: str, tenant: Tenant, **query: str) -> str:
    url = reverse(f"admin:{model}_changelist") + f"?tenant__id__exact={tenant.pk}"
    return url + "".join(f"&{k}={v}" for k, v in query.items())


def tenant_cockpit(tenant: Tenant) -> dict[str, Any]:
    integration = GoogleIntegration.unscoped.filter(tenant=tenant).first()
    runs = SyncRun.unscoped.filter(tenant=tenant).order_by("-created_at", "-id")
    jobs = DeviceActionJob.unscoped.filter(tenant=tenant).select_related("requested_by")
    failed_jobs = jobs.filter(status__in=(JobStatus.FAILED, JobStatus.PARTIAL)).order_by("-created_at")
    assignments = dict(
        PolicyAssignment.unscoped.filter(tenant=tenant)
        .order_by()
        .values_list("state")
        .annotate(n=Count("id"))
        .values_list("state", "n")
    )
    from chromeos.models import AssignmentState

    directory = LdapDirectory.unscoped.filter(tenant=tenant).first()
    return {
        "integration": integration,
        "device_count": ChromeOSDevice.unscoped.filter(tenant=tenant, removed_at__isnull=True).count(),
        "org_unit_count": OrgUnit.unscoped.filter(tenant=tenant).count(),
        "runs": list(runs[:5]),
        "failed_runs": runs.filter(status="failed").count(),
        "failed_jobs": list(failed_jobs[:5]),
        "failed_jobs_count": failed_jobs.count(),
        "assignments": [
            {"state": state, "label": label, "count": assignments.get(state, 0)}
            for state, label in AssignmentState.choices
            if assignments.get(state)
        ],
        "assignment_count": sum(assignments.values()),
        "directory": directory,
        "ldap": ldap_prerequisites(tenant),
        "ldap_runs": list(LdapSyncRun.unscoped.filter(tenant=tenant).order_by("-created_at")[:3]),
        "links": {
            "devices": _admin_list("chromeos_chromeosdevice", tenant),
            "jobs": _admin_list("chromeos_deviceactionjob", tenant),
            "failed_jobs": _admin_list("chromeos_deviceactionjob", tenant, status__exact="failed"),
            "commands": _admin_list("chromeos_devicecommand", tenant),
            "runs": _admin_list("chromeos_syncrun", tenant),
            "assignments": _admin_list("chromeos_policyassignment", tenant),
            "ldap_runs": _admin_list("ldap_sync_ldapsyncrun", tenant),
            "audit": _admin_list("mdm_auditevent", tenant),
        },
    }
