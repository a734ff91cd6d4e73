"""Property-based fuzz of every console form (issue 14, "What to build" 4): no input gives a 500, and input the
console refuses changes nothing.

For every console URL (the same registry as the tenant-isolation sweep, so a new page cannot escape), the test
finds the forms that post to it on the console's own pages (their field names and default values; ``action``,
``formaction`` buttons, ``hx-post``/``hx-put``/``hx-delete``, controls tied by ``form=``), in a tenant seeded so
that every form renders with its real fields (``world``), then lets
Hypothesis post variations: defaults with some fields replaced by generated or known-nasty values (control
characters, NUL, ``ldap://[::1``, ``1e999``, ``NaN``, deep JSON, huge numbers, ciphertext lookalikes...), extra
and missing fields, as every role (admin, operator, read-only, and support staff). GET pages get the same
treatment in their query string (filters, search, sorting). The login pages (console and ``/support/``) too.

Every answer must be below 500; a refusal (400, 403, 404, 405, 409, 429) must leave the database exactly as it was (a
count of the rows PostgreSQL saw written in the console's tables). Real PostgreSQL; nothing leaves the machine (names do not
resolve, the outbound policy refuses the loopback). Random examples per URL: ``MDM_FUZZ_EXAMPLES`` (default 8, about 45 s for
the file here; a nightly run can raise it), after the deterministic pass. ``test_every_post_endpoint_is_fuzzed_with_its_fields``
keeps the coverage honest: a POST endpoint the fuzz reaches with no real field fails it.
"""

from __future__ import annotations

import inspect
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from html.parser import HTMLParser
from typing import Any
from urllib.parse import urlsplit

import pytest
from django.apps import apps
from django.contrib import messages
from django.db import connection
from django.test import Client
from django.urls import NoReverseMatch, reverse
from django.utils import timezone
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chromeos.models import (
    DeviceAction,
    DeviceActionItem,
    DeviceActionJob,
    GoogleIntegration,
    ItemStatus,
    JobStatus,
    OrgUnit,
    PolicyAssignment,
    SyncRun,
    SyncStatus,
)
from chromeos.services.devices import TYPED_CONFIRMATION_THRESHOLD
from ldap_sync.models import LdapDirectory
from mdm.models import AppKind, AuditEvent, Role, User
from tests.factories import (
    AppFactory,
    BlueprintFactory,
    ChromeOSDeviceFactory,
    DeviceActionJobFactory,
    GoogleIntegrationFactory,
    OrgUnitFactory,
    PolicyAssignmentFactory,
    UserFactory,
)
from tests.ldap.factories import LdapDirectoryFactory, LdapOrgUnitFactory, LdapSyncRunFactory
from tests.sweep import SWEEP, console_url_patterns

EXAMPLES = int(os.environ.get("MDM_FUZZ_EXAMPLES", "8"))
PATTERNS = sorted(console_url_patterns(), key=lambda item: item[0])
LOGIN_PAGES = ["login", "admin:login"]
ROLES = ["admin", "operator", "read_only", "support"]
REFUSALS = {400, 403, 404, 405, 409, 429}
# Endpoints posted to from another page: the pages whose forms post to them. A page that takes arguments is
# given the endpoint's own (the job's confirmation page for its cancel button, the assignment's page...).
HOST_PAGES = {
    "ldap_sync:test": ["ldap_sync:directory"],
    "ldap_sync:sync": ["ldap_sync:directory"],
    "ldap_sync:org_units": ["ldap_sync:directory"],
    "ldap_sync:confirm_removals": ["ldap_sync:run"],
    "ldap_sync:cancel": ["ldap_sync:run"],
    "chromeos:authorize": ["chromeos:manage"],
    "chromeos:sync_now": ["chromeos:manage"],
    "chromeos:sync_confirm_removals": ["chromeos:manage"],
    "chromeos:sync_cancel": ["chromeos:manage"],
    "chromeos:remove": ["chromeos:manage"],
    "chromeos:removal_retry": ["chromeos:manage"],
    "chromeos:removal_cancel": ["chromeos:manage"],
    "chromeos:device_action_prepare": ["chromeos:device_list"],
    "chromeos:device_action": ["chromeos:device_detail"],
    "chromeos:device_action_cancel": ["chromeos:device_action_confirm"],
    "chromeos:policy_assign": ["chromeos:policies"],
    "chromeos:policy_release": ["chromeos:policies"],
    "chromeos:policy_apply": ["chromeos:policy_assignment"],
    "chromeos:policy_unassign": ["chromeos:policy_assignment"],
    "chromeos:policy_cancel": ["chromeos:policy_assignment"],
    "chromeos:device_view_create": ["chromeos:device_list"],
    "chromeos:device_view_delete": ["chromeos:device_view_edit"],
    "chromeos:device_job_retry_failed": ["chromeos:device_job"],
}
# POST endpoints that read no field at all (the button is the whole request): the object is in the URL or is
# the tenant's one integration/directory. ``test_every_post_endpoint_is_fuzzed_with_its_fields`` checks that
# their view never reads request.POST, so a field added later cannot hide behind this list.
FIELDLESS_POSTS = {
    "chromeos:authorize": "starts Google's OAuth consent for the tenant's integration",
    "chromeos:sync_now": "queues a sync of the tenant's integration",
    "chromeos:remove": "removes the tenant's integration (the confirmation is the page itself)",
    "chromeos:removal_retry": "retries the removal run named in the URL",
    "chromeos:removal_cancel": "cancels the removal run named in the URL",
    "chromeos:device_action_cancel": "cancels the job named in the URL",
    "chromeos:policy_apply": "applies the assignment named in the URL",
    "chromeos:policy_release": "releases the assignment named in the URL",
    "chromeos:policy_cancel": "withdraws the apply or removal requested on the assignment named in the URL",
    "ldap_sync:sync": "queues a sync of the tenant's directory",
    "ldap_sync:confirm_removals": "confirms the guarded run named in the URL",
    "ldap_sync:cancel": "cancels the run named in the URL",
    "mdm:app_delete": "deletes the app named in the URL",
    "mdm:blueprint_delete": "deletes the Blueprint named in the URL",
    "chromeos:device_view_delete": "deletes the saved view named in the URL",
    "chromeos:device_job_retry_failed": "drafts the job named in the URL again on its failed devices",
}
# Read-only pages whose view defines ``post`` only to answer 404 (another tenant's object) or 405 (ours):
# no form posts to them. The same test checks that the admin's POST answers 405.
READ_ONLY_POSTS = {
    "chromeos:device_detail",
    "chromeos:device_commands",
    "chromeos:device_job",
    "chromeos:policy_assignment",
    "chromeos:policy_state",
    "chromeos:policy_preview",
    "chromeos:policy_unassign_preview",
    "chromeos:policy_blueprint_report",
    "chromeos:policy_app_report",
    "ldap_sync:run",
    "mdm:app_download",
    "chromeos:device_view",
    "chromeos:policy_blueprint_inventory_export",
    "chromeos:policy_app_inventory_export",
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
# The names a tampered request adds to a form.
TAMPERED = ["pk", "id", "tenant", "tenant_id", "role", "is_superuser", "selected", "run"]
TEXT = st.text(alphabet=st.characters(exclude_categories=("Cs",)), max_size=60)
VALUE = st.one_of(st.sampled_from(NASTY), TEXT, st.integers(min_value=-(2**70), max_value=2**70).map(str))
VALUES = st.one_of(VALUE, st.lists(VALUE, min_size=0, max_size=3))


# -- finding the forms -------------------------------------------------------------------------------------------
class FormParser(HTMLParser):
    """Every way a page posts: each <form> (its method, ``action`` or ``hx-post``/``hx-put``/``hx-delete``, and
    fields with the values a browser would send, including controls outside it that name it with ``form=``), and
    each ``formaction`` button as a form of its own (same fields, other endpoint)."""

    HX = ("hx-post", "hx-put", "hx-delete", "hx-patch")

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []
        self._form: dict[str, Any] | None = None
        self._select: tuple[dict[str, Any], str] | None = None
        self._by_id: dict[str, dict[str, Any]] = {}
        self._orphans: list[tuple[str, str, dict[str, str]]] = []

    def _owner(self, a: dict[str, str]) -> dict[str, Any] | None:
        if a.get("form"):
            return self._by_id.get(a["form"])
        return self._form

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        hx = next((a[k] for k in self.HX if k in a), None)
        if tag == "form":
            self._form = {
                "method": "post" if hx is not None else a.get("method", "get").lower(),
                "action": a.get("action", ""),
                "fields": {},
                "also": [hx] if hx is not None and hx != a.get("action", "") else [],
            }
            self.forms.append(self._form)
            if a.get("id"):
                self._by_id[a["id"]] = self._form
            return
        if tag == "option":
            if self._select and "selected" in a:
                form, name = self._select
                form["fields"][name].append(a.get("value", ""))
            return
        if tag not in ("input", "textarea", "select", "button"):
            if hx is not None:
                self.forms.append({"method": "post", "action": hx, "fields": {}, "also": []})
            return
        owner = self._owner(a)
        if a.get("form") and owner is None:
            self._orphans.append((tag, a["form"], a))
            return
        if owner is None:
            if hx is not None:
                self.forms.append({"method": "post", "action": hx, "fields": {}, "also": []})
            return
        for alternative in (a.get("formaction"), hx):
            if alternative:
                owner["also"].append(alternative)
        self._field(owner, tag, a)

    def _field(self, form: dict[str, Any], tag: str, a: dict[str, str]) -> None:
        name = a.get("name")
        if not name:
            return
        fields = form["fields"]
        kind = a.get("type", "text").lower()
        if tag == "select":
            self._select = (form, name)
            fields.setdefault(name, [])
        elif kind == "radio":
            # The checked choice, else the first: the fuzz starts from a choice the user would make.
            if "checked" in a or not fields.get(name):
                fields[name] = [a.get("value", "on")]
        elif kind == "checkbox":
            fields.setdefault(name, [])
            # A box the user would tick (the first one at least), so the view's real path runs.
            if "checked" in a or not fields[name]:
                fields[name].append(a.get("value", "on"))
        elif kind == "file":
            fields.setdefault(name, [])
        elif tag == "button" or kind in ("submit", "image"):
            # The submitter's name/value is sent; the first one is what pressing Enter sends.
            fields.setdefault(name, [a.get("value", "")])
        else:
            fields.setdefault(name, []).append(a.get("value", ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._form = None
        elif tag == "select":
            self._select = None

    def close(self) -> None:
        super().close()
        for tag, form_id, a in self._orphans:
            if form_id in self._by_id:
                self._field(self._by_id[form_id], tag, a)
        for form in list(self.forms):
            for action in dict.fromkeys(form.pop("also", [])):
                self.forms.append({"method": "post", "action": action, "fields": dict(form["fields"])})


def page_forms(client: Client, url: str) -> list[dict[str, Any]]:
    response = client.get(url)
    if response.status_code != 200 or "html" not in response.get("Content-Type", ""):
        return []
    parser = FormParser()
    parser.feed(response.content.decode())
    parser.close()
    for form in parser.forms:
        form["action"] = urlsplit(form["action"]).path or urlsplit(url).path
    return parser.forms


# -- the world the fuzz runs in ----------------------------------------------------------------------------------
CONSOLE_TABLES = sorted(
    model._meta.db_table
    for config in ("mdm", "ldap_sync", "chromeos")
    for model in apps.get_app_config(config).get_models()
)


def snapshot(tables: list[str] = CONSOLE_TABLES) -> int:
    """Rows inserted, updated or deleted in the console's tables by this test's transaction so far (PostgreSQL's
    own per-transaction counters): a refused request must not move it."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT coalesce(sum(n_tup_ins + n_tup_upd + n_tup_del), 0) FROM pg_stat_xact_user_tables "
            "WHERE relname = ANY(%s)",
            [tables],
        )
        return int(cursor.fetchone()[0])


# A refusal told by a redirect's error message may leave one trace: its audit event (a failed Google
# authorization is audited on purpose). Everything else must stay as it was.
DATA_TABLES = [table for table in CONSOLE_TABLES if table != AuditEvent._meta.db_table]


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


def linked_org_unit(tenant: Any, directory: Any) -> Any:
    """A Google OU mirrored from an LDAP OU of the same path: one the console manages policies on."""
    ldap_ou = LdapOrgUnitFactory(tenant=tenant, directory=directory, added=True)
    return OrgUnitFactory(tenant=tenant, path=ldap_ou.path, name=ldap_ou.name, ldap_org_unit=ldap_ou)


@pytest.fixture
def world(tenant: Any) -> dict[str, Any]:
    """The state in which every form of the console renders with its real fields: an authorized Google
    integration (the chromeos tests' factory), synced Google OUs linked to LDAP OUs (the LDAP page's OU
    selection, the policy assignment form, the move action's choices), an assignable Blueprint and apps, a
    guarded sync run (the removals confirmation), a failed removal run (its retry)."""
    integration = GoogleIntegrationFactory(tenant=tenant)
    directory = LdapDirectoryFactory(tenant=tenant, uri="ldap://127.0.0.1:389")
    ChromeOSDeviceFactory(tenant=tenant, integration=integration)
    OrgUnitFactory(tenant=tenant, integration=integration, path="/", name="", parent_org_unit_id="")
    org_units = [linked_org_unit(tenant, directory) for _ in range(2)]
    LdapOrgUnitFactory(tenant=tenant, directory=directory, added=False)
    LdapSyncRunFactory(tenant=tenant, directory=directory, status="succeeded", finished_at=timezone.now())
    BlueprintFactory(tenant=tenant, settings={"guest_mode": False, "incognito_mode": True})
    AppFactory(tenant=tenant, kind=AppKind.CHROME, identifier="a" * 32)
    AppFactory(tenant=tenant)
    SyncRun.unscoped.create(
        tenant=tenant,
        integration=integration,
        trigger="manual",
        status=SyncStatus.GUARDED,
        pending_removals=7,
    )
    return {"integration": integration, "directory": directory, "org_units": org_units}


@pytest.fixture
def clients(tenant: Any, support_user: User, client_for: Any, world: dict[str, Any]) -> dict[str, Client]:
    users = {
        "admin": UserFactory(tenant=tenant, role=Role.ADMIN),
        "operator": UserFactory(tenant=tenant, role=Role.OPERATOR),
        "read_only": UserFactory(tenant=tenant, role=Role.READ_ONLY),
        "support": support_user,
    }
    return {role: client_for(user) for role, user in users.items()}


def _job(action: str, total: int = 1) -> Any:
    return lambda t: {"pk": DeviceActionJobFactory(tenant=t, action=action, total=total).pk}


def _failed_job(t: Any) -> dict[str, Any]:
    """A finished job with a failed device: the only kind whose page offers « Relancer les échecs »."""
    job = DeviceActionJobFactory(tenant=t, action=DeviceAction.DISABLE, total=1)
    DeviceActionJob.unscoped.filter(pk=job.pk).update(status=JobStatus.PARTIAL, failed=1)
    DeviceActionItem.unscoped.filter(job=job).update(status=ItemStatus.FAILED)
    return {"pk": job.pk}


def _assignment(t: Any) -> dict[str, Any]:
    directory = LdapDirectory.unscoped.get(tenant=t)
    return {"pk": PolicyAssignmentFactory(tenant=t, org_unit=linked_org_unit(t, directory)).pk}


def _requested_assignment(t: Any) -> dict[str, Any]:
    """An apply requested that no worker took yet: the only state in which the page offers « Annuler »."""
    directory = LdapDirectory.unscoped.get(tenant=t)
    assignment = PolicyAssignmentFactory(tenant=t, org_unit=linked_org_unit(t, directory))
    PolicyAssignment.unscoped.filter(pk=assignment.pk).update(
        apply_requested_at=timezone.now(), request_state_before="pending"
    )
    return {"pk": assignment.pk}


def _vanished_assignment(t: Any) -> dict[str, Any]:
    """An assignment whose OU Google no longer lists: the only one the overview offers to release."""
    assignment = PolicyAssignmentFactory(tenant=t)
    OrgUnit.unscoped.filter(pk=assignment.org_unit_id).update(missing_since=timezone.now())
    return {"pk": assignment.pk}


def _blueprint_in_use(t: Any) -> dict[str, Any]:
    """Still assigned: its deletion is refused (409), which must change nothing."""
    return {"pk": PolicyAssignmentFactory(tenant=t).blueprint_id}


def _app_in_use(t: Any) -> dict[str, Any]:
    app = AppFactory(tenant=t, kind=AppKind.CHROME, identifier="b" * 32)
    PolicyAssignmentFactory(
        tenant=t, blueprint=None, app=app, app_context="users", install_type="force_install"
    )
    return {"pk": app.pk}


# The objects the fuzz posts to, where the sweep's one would hide fields: each device action's confirmation
# has its own (the move's OU, the deprovision's reason and, above the threshold, the typed confirmation, the
# volume, the annotations, the Powerwash acknowledgement); a supported OU's assignment shows apply and unassign;
# a Blueprint or app still assigned is refused deletion (409).
FUZZ_OBJECTS = {
    "chromeos:device_action_confirm": [
        _job(DeviceAction.MOVE),
        _job(DeviceAction.DEPROVISION, total=TYPED_CONFIRMATION_THRESHOLD + 1),
        _job(DeviceAction.SET_VOLUME),
        _job(DeviceAction.ANNOTATE),
        _job(DeviceAction.POWERWASH),
        _job(DeviceAction.DISABLE),
    ],
    "chromeos:device_action_cancel": [_job(DeviceAction.DISABLE)],
    "chromeos:device_job_retry_failed": [_failed_job],
    "chromeos:policy_apply": [_assignment],
    "chromeos:policy_unassign": [_assignment],
    "chromeos:policy_release": [_vanished_assignment],
    "chromeos:policy_cancel": [_requested_assignment],
    "mdm:blueprint_delete": [SWEEP["mdm:blueprint_delete"], _blueprint_in_use],
    "mdm:app_delete": [SWEEP["mdm:app_delete"], _app_in_use],
}


def endpoints(name: str, pattern: Any, tenant: Any) -> list[tuple[str, dict[str, Any]]]:
    """The URLs (and their kwargs) the fuzz posts to for this pattern."""
    if not pattern.pattern.regex.groups:
        return [(reverse(name), {})]
    makers = FUZZ_OBJECTS.get(name) or [SWEEP[name]]
    return [(reverse(name, kwargs=kwargs), kwargs) for kwargs in (maker(tenant) for maker in makers)]


def host_page(name: str, kwargs: dict[str, Any]) -> str:
    try:
        return reverse(name, kwargs=kwargs or None)
    except NoReverseMatch:
        return reverse(name)


@contextmanager
def _sync_under_way() -> Iterator[None]:
    """A queued sync, for « Annuler la synchronisation » to show; undone after, since a sync under way hides
    the guard's « Confirmer la suppression »."""
    integration = GoogleIntegration.unscoped.order_by("pk").first()
    assert integration is not None
    run = SyncRun.unscoped.create(tenant=integration.tenant, integration=integration, trigger="manual")
    try:
        yield
    finally:
        run.delete()


# Forms that show only in a state the world is not in: the state is made while the host pages are read.
HOST_STATES = {"chromeos:sync_cancel": _sync_under_way}


@contextmanager
def _no_state() -> Iterator[None]:
    yield


def known_forms(name: str, url: str, kwargs: dict[str, Any], admin: Client) -> list[dict[str, Any]]:
    """The forms of the console's pages that post to ``url`` (found on its own page or its host pages)."""
    pages = [url] + [host_page(host, kwargs) for host in HOST_PAGES.get(name, [])]
    found = []
    with HOST_STATES.get(name, _no_state)():
        for page in pages:
            for form in page_forms(admin, page):
                if form["action"] == url:
                    found.append(form)
    return found


def real_fields(form: dict[str, Any]) -> list[str]:
    return [field for field in form["fields"] if field != "csrfmiddlewaretoken"]


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
        extra = draw(st.sampled_from(TAMPERED))
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


def refused_by_message(response: Any) -> bool:
    """A redirect that carries an error message: how some pages answer a bad form (Post/Redirect/Get, e.g. the
    LDAP OU selection)."""
    queued = getattr(getattr(response.wsgi_request, "_messages", None), "_queued_messages", [])
    return response.status_code in (301, 302, 303) and any(m.level == messages.ERROR for m in queued)


def post_methods(view_class: Any) -> list[str]:
    return [
        m
        for m in ("get", "post")
        if view_class is None or (m in view_class.http_method_names and hasattr(view_class, m))
    ]


@pytest.mark.django_db
def test_every_post_endpoint_is_fuzzed_with_its_fields(tenant, clients):
    """Each URL that takes a POST is reached by the fuzz through a real form with at least one real field, or is
    on an allow-list that the test holds to its reason: field-less views never read ``request.POST``, read-only
    pages answer 405."""
    missing, wrong = [], []
    for name, pattern in PATTERNS:
        view_class = getattr(pattern.callback, "view_class", None)
        if "post" not in post_methods(view_class):
            continue
        declared, _choices = declared_fields(view_class)
        found = {
            url: [f for f in known_forms(name, url, kwargs, clients["admin"]) if f["method"] == "post"]
            for url, kwargs in endpoints(name, pattern, tenant)
        }
        forms = [form for url_forms in found.values() for form in url_forms]
        if name in READ_ONLY_POSTS:
            for url in found:
                status = clients["admin"].post(url).status_code
                if forms or status != 405:
                    wrong.append(
                        f"{name}: read-only, yet {len(forms)} form(s) post to it and POST gives {status}"
                    )
        elif name in FIELDLESS_POSTS:
            if not any(found.values()):
                missing.append(
                    f"{name}: no form on its pages posts to {[u for u, f in found.items() if not f]}"
                )
            if "request.POST" in inspect.getsource(view_class.post):
                wrong.append(f"{name}: on the field-less list, but its view reads request.POST")
        elif not all(found.values()) or not (declared or any(real_fields(f) for f in forms)):
            missing.append(
                f"{name}: forms found { ({u: [sorted(f['fields']) for f in fs] for u, fs in found.items()}) }"
            )
    assert not missing and not wrong, "\n".join(missing + wrong)


@pytest.mark.django_db
@pytest.mark.parametrize("name,pattern", PATTERNS, ids=[n for n, _ in PATTERNS])
def test_no_input_gives_a_500_or_a_silent_change(name, pattern, tenant, clients, offline):
    view_class = getattr(pattern.callback, "view_class", None)
    methods = post_methods(view_class)
    declared, choices = declared_fields(view_class)
    targets = []
    for url, kwargs in endpoints(name, pattern, tenant):
        forms = known_forms(name, url, kwargs, clients["admin"])
        post_fields = [{**declared, **form["fields"]} for form in forms if form["method"] == "post"] or [
            declared
        ]
        get_fields = [form["fields"] for form in forms if form["method"] == "get"] or [{}]
        targets.append((url, post_fields, get_fields))

    state = {"before": snapshot(), "data": snapshot(DATA_TABLES)}

    def send(
        client: Client, url: str, method: str, payload: dict[str, Any], what: str, htmx: str = ""
    ) -> None:
        if method == "post":
            response = client.post(url, payload, HTTP_HX_REQUEST=htmx)
        else:
            response = client.get(url, payload)
        after, data = snapshot(), snapshot(DATA_TABLES)
        assert response.status_code < 500, f"{what} answered {response.status_code}"
        if response.status_code in REFUSALS:
            assert after == state["before"], (
                f"{what} answered {response.status_code} but changed the database"
            )
        elif refused_by_message(response):
            assert data == state["data"], f"{what} redirected with an error but changed the database"
        state["before"], state["data"] = after, data

    # Deterministic: every killer value in every field at once (a form validates each field on its own); a form
    # with no field of its own gets them in the names a tampered request would add.
    method = "post" if "post" in methods else "get"
    for url, post_fields, get_fields in targets:
        for fields in post_fields if method == "post" else get_fields:
            names = [n for n in fields if n != "csrfmiddlewaretoken"] or TAMPERED
            for killer in KILLERS:
                payload = dict.fromkeys(names, killer)
                send(
                    clients["admin"],
                    url,
                    method,
                    payload,
                    f"{method.upper()} {url} with {killer!r:.40} everywhere",
                )

    @FUZZ_SETTINGS
    @given(data=st.data())
    def fuzz(data: st.DataObject) -> None:
        url, post_fields, get_fields = data.draw(st.sampled_from(targets), label="url")
        role = data.draw(st.sampled_from(ROLES), label="role")
        method = data.draw(st.sampled_from(methods), label="method")
        fields = data.draw(st.sampled_from(post_fields if method == "post" else get_fields), label="form")
        payload = mutate(fields, data.draw, choices)
        htmx = data.draw(st.sampled_from(["", "true"]))
        send(
            clients[role],
            url,
            method,
            payload,
            f"{method.upper()} {url} as {role} with {payload!r:.300}",
            htmx,
        )

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
