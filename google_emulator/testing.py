"""Helpers for tests that talk to the emulator with the real Google client libraries."""

from __future__ import annotations

import re
from html import unescape
from typing import Any
from urllib.parse import parse_qs, urljoin, urlparse

import requests
from google.oauth2.credentials import Credentials
from googleapiclient.discovery import Resource, build

from google_emulator.oauth import SCOPE_PREFIX
from google_emulator.server import EmulatorServer

CONSOLE_SCOPES = [
    SCOPE_PREFIX + "admin.directory.device.chromeos",
    SCOPE_PREFIX + "admin.directory.orgunit.readonly",
    SCOPE_PREFIX + "admin.directory.customer.readonly",
    SCOPE_PREFIX + "chrome.management.policy",
]
# The console reads no user; the emulator still serves users.list, to a grant that asked for this scope.
USERS_SCOPE = SCOPE_PREFIX + "admin.directory.user.readonly"


def build_service(api: str, version: str, host: str, credentials: Any) -> Resource:
    """The client exactly as the console builds it when GOOGLE_EMULATOR_HOST is set."""
    return build(
        api,
        version,
        credentials=credentials,
        static_discovery=True,
        cache_discovery=False,
        # Replaces the document's rootUrl ("https://admin.googleapis.com/"): paths stay Google's.
        client_options={"api_endpoint": f"http://{host}/"},
    )


def follow_consent(
    auth_url: str,
    approve: bool = True,
    session: requests.Session | None = None,
    account: str | None = None,
) -> dict[str, str]:
    """Play the browser: open the consent page, pick ``account`` in the chooser if given (an emulator with
    several customers), click Allow (or Cancel), return the redirect's query."""
    session = session or requests.Session()
    page = session.get(auth_url, allow_redirects=False, timeout=10)
    if page.status_code == 302:  # prompt=none answered without a page
        return _redirect_params(page.headers["Location"])
    page.raise_for_status()
    action = unescape(re.search(r'<form method="post" action="([^"]+)"', page.text).group(1))  # type: ignore[union-attr]
    consent_id = re.search(r'name="consent_id" value="([^"]+)"', page.text).group(1)  # type: ignore[union-attr]
    answer = session.post(
        urljoin(auth_url, action),
        data={
            "consent_id": unescape(consent_id),
            "decision": "allow" if approve else "deny",
            **({"account": account} if account else {}),
        },
        allow_redirects=False,
        timeout=10,
    )
    assert answer.status_code == 302, answer.text
    return _redirect_params(answer.headers["Location"])


def _redirect_params(location: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlparse(location).query).items()}


class EmulatorHandle:
    """What the ``google_emulator`` fixture gives a test: the server, its state and shortcuts."""

    def __init__(self, server: EmulatorServer) -> None:
        self.server = server
        self.http = requests.Session()

    @property
    def host(self) -> str:
        return self.server.host

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def state(self) -> Any:
        return self.server.state

    @property
    def client_id(self) -> str:
        return self.server.state.config.client_id

    @property
    def client_secret(self) -> str:
        return self.server.state.config.client_secret

    @property
    def token_uri(self) -> str:
        return f"{self.url}/token"

    def reset(self, **overrides: Any) -> None:
        self.server.reset(**overrides)

    def control(self, verb: str, path: str, json: Any = None, **params: Any) -> Any:
        response = self.http.request(
            verb, f"{self.url}/_emulator{path}", json=json, params=params, timeout=30
        )
        if response.status_code >= 400:
            raise AssertionError(f"control {verb} {path} failed: {response.status_code} {response.text}")
        return response.json()

    def grant(self, scopes: list[str] | None = None, customer: str | None = None) -> dict[str, Any]:
        """A token response (with ``refresh_token``) as if the admin (of ``customer``: id, domain or position;
        the first by default) had consented."""
        body: dict[str, Any] = {"scopes": scopes or CONSOLE_SCOPES}
        if customer is not None:
            body["customer"] = customer
        return self.control("POST", "/oauth/grant", body)

    def credentials(self, scopes: list[str] | None = None, refresh_token: str | None = None) -> Credentials:
        scopes = scopes or CONSOLE_SCOPES
        if refresh_token is None:
            refresh_token = self.grant(scopes)["refresh_token"]
        return Credentials(
            token=None,
            refresh_token=refresh_token,
            client_id=self.client_id,
            client_secret=self.client_secret,
            token_uri=self.token_uri,
            scopes=scopes,
        )

    def directory(self, credentials: Credentials | None = None) -> Resource:
        return build_service("admin", "directory_v1", self.host, credentials or self.credentials())

    def chromepolicy(self, credentials: Credentials | None = None) -> Resource:
        return build_service("chromepolicy", "v1", self.host, credentials or self.credentials())

    def add_fault(self, **fault: Any) -> int:
        return self.control("POST", "/faults", fault)["id"]

    def requests(self, method: str | None = None) -> list[dict[str, Any]]:
        return self.control("GET", "/requests", **({"method": method} if method else {}))["requests"]
