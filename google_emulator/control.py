"""The control API under ``/_emulator/``: JSON in, JSON out, no auth. For tests, demos and benchmarks.

See README.md for the reference. Every endpoint here is a thin wrapper over the state or
``mutations``; nothing Google serves lives under this prefix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import fields as dataclass_fields
from typing import Any

from google_emulator import mutations
from google_emulator.directory import command_resource
from google_emulator.faults import Fault
from google_emulator.state import EmulatorState

PREFIX = "/_emulator"
ControlHandler = Callable[[EmulatorState, dict[str, Any]], Any]
ROUTES: dict[tuple[str, str], ControlHandler] = {}


class ControlError(Exception):
    """A bad control request: answered 400 with ``{"error": message}``."""


def route(http_method: str, path: str) -> Callable[[ControlHandler], ControlHandler]:
    def register(handler: ControlHandler) -> ControlHandler:
        ROUTES[(http_method, PREFIX + path)] = handler
        return handler

    return register


@route("GET", "/health")
def health(state: EmulatorState, body: dict[str, Any]) -> dict[str, Any]:
    return {"ok": True}


@route("GET", "/state")
def summary(state: EmulatorState, body: dict[str, Any]) -> dict[str, Any]:
    with state.lock:
        statuses: dict[str, int] = {}
        for record in state.devices.values():
            statuses[record.data["status"]] = statuses.get(record.data["status"], 0) + 1
        return {
            "customer": state.customer,
            "admin": {"email": state.admin_email, "is_admin": state.admin_is_admin},
            "clients": [c.client_id for c in state.oauth.clients.values()],
            "devices": len(state.devices),
            "device_statuses": statuses,
            "org_units": sorted(u.path for u in state.org_units),
            "users": len(state.users),
            "authorizations": [
                {"client_id": a.client_id, "user": a.user, "scopes": a.scopes}
                for a in state.oauth.authorizations.values()
            ],
            "free_licenses": state.free_licenses,
            "clock_offset": state.clock.offset,
            "customers": [customer_summary(c) for c in (state.primary or state).customers],
        }


def customer_summary(state: EmulatorState) -> dict[str, Any]:
    return {
        "id": state.customer["id"],
        "domain": state.customer["customerDomain"],
        "admin": state.admin_email,
        "devices": len(state.devices),
        "org_units": len(state.org_units),
    }


# -- customers ---------------------------------------------------------------------------------
@route("GET", "/customers")
def list_customers(state: EmulatorState, body: dict[str, Any]) -> dict[str, Any]:
    with state.lock:
        return {"customers": [customer_summary(c) for c in (state.primary or state).customers]}


@route("POST", "/customers")
def add_customer(state: EmulatorState, body: dict[str, Any]) -> dict[str, Any]:
    """``{"domain", "devices"?, "org_units"?, "seed"?, "org_unit_paths"?, "admin_email"?}``: another customer."""
    try:
        return customer_summary(state.add_customer(**body))
    except (TypeError, ValueError) as error:
        raise ControlError(str(error)) from None


# -- latency and limits ------------------------------------------------------------------------
@route("GET", "/limits")
def get_limits(state: EmulatorState, body: dict[str, Any]) -> dict[str, Any]:
    return state.limits.describe()


@route("POST", "/limits")
def set_limits(state: EmulatorState, body: dict[str, Any]) -> dict[str, Any]:
    """``{"user_rate"?, "customer_concurrency"?, "project_rate"?, "window_seconds"?}``; null lifts a limit."""
    try:
        return state.limits.configure(**body)
    except (TypeError, ValueError) as error:
        raise ControlError(str(error)) from None


@route("POST", "/latency")
def set_latency(state: EmulatorState, body: dict[str, Any]) -> dict[str, Any]:
    """``{"method": "<method id>" or "*", "mean_ms", "spread_ms"?}``; 0 and 0 removes the method's latency."""
    try:
        return state.limits.set_latency(body.get("method", "*"), body["mean_ms"], body.get("spread_ms", 0))
    except (TypeError, ValueError, KeyError) as error:
        raise ControlError(f"bad latency: {error}") from None


@route("POST", "/reset")
def reset(state: EmulatorState, body: dict[str, Any]) -> dict[str, Any]:
    """Fresh state: regenerate the domain, forget grants, tokens, faults, commands, policies, time travel."""
    try:
        state.reset(**body)
    except (TypeError, ValueError) as error:
        raise ControlError(str(error)) from None
    return summary(state, {})


@route("POST", "/seed")
def seed(state: EmulatorState, body: dict[str, Any]) -> dict[str, Any]:
    """Regenerate the domain only: OAuth grants survive, so a demo keeps its authorization."""
    try:
        state.seed(**body)
    except (TypeError, ValueError) as error:
        raise ControlError(str(error)) from None
    return summary(state, {})


# -- devices -----------------------------------------------------------------------------------
@route("GET", "/devices")
def list_devices(state: EmulatorState, body: dict[str, Any]) -> dict[str, Any]:
    with state.lock:
        return {"devices": [r.data for r in state.devices.values()]}


@route("POST", "/devices")
def add_devices(state: EmulatorState, body: dict[str, Any]) -> dict[str, Any]:
    return {"device_ids": mutations.add_devices(state, **body)}


@route("POST", "/devices/change")
def change_devices(state: EmulatorState, body: dict[str, Any]) -> dict[str, Any]:
    return {"device_ids": mutations.change_devices(state, **body)}


@route("POST", "/devices/delete")
def delete_devices(state: EmulatorState, body: dict[str, Any]) -> dict[str, Any]:
    return {"device_ids": mutations.delete_devices(state, **body)}


@route("POST", "/devices/move")
def move_devices(state: EmulatorState, body: dict[str, Any]) -> dict[str, Any]:
    return {"device_ids": mutations.move_devices(state, **body)}


@route("POST", "/devices/update")
def update_device(state: EmulatorState, body: dict[str, Any]) -> dict[str, Any]:
    """``{"device_id": ..., "changes": {field: value or null}}``: any raw field, null removes it."""
    if body.get("device_id") not in state.devices:
        raise ControlError("unknown device_id")
    return {"device": mutations.update_devices(state, body["device_id"], body.get("changes", {}))}


@route("POST", "/licenses")
def licenses(state: EmulatorState, body: dict[str, Any]) -> dict[str, Any]:
    """``{"available": N}`` free licences for re-enabling devices; ``null`` is unlimited."""
    with state.lock:
        state.free_licenses = body.get("available")
    return {"available": state.free_licenses}


# -- org units ---------------------------------------------------------------------------------
@route("GET", "/org-units")
def list_org_units(state: EmulatorState, body: dict[str, Any]) -> dict[str, Any]:
    with state.lock:
        return {"org_units": [u.resource() for u in state.org_units]}


@route("POST", "/org-units")
def add_org_units(state: EmulatorState, body: dict[str, Any]) -> dict[str, Any]:
    return {"created": mutations.add_org_units(state, body.get("paths", []))}


@route("POST", "/org-units/delete")
def delete_org_units(state: EmulatorState, body: dict[str, Any]) -> dict[str, Any]:
    return {"deleted": mutations.delete_org_units(state, body.get("paths", []))}


@route("PUT", "/org-units")
def replace_org_units(state: EmulatorState, body: dict[str, Any]) -> dict[str, Any]:
    return {"org_units": mutations.replace_org_units(state, body.get("paths", []))}


# -- OAuth -------------------------------------------------------------------------------------
@route("POST", "/oauth/clients")
def register_client(state: EmulatorState, body: dict[str, Any]) -> dict[str, Any]:
    with state.lock:
        state.oauth.register_client(body["client_id"], body["client_secret"], body.get("redirect_uris"))
    return {"client_id": body["client_id"]}


@route("POST", "/oauth/grant")
def grant(state: EmulatorState, body: dict[str, Any]) -> dict[str, Any]:
    """Skip the consent screen: ``{"scopes": [...], "client_id"?, "user"?}`` → a token response with a refresh token."""
    with state.lock:
        client_id = body.get("client_id", state.config.client_id)
        if client_id not in state.oauth.clients:
            raise ControlError("unknown client_id")
        scopes = body.get("scopes") or []
        if not scopes:
            raise ControlError("scopes are required")
        state.changed()
        return state.oauth.grant_directly(client_id, body.get("user", state.admin_email), scopes)


@route("POST", "/oauth/revoke")
def revoke_grants(state: EmulatorState, body: dict[str, Any]) -> dict[str, Any]:
    """As if the admin removed the app's access: every token of the matching grants dies."""
    with state.lock:
        return {"revoked": state.oauth.revoke_grants(body.get("client_id"), body.get("user"))}


@route("POST", "/oauth/expire-access-tokens")
def expire_access_tokens(state: EmulatorState, body: dict[str, Any]) -> dict[str, Any]:
    with state.lock:
        return {"expired": state.oauth.expire_access_tokens()}


@route("POST", "/oauth/granted-scopes")
def granted_scopes(state: EmulatorState, body: dict[str, Any]) -> dict[str, Any]:
    """``{"scopes": [...]}``: later consents grant only these (of those asked); ``null`` grants all."""
    with state.lock:
        state.oauth.granted_scopes_limit = body.get("scopes")
    return {"scopes": state.oauth.granted_scopes_limit}


@route("POST", "/oauth/withhold-refresh-token")
def withhold_refresh_token(state: EmulatorState, body: dict[str, Any]) -> dict[str, Any]:
    """The next ``count`` (default 1) code exchanges return no refresh token."""
    with state.lock:
        state.oauth.withhold_refresh_tokens = int(body.get("count", 1))
    return {"count": state.oauth.withhold_refresh_tokens}


@route("POST", "/oauth/rotate-refresh-token")
def rotate_refresh_token(state: EmulatorState, body: dict[str, Any]) -> dict[str, Any]:
    """The next ``count`` (default 1) refreshes return a new refresh token; the one used stops working."""
    with state.lock:
        state.oauth.rotate_refresh_tokens = int(body.get("count", 1))
    return {"count": state.oauth.rotate_refresh_tokens}


@route("POST", "/admin")
def set_admin(state: EmulatorState, body: dict[str, Any]) -> dict[str, Any]:
    """``{"email": ..., "is_admin": false}``: who consents, and whether Directory calls are allowed."""
    with state.lock:
        state.admin_email = body.get("email", state.admin_email)
        state.admin_is_admin = bool(body.get("is_admin", state.admin_is_admin))
        return {"email": state.admin_email, "is_admin": state.admin_is_admin}


# -- faults, logs, time ------------------------------------------------------------------------
FAULT_FIELDS = {f.name for f in dataclass_fields(Fault)} - {"id"}


@route("POST", "/faults")
def add_fault(state: EmulatorState, body: dict[str, Any]) -> dict[str, Any]:
    unknown = set(body) - FAULT_FIELDS
    if unknown:
        raise ControlError(f"unknown fault fields {sorted(unknown)}; known: {sorted(FAULT_FIELDS)}")
    if body.get("params") is not None and not isinstance(body["params"], dict):
        raise ControlError("fault params must be an object of query parameters")
    if body.get("mutation") is not None and body["mutation"].get("op") not in mutations.OPERATIONS:
        raise ControlError(f"unknown mutation op; known: {sorted(mutations.OPERATIONS)}")
    fault = state.faults.add(Fault(**body))
    return {"id": fault.id}


@route("GET", "/faults")
def list_faults(state: EmulatorState, body: dict[str, Any]) -> dict[str, Any]:
    return {"faults": state.faults.pending()}


@route("DELETE", "/faults")
def clear_faults(state: EmulatorState, body: dict[str, Any]) -> dict[str, Any]:
    state.faults.clear()
    return {"faults": []}


@route("POST", "/page-tokens/expire")
def expire_page_tokens(state: EmulatorState, body: dict[str, Any]) -> dict[str, Any]:
    """Every outstanding page token now answers 400 (as a token Google no longer honours)."""
    state.paginator.expire_all()
    return {"expired": True}


@route("GET", "/requests")
def requests_log(state: EmulatorState, body: dict[str, Any]) -> dict[str, Any]:
    return {"requests": state.log.entries(body.get("method"))}


@route("DELETE", "/requests")
def clear_requests(state: EmulatorState, body: dict[str, Any]) -> dict[str, Any]:
    state.log.clear()
    return {"requests": []}


@route("POST", "/clock/advance")
def advance_clock(state: EmulatorState, body: dict[str, Any]) -> dict[str, Any]:
    """Move the emulator's clock forward: codes and tokens expire, commands progress."""
    state.clock.advance(float(body.get("seconds", 0)))
    return {"offset": state.clock.offset}


# -- commands ----------------------------------------------------------------------------------
@route("POST", "/commands/behaviour")
def command_behaviour(state: EmulatorState, body: dict[str, Any]) -> dict[str, Any]:
    """For commands issued from now on: ``step_seconds`` per state, ``outcome`` SUCCESS/FAILURE/IGNORED/EXPIRED."""
    with state.lock:
        if "step_seconds" in body:
            state.command_step_seconds = float(body["step_seconds"])
        if "outcome" in body:
            if body["outcome"] not in ("SUCCESS", "FAILURE", "IGNORED", "EXPIRED"):
                raise ControlError("outcome must be SUCCESS, FAILURE, IGNORED or EXPIRED")
            state.command_outcome = body["outcome"]
        return {"step_seconds": state.command_step_seconds, "outcome": state.command_outcome}


@route("GET", "/commands")
def list_commands(state: EmulatorState, body: dict[str, Any]) -> dict[str, Any]:
    with state.lock:
        now = state.clock.now()
        return {
            "commands": [
                {"deviceId": c.device_id, **command_resource(c, now)} for c in state.commands.values()
            ]
        }


@route("POST", "/commands/set")
def set_command(state: EmulatorState, body: dict[str, Any]) -> dict[str, Any]:
    """``{"command_id": ..., "state": "EXPIRED" | "CANCELLED" | ... | null}``: pin a command's state."""
    with state.lock:
        command = state.commands.get(str(body.get("command_id")))
        if command is None:
            raise ControlError("unknown command_id")
        command.forced_state = body.get("state")
        if "outcome" in body:
            command.outcome = body["outcome"]
        return command_resource(command, state.clock.now())


@route("POST", "/commands/complete")
def complete_commands(state: EmulatorState, body: dict[str, Any]) -> dict[str, Any]:
    """Jump every command to its final state (sets its issue time far enough back)."""
    with state.lock:
        for command in state.commands.values():
            command.issue_time -= command.step_seconds * 4
        return list_commands(state, {})


# -- Chrome Policy -----------------------------------------------------------------------------
@route("GET", "/policies")
def list_policies(state: EmulatorState, body: dict[str, Any]) -> dict[str, Any]:
    with state.lock:
        return {
            "policies": [
                {
                    "org_unit_id": ou,
                    "org_unit_path": state.org_units.by_id[ou].path if ou in state.org_units.by_id else None,
                    "schema": schema,
                    "target_keys": dict(keys),
                    "value": value,
                }
                for (ou, schema, keys), value in state.policies.items()
            ]
        }


@route("POST", "/save")
def save(state: EmulatorState, body: dict[str, Any]) -> dict[str, Any]:
    if not body.get("path"):
        raise ControlError("path is required")
    state.save_to(body["path"])
    return {"saved": body["path"]}
