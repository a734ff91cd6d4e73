"""What every API method shares: the call context, handler registry, auth, scopes and faults.

Order of checks, as Google applies them: route (404) → credentials (401) → parameters (400) →
scopes (403 insufficientPermissions) → administrator (403 forbidden) → injected faults → the method.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from werkzeug import Request

from google_emulator import discovery, errors, fields
from google_emulator.faults import Fault, sleep_ms
from google_emulator.model import AccessToken
from google_emulator.state import EmulatorState


class RawJson(bytes):
    """A response body already encoded as JSON (the device listing fast path)."""


Result = dict[str, Any] | RawJson | None
Handler = Callable[["ApiCall"], Result]
HANDLERS: dict[str, Handler] = {}


def api_method(method_id: str) -> Callable[[Handler], Handler]:
    """Register the handler of a discovery method; the id must exist in the documents."""
    discovery.method(method_id)

    def register(handler: Handler) -> Handler:
        HANDLERS[method_id] = handler
        return handler

    return register


@dataclass
class ApiCall:
    state: EmulatorState
    spec: discovery.MethodSpec
    params: dict[str, Any]
    token: AccessToken
    body: Any = None
    # Control-API mutations a fault asked for, applied once the response is built.
    after_response: list[dict[str, Any]] = field(default_factory=list)

    def param(self, name: str, default: Any = None) -> Any:
        return self.params.get(name, default)

    def json_body(self) -> dict[str, Any]:
        if self.body is None:
            return {}
        if not isinstance(self.body, dict):
            raise errors.ApiError(400, "Invalid JSON payload received. Expected an object.", "parseError")
        return self.body

    def require_my_customer(self, customer_id: str) -> None:
        # Any other customer is somebody else's domain: Google answers as for a non-admin.
        if not self.state.is_my_customer(customer_id):
            raise errors.forbidden()

    def page_reached(self, page: int) -> None:
        """Apply the faults aimed at one page of a listing (an error at page K, a mutation after it)."""
        apply_faults(self.state.faults.take(self.spec.id, page, paged=True, params=self.params), self)


def apply_faults(faults: list[Fault], call: ApiCall | None) -> None:
    for fault in faults:
        sleep_ms(fault.delay_ms)
        if fault.mutation is not None and call is not None:
            call.after_response.append(fault.mutation)
        if fault.status is not None:
            error = errors.injected(fault.status, fault.reason, fault.message)
            if fault.retry_after is not None:
                error.headers["Retry-After"] = str(fault.retry_after)
            raise error


def bearer_token(request: Request) -> str | None:
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() in ("bearer", "oauth") and value.strip():
        return value.strip()
    return request.args.get("access_token") or request.args.get("oauth_token")


def authenticate(state: EmulatorState, request: Request) -> AccessToken:
    raw = bearer_token(request)
    if raw is None:
        raise errors.unauthenticated(missing=True)
    with state.lock:
        token = state.oauth.validate_access_token(raw)
    if token is None:
        raise errors.unauthenticated()
    return token


def check_scopes(spec: discovery.MethodSpec, token: AccessToken) -> None:
    if spec.scopes and not spec.scopes.intersection(token.scopes):
        raise errors.insufficient_scopes(spec.id)


def parse_body(spec: discovery.MethodSpec, request: Request) -> Any:
    raw = request.get_data()
    if not raw.strip():
        return None
    try:
        return json.loads(raw)
    except ValueError:
        raise errors.ApiError(400, "Invalid JSON payload received.", "parseError") from None


def shape_response(spec: discovery.MethodSpec, params: dict[str, Any], result: Result) -> Result:
    """Apply the ``fields`` selector, validated against the response schema."""
    selector = params.get("fields")
    if not selector or result is None:
        return result
    selection = fields.parse(selector)
    if spec.response_schema:
        schemas = discovery.load_document(spec.api)["schemas"]
        fields.validate(selection, {"$ref": spec.response_schema}, schemas, selector)
    value = json.loads(result) if isinstance(result, RawJson) else result
    return fields.apply(value, selection)
