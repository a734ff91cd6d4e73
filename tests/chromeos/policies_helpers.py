"""Shared helpers of the policy tests: local OU rows mirroring the emulator's Google OUs, LDAP links, reads of
what Google holds."""

from __future__ import annotations

from typing import Any

from chromeos.models import GoogleIntegration, OrgUnit
from google_emulator.testing import EmulatorHandle
from tests.ldap.factories import LdapOrgUnitFactory

# The seeded domain has no LDAP counterpart for these: "local" Google OUs, not supported.
LOCAL_OUS = ("/Lille",)


def mirror_org_units(
    integration: GoogleIntegration, emulator: EmulatorHandle, local: tuple[str, ...] = LOCAL_OUS
) -> dict[str, OrgUnit]:
    """Local ``OrgUnit`` rows for every Google OU, as the sync stores them; all but ``local`` and the root
    linked to an LDAP OU of the same path (what makes an OU supported)."""
    rows = {}
    for unit in emulator.state.org_units:
        ou = OrgUnit.unscoped.create(
            tenant=integration.tenant,
            integration=integration,
            org_unit_id=unit.org_unit_id,
            path=unit.path,
            name=unit.name,
            parent_org_unit_id=unit.parent_id or "",
        )
        if unit.path != "/" and unit.path not in local:
            link_ldap(ou)
        rows[unit.path] = ou
    return rows


def link_ldap(ou: OrgUnit) -> None:
    ou.ldap_org_unit = LdapOrgUnitFactory(tenant=ou.tenant, path=ou.path, name=ou.name)
    ou.save(update_fields=["ldap_org_unit"])


def google_policies(emulator: EmulatorHandle, path: str) -> dict[str, Any]:
    """What Google holds set directly on an OU: ``{schema or (schema, app_id): value}``."""
    found: dict[Any, Any] = {}
    for policy in emulator.control("GET", "/policies")["policies"]:
        if policy["org_unit_path"] != path:
            continue
        app_id = policy["target_keys"].get("app_id")
        found[(policy["schema"], app_id) if app_id else policy["schema"]] = policy["value"]
    return found


def set_policy(emulator: EmulatorHandle, path: str, schema: str, value: dict[str, Any], **keys: str) -> None:
    """Set a policy at Google directly, as another admin would in the Admin console."""
    target: dict[str, Any] = {"targetResource": f"orgunits/{emulator.state.org_unit(path).org_unit_id}"}
    if keys:
        target["additionalTargetKeys"] = keys
    request = {
        "policyTargetKey": target,
        "policyValue": {"policySchema": schema, "value": value},
        "updateMask": ",".join(value),
    }
    orgunits = emulator.chromepolicy().customers().policies().orgunits()
    orgunits.batchModify(customer="customers/my_customer", body={"requests": [request]}).execute()


def resolve(emulator: EmulatorHandle, path: str, schema: str, **keys: str) -> dict[str, Any] | None:
    target: dict[str, Any] = {"targetResource": f"orgunits/{emulator.state.org_unit(path).org_unit_id}"}
    if keys:
        target["additionalTargetKeys"] = keys
    policies = emulator.chromepolicy().customers().policies()
    body = {"policySchemaFilter": schema, "policyTargetKey": target}
    found = (
        policies.resolve(customer="customers/my_customer", body=body).execute().get("resolvedPolicies", [])
    )
    return found[0] if found else None
