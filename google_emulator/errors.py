"""Google's error shapes, as the real APIs send them.

Two families exist and the client libraries parse each differently:

* API errors (Directory, Chrome Policy) use the JSON envelope
  ``{"error": {"code", "message", "errors": [{"message", "domain", "reason", ...}], "status"}}``;
  google-api-python-client reads ``reason`` from ``errors[0]`` to decide whether to retry.
* OAuth errors (token and revoke endpoints) are flat ``{"error", "error_description"}``;
  google-auth and oauthlib read ``error`` to tell ``invalid_grant`` from transient failures.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# google.rpc.Code names for the HTTP statuses Google maps them to.
STATUS_BY_HTTP_CODE = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ALREADY_EXISTS",
    412: "FAILED_PRECONDITION",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    501: "UNIMPLEMENTED",
    503: "UNAVAILABLE",
}

# Default reason and message per status, as Google words them for the Admin SDK.
DEFAULT_FAULTS: dict[int, tuple[str, str]] = {
    400: ("invalid", "Invalid Input"),
    401: ("authError", "Invalid Credentials"),
    403: ("forbidden", "Not Authorized to access this resource/api"),
    404: ("notFound", "Resource Not Found"),
    429: ("rateLimitExceeded", "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute'."),
    500: ("backendError", "Internal error encountered."),
    503: ("backendError", "The service is currently unavailable."),
}

# 403 reasons that are about quota rather than permissions: their message differs.
RATE_LIMIT_MESSAGES = {
    "userRateLimitExceeded": "Quota exceeded for quota metric 'Queries' and limit 'Queries per minute per user'.",
    "quotaExceeded": "Quota exceeded for quota metric 'Queries' and limit 'Queries per day'.",
    "rateLimitExceeded": DEFAULT_FAULTS[429][1],
}

UNAUTHENTICATED_MESSAGE = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other "
    "valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
)
MISSING_CREDENTIALS_MESSAGE = (
    "Request is missing required authentication credential. Expected OAuth 2 access token, login cookie or "
    "other valid authentication credential. See https://developers.google.com/identity/sign-in/web/devconsole-project."
)
INSUFFICIENT_SCOPES_MESSAGE = "Request had insufficient authentication scopes."


@dataclass
class ApiError(Exception):
    """An error answered in Google's JSON envelope."""

    code: int
    message: str
    reason: str = ""
    location: str | None = None
    location_type: str | None = None
    details: list[dict[str, Any]] = field(default_factory=list)
    headers: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__init__(self.message)
        if not self.reason:
            self.reason = DEFAULT_FAULTS.get(self.code, ("backendError", ""))[0]

    @property
    def status(self) -> str:
        return STATUS_BY_HTTP_CODE.get(self.code, "UNKNOWN")

    def body(self) -> dict[str, Any]:
        item: dict[str, Any] = {"message": self.message, "domain": "global", "reason": self.reason}
        if self.location:
            item["location"] = self.location
            item["locationType"] = self.location_type or "parameter"
        error: dict[str, Any] = {
            "code": self.code,
            "message": self.message,
            "errors": [item],
            "status": self.status,
        }
        if self.details:
            error["details"] = self.details
        return {"error": error}


def invalid(message: str, location: str | None = None) -> ApiError:
    return ApiError(
        400, message, "invalid", location=location, location_type="parameter" if location else None
    )


def bad_request(message: str = "Bad Request") -> ApiError:
    return ApiError(400, message, "badRequest")


def not_found(message: str = "Resource Not Found") -> ApiError:
    return ApiError(404, message, "notFound")


def forbidden(message: str = "Not Authorized to access this resource/api") -> ApiError:
    return ApiError(403, message, "forbidden")


def unauthenticated(missing: bool = False) -> ApiError:
    # Google says "required" when no credential was sent and "authError" when one was sent but is bad.
    if missing:
        return ApiError(401, MISSING_CREDENTIALS_MESSAGE, "required", "Authorization", "header")
    return ApiError(401, UNAUTHENTICATED_MESSAGE, "authError", "Authorization", "header")


def insufficient_scopes(method_id: str) -> ApiError:
    return ApiError(
        403,
        INSUFFICIENT_SCOPES_MESSAGE,
        "insufficientPermissions",
        details=[
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
                "domain": "googleapis.com",
                "metadata": {"method": method_id},
            }
        ],
    )


def injected(code: int, reason: str | None = None, message: str | None = None) -> ApiError:
    """The error a fault injection asks for, worded as Google would word it."""
    default_reason, default_message = DEFAULT_FAULTS.get(code, ("backendError", "Backend Error"))
    reason = reason or default_reason
    message = message or RATE_LIMIT_MESSAGES.get(reason, default_message)
    return ApiError(code, message, reason)


@dataclass
class OAuthError(Exception):
    """An error from the token or revoke endpoint: flat ``{"error", "error_description"}``."""

    error: str
    description: str
    code: int = 400

    def __post_init__(self) -> None:
        super().__init__(f"{self.error}: {self.description}")

    def body(self) -> dict[str, str]:
        return {"error": self.error, "error_description": self.description}
