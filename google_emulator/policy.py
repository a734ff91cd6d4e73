"""Chrome Policy API v1: set, inherit and resolve policies on org units; read policy schemas.

A policy is stored where it is set, keyed by (org unit, schema, additional target keys);
resolving walks from the org unit up to the root and takes the nearest setting. A batch is
validated whole before anything is written, as Google's is (all or nothing).
"""

from __future__ import annotations

import json
from typing import Any

from google_emulator import errors
from google_emulator.api import ApiCall, api_method
from google_emulator.model import OrgUnit
from google_emulator.policy_schemas import APP_ID_PREFIXES, SCHEMAS, PolicySchema, matching
from google_emulator.state import EmulatorState

MAX_RESOLVE_PAGE_SIZE = 1000
MAX_SCHEMA_PAGE_SIZE = 1000
PolicyKey = tuple[str, str, tuple[tuple[str, str], ...]]


def invalid_argument(message: str) -> errors.ApiError:
    return errors.ApiError(400, message, "badRequest")


def _customer(call: ApiCall, resource: str) -> str:
    """The customer id from ``customers/<id>``; anybody else's customer is a 403, as Google answers."""
    customer = resource.removeprefix("customers/")
    if not call.state.is_my_customer(customer):
        raise errors.forbidden("The caller does not have permission")
    return call.state.customer["id"]


def _org_unit(state: EmulatorState, target_key: dict[str, Any] | None) -> OrgUnit:
    resource = (target_key or {}).get("targetResource", "")
    if not resource.startswith("orgunits/"):
        raise invalid_argument(f"Invalid target resource '{resource}': expected orgunits/<org unit id>.")
    unit = state.org_units.by_id.get(resource.removeprefix("orgunits/").removeprefix("id:"))
    if unit is None:
        raise invalid_argument(f"Org unit '{resource}' not found.")
    return unit


def _target_keys(
    schema: PolicySchema, target_key: dict[str, Any] | None, required: bool = True
) -> tuple[tuple[str, str], ...]:
    given = dict((target_key or {}).get("additionalTargetKeys") or {})
    unexpected = set(given) - set(schema.target_keys)
    if unexpected:
        raise invalid_argument(
            f"Additional target keys {sorted(unexpected)} are not valid for {schema.name}."
        )
    missing = set(schema.target_keys) - set(given)
    if missing and required:
        raise invalid_argument(f"Missing additional target key(s) {sorted(missing)} for {schema.name}.")
    app_id = given.get("app_id")
    if app_id is not None and not app_id.startswith(APP_ID_PREFIXES):
        raise invalid_argument(f"Invalid app_id '{app_id}': expected chrome:, android: or web: prefix.")
    return tuple(sorted(given.items()))


def _schema(name: str | None) -> PolicySchema:
    schema = SCHEMAS.get(name or "")
    if schema is None:
        raise invalid_argument(f"Policy schema '{name}' does not exist or is not supported.")
    return schema


def _mask_paths(mask: Any) -> list[str]:
    # FieldMask is a comma-separated string in JSON; accept the proto form {"paths": [...]} too.
    if isinstance(mask, dict):
        return list(mask.get("paths") or [])
    return [p.strip() for p in (mask or "").split(",") if p.strip()]


def _validated_modification(
    state: EmulatorState, request: dict[str, Any]
) -> tuple[PolicyKey, dict[str, Any], list[str]]:
    policy_value = request.get("policyValue") or {}
    schema = _schema(policy_value.get("policySchema"))
    unit = _org_unit(state, request.get("policyTargetKey"))
    keys = _target_keys(schema, request.get("policyTargetKey"))
    value = policy_value.get("value") or {}
    if not isinstance(value, dict):
        raise invalid_argument("policyValue.value must be an object.")
    paths = _mask_paths(request.get("updateMask"))
    if not paths:
        raise invalid_argument("updateMask is required.")
    for path in paths:
        if schema.field(path) is None:
            raise invalid_argument(f"Invalid update mask path '{path}' for {schema.name}.")
    for name, field_value in value.items():
        policy_field = schema.field(name)
        if policy_field is None:
            raise invalid_argument(f'Invalid JSON payload received. Unknown name "{name}" in {schema.name}.')
        if not policy_field.accepts(field_value):
            raise invalid_argument(
                f"Invalid value for field '{name}' of {schema.name}: {json.dumps(field_value)}."
            )
    return (unit.org_unit_id, schema.name, keys), value, paths


def _check_one_namespace(names: list[str]) -> None:
    if len({name.rsplit(".", 1)[0] for name in names}) > 1:
        raise invalid_argument("All policies in a batch request must belong to the same namespace.")


@api_method("chromepolicy.customers.policies.orgunits.batchModify")
def batch_modify(call: ApiCall) -> dict[str, Any]:
    _customer(call, call.param("customer"))
    requests = call.json_body().get("requests") or []
    if not requests:
        raise invalid_argument("requests must not be empty.")
    state = call.state
    with state.lock:
        modifications = [_validated_modification(state, r) for r in requests]
        keys = [key for key, _, _ in modifications]
        if len(set(keys)) != len(keys):
            raise invalid_argument("Duplicate policy schema and target in the batch request.")
        _check_one_namespace([key[1] for key in keys])
        for key, value, paths in modifications:
            local = dict(state.policies.get(key, {}))
            for path in paths:
                if path in value:
                    local[path] = value[path]
                else:
                    local.pop(path, None)
            state.policies[key] = local
        state.changed()
    return {}


@api_method("chromepolicy.customers.policies.orgunits.batchInherit")
def batch_inherit(call: ApiCall) -> dict[str, Any]:
    _customer(call, call.param("customer"))
    requests = call.json_body().get("requests") or []
    if not requests:
        raise invalid_argument("requests must not be empty.")
    state = call.state
    with state.lock:
        removals = []
        for request in requests:
            pattern = request.get("policySchema") or ""
            schemas = matching(pattern)
            if not schemas:
                raise invalid_argument(f"Policy schema '{pattern}' does not exist or is not supported.")
            unit = _org_unit(state, request.get("policyTargetKey"))
            if unit.parent_id is None:
                raise invalid_argument("The root org unit cannot inherit policies.")
            for schema in schemas:
                keys = _target_keys(
                    schema, request.get("policyTargetKey"), required=not pattern.endswith(".*")
                )
                removals.append((unit.org_unit_id, schema.name, keys))
        _check_one_namespace([schema for _, schema, _ in removals])
        for ou_id, schema_name, keys in removals:
            for key in list(state.policies):
                # With a wildcard and no target keys, every app's setting at this OU is removed.
                if key[0] == ou_id and key[1] == schema_name and (not keys or key[2] == keys):
                    del state.policies[key]
        state.changed()
    return {}


def _target_key_body(org_unit_id: str, keys: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    body: dict[str, Any] = {"targetResource": f"orgunits/{org_unit_id}"}
    if keys:
        body["additionalTargetKeys"] = dict(keys)
    return body


def _resolve_one(
    state: EmulatorState, unit: OrgUnit, schema: str, keys: tuple[tuple[str, str], ...]
) -> dict[str, Any] | None:
    for ancestor in state.org_units.ancestors(unit):
        value = state.policies.get((ancestor.org_unit_id, schema, keys))
        if value is not None:
            return {
                "targetKey": _target_key_body(unit.org_unit_id, keys),
                "value": {"policySchema": schema, "value": value},
                "sourceKey": _target_key_body(ancestor.org_unit_id, keys),
            }
    return None


@api_method("chromepolicy.customers.policies.resolve")
def resolve(call: ApiCall) -> dict[str, Any]:
    _customer(call, call.param("customer"))
    body = call.json_body()
    pattern = body.get("policySchemaFilter")
    if not pattern:
        raise invalid_argument("policySchemaFilter is required.")
    page_size = body.get("pageSize") or MAX_RESOLVE_PAGE_SIZE
    if not isinstance(page_size, int) or not 0 < page_size <= MAX_RESOLVE_PAGE_SIZE:
        raise invalid_argument(f"pageSize must be between 1 and {MAX_RESOLVE_PAGE_SIZE}.")
    state = call.state
    with state.lock:
        unit = _org_unit(state, body.get("policyTargetKey"))
        requested_keys = dict((body.get("policyTargetKey") or {}).get("additionalTargetKeys") or {})
        schemas = matching(pattern)
        ancestry = {u.org_unit_id for u in state.org_units.ancestors(unit)}

    def candidate_keys() -> list[str]:
        with state.lock:
            found = set()
            for ou_id, schema_name, keys in state.policies:
                wanted_schema = any(s.name == schema_name for s in schemas)
                wanted_keys = all(dict(keys).get(k) == v for k, v in requested_keys.items())
                if ou_id in ancestry and wanted_schema and wanted_keys:
                    found.add(json.dumps([schema_name, keys]))
            return sorted(found)

    query_key = json.dumps([pattern, unit.org_unit_id, requested_keys])
    page = state.paginator.page(body.get("pageToken"), page_size, query_key, candidate_keys)
    call.page_reached(page.number)
    resolved = []
    with state.lock:
        for key in page.keys:
            schema_name, keys = json.loads(key)
            entry = _resolve_one(state, unit, schema_name, tuple(tuple(pair) for pair in keys))
            if entry is not None:
                resolved.append(entry)
    response: dict[str, Any] = {}
    if resolved:
        response["resolvedPolicies"] = resolved
    if page.next_token:
        response["nextPageToken"] = page.next_token
    return response


@api_method("chromepolicy.customers.policySchemas.list")
def schemas_list(call: ApiCall) -> dict[str, Any]:
    customer_id = _customer(call, call.param("parent"))
    page_size = call.param("pageSize") or MAX_SCHEMA_PAGE_SIZE
    if not 0 < page_size <= MAX_SCHEMA_PAGE_SIZE:
        raise invalid_argument(f"pageSize must be between 1 and {MAX_SCHEMA_PAGE_SIZE}.")
    text = (call.param("filter") or "").strip()
    key, _, wanted = text.partition("=")
    if not wanted:
        key, wanted = "name", text
    key, wanted = key.strip(), wanted.strip().strip('"')

    def names() -> list[str]:
        found = []
        for schema in SCHEMAS.values():
            value = schema.category if key == "categoryTitle" else schema.name
            if not wanted or (
                value.startswith(wanted.rstrip("*")) if key != "categoryTitle" else value == wanted
            ):
                found.append(schema.name)
        return sorted(found)

    page = call.state.paginator.page(call.param("pageToken"), page_size, f"schemas:{text}", names)
    response: dict[str, Any] = {"policySchemas": [SCHEMAS[n].resource(customer_id) for n in page.keys]}
    if page.next_token:
        response["nextPageToken"] = page.next_token
    return response


@api_method("chromepolicy.customers.policySchemas.get")
def schemas_get(call: ApiCall) -> dict[str, Any]:
    customer, _, schema_name = call.param("name").partition("/policySchemas/")
    customer_id = _customer(call, customer)
    schema = SCHEMAS.get(schema_name)
    if schema is None:
        raise errors.ApiError(404, "Requested entity was not found.", "notFound")
    return schema.resource(customer_id)
