"""Open sessions follow the stored account state.

Django re-reads the session's user at every request (one query, which every page needs anyway); the backends
return no user for a deactivated account. This middleware then ends such a session for good, so that a later
reactivation does not resume it: a console account deactivated by support, or by the LDAP sync because the
directory no longer grants it, is signed out at its next request.
"""

from __future__ import annotations

from collections.abc import Callable

from django.contrib.auth import SESSION_KEY
from django.http import HttpRequest, HttpResponse


class EndRevokedSessionsMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        session = getattr(request, "session", None)
        if session is not None and SESSION_KEY in session and not request.user.is_authenticated:
            session.flush()
        return self.get_response(request)
