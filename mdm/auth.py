"""Sign-in protection: throttling (django-axes), the local-account backend, and the audit of every attempt.

How a sign-in is checked, in order (``AUTHENTICATION_BACKENDS``):

1. :class:`ThrottleBackend` (django-axes) refuses the attempt outright while the account or the client address is
   locked out. It runs first, so a throttled attempt never reaches the other backends: no password hash is
   computed and, above all, **no bind is sent to the tenant's directory** (an outsider cannot lock out the
   customer's Active Directory accounts through the console).
2. :class:`LocalAccountBackend`: local accounts (tenant users with a password, support staff). Only when the
   "Organisation" field is empty.
3. ``ldap_sync.backends.TenantLDAPBackend``: directory accounts, when the "Organisation" field names a tenant.

Throttling, per account and per client address (both counted, the stricter wins):

===========================  ==================================================================================
account key                  ``<organisation>:<user name>`` for directory accounts, the user name otherwise,
                             case-folded (``Camille.Durand`` and ``camille.durand`` share one counter)
lockout                      after ``AXES_FAILURE_LIMIT`` failures of one account, or ``MDM_SIGNIN_ADDRESS_LIMIT``
                             failures from one address (a school behind one NAT address gets a larger allowance)
cool-off (growing delay)     ``MDM_SIGNIN_COOLOFF_BASE`` doubled for every further ``AXES_FAILURE_LIMIT``
                             failures in the last 24 hours, at most ``MDM_SIGNIN_COOLOFF_MAX``; once the
                             threshold is reached every further failure locks again
attempts while locked        refused without checking the password, not counted (they would only extend the
                             lockout an attacker can impose on a legitimate user), audited as blocked
support                      sees attempts and lockouts in /support/ (Axes › Access attempts); deleting the
                             rows clears the lockout
===========================  ==================================================================================

A successful sign-in clears its own account's counter, never the address's: one valid account must not let a
sprayer reset the counter of the address it guesses other accounts from.

A directory account has several names (``uid`` and ``mail``, AD's sAMAccountName, userPrincipalName and
``DOMAIN\\user``): each typed name has its own counter, so the directory entry has one more. Once the service
account has resolved the entry, and before the user's bind, ``ldap_sync.backends`` calls
:func:`directory_account_allowed`: the entry's counter (key :func:`directory_account_key`, from its DN) is checked
like the others, a failure counts against it too, a success clears it. However the aliases are alternated, at
most ``AXES_FAILURE_LIMIT`` wrong passwords reach the directory per cool-off.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time
from datetime import timedelta
from typing import Any

from axes.attempts import get_cool_off_threshold
from axes.backends import AxesStandaloneBackend
from axes.handlers.database import AxesDatabaseHandler
from axes.helpers import get_cool_off
from axes.models import AccessAttempt, AccessFailureLog
from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.db import transaction
from django.db.models import F, Sum
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils import timezone

logger = logging.getLogger(__name__)

FAILURE_WINDOW = timedelta(hours=24)
# Set at sign-in, read by mdm.middleware.SessionTimeoutMiddleware (seconds since the epoch).
SESSION_STARTED_KEY = "mdm_signed_in_at"
SESSION_SEEN_KEY = "mdm_seen_at"
# Set on the request by directory_account_allowed: the directory entry the attempt resolved to.
DIRECTORY_ACCOUNT_ATTR = "mdm_directory_account"


def throttle_key(request: HttpRequest | None, credentials: dict[str, Any] | None = None) -> str | None:
    """The account a sign-in attempt is counted against (``AXES_USERNAME_CALLABLE``)."""
    source: Any = credentials if credentials else (request.POST if request is not None else {})
    username = str(source.get("username") or "").strip()
    tenant = str(source.get("tenant") or "").strip()
    if not username:
        return None
    if tenant and "\\" in username:
        # EXAMPLE\jdoe is jdoe on Active Directory (ldap_sync.backends.login_name): one account, one counter.
        username = username.split("\\", 1)[1]
    key = f"{tenant}:{username}" if tenant else username
    return key.casefold()[:255]


def directory_account_key(organisation: str, dn: str) -> str:
    """The counter of one directory entry, whatever name it was typed as: ``dn`` is the one the directory's own
    search returned, normalised by the caller. A DN too long for axes' column is hashed."""
    key = f"{organisation}:dn:{dn}".casefold()
    if len(key) > 255:
        key = f"{organisation}:dn#{hashlib.sha256(key.encode()).hexdigest()}".casefold()
    return key


def _entry_failures(key: str, since: Any) -> int:
    attempts = AccessAttempt.objects.filter(username=key, attempt_time__gte=since)
    return int(attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0)


def directory_account_allowed(request: HttpRequest | None, organisation: str, dn: str) -> bool:
    """Called between the service account's search and the user's bind. False (and the attempt becomes a
    blocked one, answered by the lockout page) while the entry is locked out: the bind is not sent."""
    if request is None or not hasattr(request, "axes_attempt_time"):
        return True  # no web request (a shell, a test): nothing to throttle, as ThrottleBackend
    key = directory_account_key(organisation, dn)
    setattr(request, DIRECTORY_ACCOUNT_ATTR, key)
    if _entry_failures(key, get_cool_off_threshold(request)) >= settings.AXES_FAILURE_LIMIT:
        request.axes_locked_out = True  # type: ignore[attr-defined]
        return False
    return True


def client_address(request: HttpRequest) -> str | None:
    """The client's address (``AXES_CLIENT_IP_CALLABLE``): behind N trusted proxies, the Nth from the right of
    ``X-Forwarded-For``; the left-most entries are the client's to forge."""
    hops = settings.MDM_TRUSTED_PROXY_COUNT
    if hops > 0:
        forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
        forwarded = [part for part in forwarded if part]
        if len(forwarded) >= hops:
            return forwarded[-hops]
    return request.META.get("REMOTE_ADDR")


def _scaled_address_failures(count: int) -> int:
    # Axes compares one number with AXES_FAILURE_LIMIT: an address's failures are scaled onto that limit.
    return count * settings.AXES_FAILURE_LIMIT // settings.MDM_SIGNIN_ADDRESS_LIMIT


def recent_failures(key: str | None, address: str | None) -> int:
    """Failures of this account or address in the last 24 hours, on the account's scale."""
    since = timezone.now() - FAILURE_WINDOW
    recent = AccessFailureLog.objects.filter(attempt_time__gte=since)
    by_account = recent.filter(username=key).count() if key else 0
    by_address = recent.filter(ip_address=address).count() if address else 0
    return max(by_account, _scaled_address_failures(by_address))


def cool_off(request: HttpRequest | None = None) -> timedelta:
    """``AXES_COOLOFF_TIME``: the lockout grows with the failures of the last 24 hours."""
    base: timedelta = settings.MDM_SIGNIN_COOLOFF_BASE
    ceiling: timedelta = settings.MDM_SIGNIN_COOLOFF_MAX
    if request is None or request.method != "POST":
        return base
    failures = recent_failures(throttle_key(request), getattr(request, "axes_ip_address", None))
    entry = getattr(request, DIRECTORY_ACCOUNT_ATTR, None)
    if entry:
        failures = max(failures, _entry_failures(entry, timezone.now() - FAILURE_WINDOW))
    steps = max(0, failures // settings.AXES_FAILURE_LIMIT - 1)
    if steps >= 32:
        return ceiling
    return min(base * 2**steps, ceiling)


class ThrottleHandler(AxesDatabaseHandler):
    """Axes' database handler with the two adjustments the growing cool-off needs."""

    def get_failures(self, request: HttpRequest, credentials: dict[str, Any] | None = None) -> int:
        by_account, by_address = (
            attempts.aggregate(total=Sum("failures_since_start"))["total"] or 0
            for attempts in self.get_user_attempts(request, credentials)
        )
        entry = getattr(request, DIRECTORY_ACCOUNT_ATTR, None)
        by_entry = _entry_failures(entry, get_cool_off_threshold(request)) if entry else 0
        return max(by_account, _scaled_address_failures(by_address), by_entry)

    def user_login_failed(
        self, sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
    ) -> None:
        entry = getattr(request, DIRECTORY_ACCOUNT_ATTR, None)
        if request is not None and entry and not getattr(request, "axes_locked_out", False):
            # Counted before axes decides on a lockout, so the failure that reaches the entry's limit locks.
            self._count_entry_failure(request, entry)
        super().user_login_failed(sender, credentials, request, **kwargs)

    @staticmethod
    def _count_entry_failure(request: HttpRequest, key: str) -> None:
        with transaction.atomic():
            attempt, created = AccessAttempt.objects.select_for_update().get_or_create(
                username=key,
                ip_address=request.axes_ip_address,  # type: ignore[attr-defined]
                user_agent=request.axes_user_agent,  # type: ignore[attr-defined]
                defaults={
                    "get_data": "",
                    "post_data": "",
                    "http_accept": request.axes_http_accept,  # type: ignore[attr-defined]
                    "path_info": request.axes_path_info,  # type: ignore[attr-defined]
                    "failures_since_start": 1,
                    "attempt_time": request.axes_attempt_time,  # type: ignore[attr-defined]
                },
            )
            if not created:
                AccessAttempt.objects.filter(pk=attempt.pk).update(
                    failures_since_start=F("failures_since_start") + 1,
                    attempt_time=request.axes_attempt_time,  # type: ignore[attr-defined]
                )

    def clean_expired_user_attempts(
        self, request: HttpRequest | None = None, credentials: dict[str, Any] | None = None
    ) -> int:
        # Axes deletes every row older than *this request's* cool-off; with cool-offs that differ per account,
        # that would end a long lockout early. Rows live for the longest cool-off; counting uses each one's own.
        threshold = timezone.now() - max(settings.MDM_SIGNIN_COOLOFF_MAX, FAILURE_WINDOW)
        count, _ = AccessAttempt.objects.filter(attempt_time__lte=threshold).delete()
        return count

    def user_logged_in(self, sender: Any, request: HttpRequest, user: Any, **kwargs: Any) -> None:
        super().user_logged_in(sender, request, user, **kwargs)
        key = throttle_key(request) or user.get_username().casefold()
        keys = [key, getattr(request, DIRECTORY_ACCOUNT_ATTR, None)]
        AccessAttempt.objects.filter(username__in=[k for k in keys if k]).delete()


class ThrottleBackend(AxesStandaloneBackend):
    """Refuses attempts while locked out. Authentication outside a web request (a shell, a test) has no client
    to throttle, so it passes."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        **kwargs: Any,
    ) -> None:
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


class LocalAccountBackend(ModelBackend):
    """Local accounts sign in with the "Organisation" field empty. With it filled, the attempt is a directory
    sign-in: were a local password also tried, every made-up organisation would give a local account a fresh
    throttling counter."""

    def authenticate(
        self,
        request: HttpRequest | None,
        username: str | None = None,
        password: str | None = None,
        tenant: str | None = None,
        **kwargs: Any,
    ) -> Any:
        if tenant:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)


def lockout_response(
    request: HttpRequest,
    original_response: HttpResponse | None = None,
    credentials: dict[str, Any] | None = None,
) -> HttpResponse:
    """``AXES_LOCKOUT_CALLABLE``: the sign-in page says why and for how long, in the user's language."""
    delay = get_cool_off(request) or settings.MDM_SIGNIN_COOLOFF_BASE
    minutes = max(1, math.ceil(delay.total_seconds() / 60))
    context = {"minutes": minutes, "support_site": _site(request) == "support"}
    return render(request, "registration/locked_out.html", context, status=429)


def is_blocked_attempt(request: HttpRequest | None) -> bool:
    """True when axes refused the attempt without checking the password (already locked out)."""
    return bool(
        request is not None
        and getattr(request, "axes_locked_out", False)
        and getattr(request, "axes_failures_since_start", None) is None
    )


def _site(request: HttpRequest | None) -> str:
    support = reverse("admin:index")
    return "support" if request is not None and request.path.startswith(support) else "console"


def on_user_logged_in(sender: Any, request: HttpRequest | None, user: Any, **kwargs: Any) -> None:
    from mdm import services

    if request is None:
        return
    request.session[SESSION_STARTED_KEY] = request.session[SESSION_SEEN_KEY] = int(time.time())
    if request.method != "POST":
        return  # Client.force_login in tests, not a sign-in anyone made
    services.signin_record(
        succeeded=True,
        username=user.get_username(),
        organisation=str(request.POST.get("tenant") or ""),
        user=user,
        address=getattr(request, "axes_ip_address", None) or client_address(request),
        site=_site(request),
    )


def on_user_login_failed(
    sender: Any, credentials: dict[str, Any], request: HttpRequest | None = None, **kwargs: Any
) -> None:
    from mdm import services

    if request is None:
        return
    # Django has already masked the password in ``credentials``; only the user name and organisation are read.
    services.signin_record(
        succeeded=False,
        username=str(credentials.get("username") or ""),
        organisation=str(credentials.get("tenant") or ""),
        address=getattr(request, "axes_ip_address", None) or client_address(request),
        site=_site(request),
        blocked=is_blocked_attempt(request),
        locked_out=bool(getattr(request, "axes_locked_out", False)),
    )
