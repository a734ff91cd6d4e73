"""The one exception taxonomy for Google calls. ``client.py`` raises these and only these.

| Google answer                                                        | raised as               | caller's policy                                                  |
|----------------------------------------------------------------------|-------------------------|------------------------------------------------------------------|
| 429; 500, 502, 503, 504; timeout, connection error                   | ``TransientGoogleError``  | the client retries with truncated exponential backoff and jitter (honouring Retry-After); when attempts run out, the run/action fails and a later one retries |
| timeout or dropped connection on a call that must not be done twice (``execute(..., resend_unanswered=False)``: a remote command) | ``GoogleOutcomeUnknown`` | never re-sent: Google may have done it; the caller reports "résultat inconnu" |
| 403 userRateLimitExceeded / rateLimitExceeded / quotaExceeded        | ``TransientGoogleError``  | the same backoff: Google's rate limits, and its limit of concurrent requests per Workspace account (``quotaExceeded`` is that one, not a daily quota) |
| 403 dailyLimitExceeded (the project's daily quota)                   | ``QuotaExhausted``      | stop now, no retry within the run; the next hourly run tries again |
| ``invalid_grant`` on token refresh; 401 after a refresh              | ``AuthRevoked``         | stop; the CALLER (a service) marks the integration "réautorisation requise" if the failing token is still the stored one (``token_fingerprint``); hourly sync paused; nothing deleted |
| 403 insufficientPermissions; 403 forbidden (not an admin)            | ``GooglePermissionDenied`` | stop; tell the admin which permission is missing               |
| 404 notFound                                                         | ``GoogleNotFound``      | the object is gone at Google: skip it / report it per object      |
| 501 and every other 5xx not listed above (a permanent server answer) | ``GoogleUnsupported``   | never retried: the run/action fails at once with Google's reason |
| 400 invalid / INVALID_ARGUMENT, other 4xx                            | ``GoogleBadRequest``    | skip the object, log Google's reason; never retried               |
"""

from __future__ import annotations


class GoogleError(Exception):
    """Base of every Google failure. ``reason`` is Google's machine-readable reason, when it gave one."""

    def __init__(self, message: str, *, status: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.reason = reason


class TransientGoogleError(GoogleError):
    def __init__(
        self, message: str, *, status: int | None = None, reason: str = "", retry_after: float | None = None
    ):
        super().__init__(message, status=status, reason=reason)
        self.retry_after = retry_after


class GoogleOutcomeUnknown(GoogleError):
    """The request left and no answer came back (a timeout, a dropped connection): Google may have done it.
    Raised instead of retrying for a call that must not be done twice (a remote command: two reboots)."""


class QuotaExhausted(GoogleError):
    pass


class AuthRevoked(GoogleError):
    """The grant was refused. ``token_fingerprint`` identifies the refresh token that failed (a digest, never
    the token), so the caller can tell whether it is still the stored one: a grant refreshed by a
    re-authorization meanwhile must not be marked "réautorisation requise" by a run that held the old one."""

    token_fingerprint: str = ""


class GooglePermissionDenied(GoogleError):
    pass


class GoogleNotFound(GoogleError):
    pass


class GoogleBadRequest(GoogleError):
    pass


class GoogleUnsupported(GoogleError):
    """A permanent server-side refusal (501 Not Implemented, 505, ...): asking again changes nothing."""
