"""Console-wide request handling: session lifetime, and a clear page when stored secrets cannot be read."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from urllib.parse import urlencode, urlsplit

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _

from mdm.auth import SESSION_SEEN_KEY, SESSION_STARTED_KEY
from mdm.fields import DecryptionError
from mdm.models import User

logger = logging.getLogger(__name__)

# A request refreshes the idle clock at most this often: one session write a minute, not one per request.
SEEN_RESOLUTION_SECONDS = 60


class SessionTimeoutMiddleware:
    """Signs out a session idle for ``SESSION_IDLE_TIMEOUT`` seconds, or signed in ``SESSION_MAX_AGE`` seconds
    ago whatever its activity. The request then goes on anonymous: pages redirect to the sign-in page.

    Every request counts as activity, htmx polls included: a page left open on a running sync stays signed in,
    up to the absolute lifetime."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.user.is_authenticated and self._expired(request):
            logout(request)
            messages.info(request, _("Votre session a expiré : connectez-vous à nouveau."))
            if request.headers.get("HX-Request"):
                # An htmx poll would swap the sign-in page into its panel: the whole page goes to sign-in instead.
                page = url_has_allowed_host_and_scheme(
                    request.headers.get("HX-Current-URL", ""), allowed_hosts={request.get_host()}
                )
                target = reverse("login")
                if page:
                    target += "?" + urlencode({"next": urlsplit(request.headers["HX-Current-URL"]).path})
                response = HttpResponse(status=200)
                response["HX-Redirect"] = target
                return response
        return self.get_response(request)

    def _expired(self, request: HttpRequest) -> bool:
        now = int(time.time())
        session = request.session
        started = session.setdefault(SESSION_STARTED_KEY, now)
        seen = session.get(SESSION_SEEN_KEY, now)
        if now - started >= settings.SESSION_MAX_AGE or now - seen >= settings.SESSION_IDLE_TIMEOUT:
            return True
        if now - seen >= SEEN_RESOLUTION_SECONDS or SESSION_SEEN_KEY not in session:
            session[SESSION_SEEN_KEY] = now
        return False


class EncryptionKeyErrorMiddleware:
    """A secret that no configured key decrypts (a key missing from ``MDM_ENCRYPTION_KEYS``, a wrong key) gives
    a clear page instead of a server error. On the Google pages a tenant admin is pointed to the removal page,
    which works without the secret (the grant cannot be revoked then; the removal says so)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        return self.get_response(request)

    def process_exception(self, request: HttpRequest, exception: Exception) -> HttpResponse | None:
        if not isinstance(exception, DecryptionError):
            return None
        # The operator's log says which key is missing; the page never does.
        logger.error("encrypted value unreadable path=%s: %s", request.path, exception)
        user = getattr(request, "user", None)
        is_admin = isinstance(user, User) and user.is_authenticated and user.is_tenant_admin
        context = {
            "signed_in": isinstance(user, User) and user.is_authenticated,
            "removal_url": reverse("chromeos:remove") if is_admin and "/google/" in request.path else "",
        }
        return render(request, "errors/encryption_key.html", context, status=503)
