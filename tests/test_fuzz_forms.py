"""Property-based fuzz of every console form (issue 14, "What to build" 4): no input gives a 500, and input the
console refuses changes nothing.

For every console URL (the same registry as the tenant-isolation sweep, so a new page cannot escape), the test
finds the forms that post to it on the console's own pages (their field names and default values), then lets
Hypothesis post variations: defaults with some fields replaced by generated or known-nasty values (control
characters, NUL, ``ldap://[::1``, ``1e999``, ``NaN``, deep JSON, huge numbers, ciphertext lookalikes...), extra
and missing fields, as every role (admin, operator, read-only, and support staff). GET pages get the same
treatment in their query string (filters, search, sorting). The login pages (console and ``/support/``) too.

Every answer must be below 500; a refusal (400, 403, 404, 405) must leave the database exactly as it was (a
count of the rows PostgreSQL saw written in the console's tables). Real PostgreSQL; nothing leaves the machine (names do not
resolve, the outbound policy refuses the loopback). Random examples per URL: ``MDM_FUZZ_EXAMPLES`` (default 3), after the deterministic pass.
"""

from __future__ import annotations

import os
import socket
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.apps import apps
from django.db import connection
from django.test import Client
from django.urls import Resolver404, resolve, reverse
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mdm.models import Role, User
from tests.factories import ChromeOSDeviceFactory, OrgUnitFactory, UserFactory
from tests.ldap.factories import LdapDirectoryFactory
from tests.sweep import SWEEP, console_url_patterns

EXAMPLES = int(os.environ.get("MDM_FUZZ_EXAMPLES", "3"))
PATTERNS = sorted(console_url_patterns(), key=lambda item: item[0])
LOGIN_PAGES = ["login", "admin:login"]
ROLES = ["admin", "operator", "read_only", "support"]
REFUSALS = {400, 403, 404, 405}
# POST-only endpoints: the page whose forms post to them.
HOST_PAGES = {
    "ldap_sync:test": "ldap_sync:directory",
    "ldap_sync:sync": "ldap_sync:directory",
    "ldap_sync:org_units": "ldap_sync:directory",
    "chromeos:authorize": "chromeos:manage",
    "chromeos:sync_now": "chromeos:manage",
    "chromeos:sync_confirm_removals": "chromeos:manage",
    "chromeos:device_action_prepare": "chromeos:device_list",
}
NASTY = [
    "",
    " ",
    "\x00",
    "a\x00b",
    "\r\nSET pwned 1\r\n",
    "\t",
    "\x1b[31m",
    "\u202eexe.pdf",
    "\u200b",
    "ａｄｍｉｎ",
    "ldap://[::1",
    "ldap://user:pw@127.0.0.1:389",
    "ldap://127.0.0.1:6379",
    "ldaps://10.0.0.1",
    "ldap://a,ldap://b",
    "1e999",
    "NaN",
    "-Infinity",
    "-1",
    "0",
    "32767",
    "2147483648",
    "9" * 40,
    "1.5",
    "{",
    "[" * 2000,
    '{"a": NaN}',
    '{"a": "\\u0000"}',
    '{"a": "\\ud800"}',
    "[]",
    "{}",
    "null",
    "0123abcd$gAAAAAnot-a-token",
    "' OR 1=1 --",
    "<script>alert(1)</script>",
    "{{ 7|add:1 }}",
    "%(x)s %s",
    "../../etc/passwd",
    "(objectClass=*)",
    "(&(a=b)",
    "cn=x,dc=example,dc=com",
    "ou=é\\,x,dc=x",
    "x" * 5000,
    "on",
    "true",
    "all",
    "selected",
    "2026-02-30",
    "9999-12-31",
    "*",
]
# The values that broke forms before (issue 14): each is posted in every field of every form, as the admin.
KILLERS = [
    "\x00",
    "\r\nSET pwned 1\r\n",
    "ldap://[::1",
    "1e999",
    "NaN",
    "[" * 2000,
    '{"a": "\\ud800"}',
    "9" * 40,
    "x" * 5000,
    "-1",
    "0123abcd$gAAAAAnot-a-token",
]
TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=60)
VALUE = st.one_of(st.sampled_from(NASTY), TEXT, st.integers(min_value=-(2**70), max_value=2**70).map(str))
VALUES = st.one_of(VALUE, st.lists(VALUE, min_size=0, max_size=3))


# -- finding the forms -------------------------------------------------------------------------------------------
class FormParser(HTMLParser):
    """Every <form> of a page: its method, action and fields with the values a browser would send."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self._form: dict[str, Any] | None = None
        self._select: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self._form = {
                "method": a.get("method", "get").lower(),
                "action": a.get("action", ""),
                "fields": {},
            }
            self.forms.append(self._form)
        elif self._form is not None and tag in ("input", "textarea", "select", "button") and a.get("name"):
            name = a["name"]
            fields = self._form["fields"]
            kind = a.get("type", "text").lower()
            if tag == "select":
                self._select = name
                fields.setdefault(name, [])
            elif kind in ("checkbox", "radio"):
                fields.setdefault(name, [])
                if "checked" in a:
                    fields[name].append(a.get("value", "on"))
            elif kind == "file":
                fields.setdefault(name, [])
            elif tag != "button":
                fields.setdefault(name, []).append(a.get("value", ""))
        elif tag == "option" and self._form is not None and self._select and "selected" in a:
            self._form["fields"][self._select].append(a.get("value", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None


def page_forms(client: Client, url: str) -> list[dict[str, Any]]:
    response = client.get(url)
    if response.status_code != 200 or "html" not in response.get("Content-Type", ""):
        return []
    parser = FormParser()
    parser.feed(response.content.decode())
    for form in parser.forms:
        form["action"] = urlsplit(form["action"]).path or urlsplit(url).path
    return parser.forms


def url_name(path: str) -> str | None:
    try:
        match = resolve(path)
    except Resolver404:
        return None
    return match.view_name


# -- the world the fuzz runs in ----------------------------------------------------------------------------------
CONSOLE_TABLES = sorted(
    model._meta.db_table
    for config in ("mdm", "ldap_sync", "chromeos")
    for model in apps.get_app_config(config).get_models()
)


def snapshot() -> int:
    """Rows inserted, updated or deleted in the console's tables by this test's transaction so far (PostgreSQL's
    own per-transaction counters): a refused request must not move it."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_xact_user_tables "
            "WHERE relname = ANY(%s)",
            [CONSOLE_TABLES],
        )
        return int(cursor.fetchone()[0])


@pytest.fixture
def offline(monkeypatch: pytest.MonkeyPatch, settings: Any) -> None:
    """Nothing leaves the machine: names other than the loopback do not resolve; the outbound policy (production
    defaults) refuses the loopback, so no LDAP connection is ever opened."""
    real = socket.getaddrinfo

    def resolver(host: Any, *args: Any, **kwargs: Any) -> Any:
        if host in ("127.0.0.1", "localhost", "::1", b"127.0.0.1", b"localhost"):
            return real(host, *args, **kwargs)
        raise socket.gaierror(socket.EAI_NONAME, "offline fuzz")

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    settings.MDM_OUTBOUND_ALLOWED_NETWORKS = []
    settings.MDM_OUTBOUND_ALLOWED_PORTS = []


@pytest.fixture
def clients(tenant: Any, support_user: User, client_for: Any) -> dict[str, Client]:
    LdapDirectoryFactory(tenant=tenant, uri="ldap://127.0.0.1:389")
    ChromeOSDeviceFactory(tenant=tenant)
    OrgUnitFactory(tenant=tenant)
    users = {
        "admin": UserFactory(tenant=tenant, role=Role.ADMIN),
        "operator": UserFactory(tenant=tenant, role=Role.OPERATOR),
        "read_only": UserFactory(tenant=tenant, role=Role.READ_ONLY),
        "support": support_user,
    }
    return {role: client_for(user) for role, user in users.items()}


def endpoint(name: str, pattern: Any, tenant: Any) -> str:
    kwargs = SWEEP[name](tenant) if pattern.pattern.regex.groups else {}
    return reverse(name, kwargs=kwargs)


def known_forms(name: str, url: str, admin: Client) -> list[dict[str, Any]]:
    """The forms of the console's pages that post to ``name`` (found on its own page or its host page)."""
    pages = [url]
    if name in HOST_PAGES:
        pages.append(reverse(HOST_PAGES[name]))
    found = []
    for page in pages:
        for form in page_forms(admin, page):
            if url_name(form["action"]) == name:
                found.append(form)
    return found


def declared_fields(view_class: Any) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Fields of the view's declared form class (some are not on the page, e.g. Blueprint's raw JSON for a
    platform with a typed form), and the valid choices of choice fields, so the fuzz reaches deeper paths."""
    form_class = getattr(view_class, "form_class", None)
    if form_class is None:
        return {}, {}
    fields: dict[str, list[str]] = {}
    choices: dict[str, list[str]] = {}
    for name, field in form_class.base_fields.items():
        fields[name] = []
        values = [
            str(value) for value, _label in getattr(field, "choices", []) or [] if value not in ("", None)
        ]
        if values:
            choices[name] = values
    return fields, choices


def mutate(
    fields: dict[str, list[str]], draw: Any, choices: dict[str, list[str]] | None = None
) -> dict[str, Any]:
    """The form's defaults, most fields replaced: one nasty value of the example's choosing lands in many
    fields at once (a form validates every field, so one request tries it everywhere), others get noise."""
    data: dict[str, Any] = {name: list(values) for name, values in fields.items()}
    names = sorted(data) or ["x"]
    theme = draw(st.sampled_from(NASTY), label="theme")
    choices = choices or {}
    for name in draw(st.lists(st.sampled_from(names), max_size=len(names), unique=True), label="mutated"):
        if name in choices and draw(st.booleans()):
            data[name] = draw(st.sampled_from(choices[name]))
        else:
            data[name] = theme if draw(st.booleans()) else draw(VALUES)
    for name in draw(st.lists(st.sampled_from(names), max_size=2, unique=True), label="dropped"):
        data.pop(name, None)
    if draw(st.booleans()):
        extra = draw(st.sampled_from(["pk", "id", "tenant", "tenant_id", "role", "is_superuser", "selected"]))
        data[extra] = draw(VALUES)
    return {name: value for name, value in data.items() if name != "csrfmiddlewaretoken"}


FUZZ_SETTINGS = settings(
    max_examples=EXAMPLES,
    deadline=None,
    database=None,
    derandomize=False,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


# -- the tests ---------------------------------------------------------------------------------------------------
def test_every_console_url_is_fuzzed() -> None:
    """The fuzz covers what the sweep registry knows, and the registry knows every console URL."""
    missing = sorted(name for name, pattern in PATTERNS if pattern.pattern.regex.groups and name not in SWEEP)
    assert not missing


@pytest.mark.django_db
def test_the_state_check_sees_a_write(tenant):
    from tests.factories import BlueprintFactory

    before = snapshot()
    blueprint = BlueprintFactory(tenant=tenant)
    assert snapshot() > before
    before = snapshot()
    blueprint.save(update_fields=["name"])
    assert snapshot() > before


@pytest.mark.django_db
@pytest.mark.parametrize("name,pattern", PATTERNS, ids=[n for n, _ in PATTERNS])
def test_no_input_gives_a_500_or_a_silent_change(name, pattern, tenant, clients, offline):
    url = endpoint(name, pattern, tenant)
    view_class = getattr(pattern.callback, "view_class", None)
    methods = [
        m
        for m in ("get", "post")
        if view_class is None or (m in view_class.http_method_names and hasattr(view_class, m))
    ]
    forms = known_forms(name, url, clients["admin"])
    declared, choices = declared_fields(view_class)
    post_fields = [{**declared, **form["fields"]} for form in forms if form["method"] == "post"] or [declared]
    get_fields = [form["fields"] for form in forms if form["method"] == "get"] or [{}]

    state = {"before": snapshot()}

    def send(client: Client, method: str, payload: dict[str, Any], what: str, htmx: str = "") -> None:
        if method == "post":
            response = client.post(url, payload, HTTP_HX_REQUEST=htmx)
        else:
            response = client.get(url, payload)
        after = snapshot()
        assert response.status_code < 500, f"{what} answered {response.status_code}"
        if response.status_code in REFUSALS:
            assert after == state["before"], (
                f"{what} answered {response.status_code} but changed the database"
            )
        state["before"] = after

    # Deterministic: every killer value in every field at once (a form validates each field on its own).
    for fields in post_fields if "post" in methods else get_fields:
        for killer in KILLERS if fields else []:
            payload = {name: killer for name in fields if name != "csrfmiddlewaretoken"}
            method = "post" if "post" in methods else "get"
            send(clients["admin"], method, payload, f"{method.upper()} {url} with {killer!r:.40} everywhere")

    @FUZZ_SETTINGS
    @given(data=st.data())
    def fuzz(data: st.DataObject) -> None:
        role = data.draw(st.sampled_from(ROLES), label="role")
        method = data.draw(st.sampled_from(methods), label="method")
        fields = data.draw(st.sampled_from(post_fields if method == "post" else get_fields), label="form")
        payload = mutate(fields, data.draw, choices)
        htmx = data.draw(st.sampled_from(["", "true"]))
        send(clients[role], method, payload, f"{method.upper()} {url} as {role} with {payload!r:.300}", htmx)

    fuzz()


@pytest.mark.django_db
@pytest.mark.parametrize("name", LOGIN_PAGES)
def test_login_pages_take_any_input(name, tenant, offline):
    url = reverse(name)
    fields = {"username": [""], "password": [""], "tenant": [""]}

    @FUZZ_SETTINGS
    @given(data=st.data())
    def fuzz(data: st.DataObject) -> None:
        payload = mutate(fields, data.draw)
        response = Client().post(url, payload)
        assert response.status_code < 500, f"POST {url} with {payload!r:.300} answered {response.status_code}"

    fuzz()
