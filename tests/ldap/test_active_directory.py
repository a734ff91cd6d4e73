"""Active Directory as a first-class directory, against a real Samba AD DC (``samba_ad``).

The domain (``ldap_sync.ad_directory.demo``): 219 nested OUs whose names carry accents, commas, ``#``, ``+``,
quotes and leading spaces, 1,100 users of which some are disabled (userAccountControl) and some have no
``mail``, and role groups as AD security groups, the admin group holding its members through a nested group.
"""

from __future__ import annotations

import subprocess
import uuid

import ldap
import pytest
from django.contrib.auth import authenticate
from django.test import Client
from django.urls import reverse

from ldap_sync.ad_directory import AdDirectory
from ldap_sync.client import ConnectionSettings, LdapClient, LdapInvalidCredentials
from ldap_sync.diagnostics import StepStatus, check_connection
from ldap_sync.kinds import DirectoryKind, defaults
from ldap_sync.models import LdapDirectory, LdapOrgUnit, LdapUser, SyncStatus
from ldap_sync.samba_ad import SambaAdServer, missing_requirements
from ldap_sync.services import ou_path_segment
from mdm.models import Role, User

pytestmark = pytest.mark.django_db


def console_path(path: tuple[str, ...]) -> str:
    return "/" + "/".join(ou_path_segment(name) for name in path)


def ad_settings(
    samba_ad: SambaAdServer, bind_dn: str, password: str, **overrides: object
) -> ConnectionSettings:
    values: dict[str, object] = {
        "uri": samba_ad.ldaps_uri,
        "bind_dn": bind_dn,
        "bind_password": password,
        "ca_cert_pem": samba_ad.ca_cert_pem,
        "network_timeout": 5.0,
        "operation_timeout": 30.0,
    }
    values.update(overrides)
    return ConnectionSettings(**values)  # type: ignore[arg-type]


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> int:
    """Samba does not enforce AD's 1,000-entry MaxPageSize: a small page proves the listing is paged."""
    original = LdapDirectory.connection_settings

    def paged(self: LdapDirectory, **overrides: object) -> ConnectionSettings:
        return original(self, **{"page_size": 97, **overrides})

    monkeypatch.setattr(LdapDirectory, "connection_settings", paged)
    return 97


# -- the fixture itself -------------------------------------------------------------------------------------------
def test_the_domain_has_the_promised_shape(samba_ad: SambaAdServer, ad_dir: AdDirectory) -> None:
    conn = samba_ad.admin_connection()
    try:
        ous = conn.search_s(samba_ad.base_dn, ldap.SCOPE_SUBTREE, "(objectClass=organizationalUnit)", ["1.1"])
        users = conn.search_s(
            samba_ad.base_dn, ldap.SCOPE_SUBTREE, "(&(objectCategory=person)(objectClass=user))", ["1.1"]
        )
    finally:
        conn.unbind_s()
    ou_dns = [dn for dn, _ in ous if dn]
    assert len(ou_dns) >= 200 and len([dn for dn, _ in users if dn]) >= 1000
    for needle in ("\\#Projets", "Sciences\\, Techniques", "\\+", '\\"', "OU=\\ Espace"):
        assert any(needle in dn for dn in ou_dns), needle
    assert sum(user.disabled for user in ad_dir.users) >= 10
    assert ad_dir.nested_group_dn("admin") is not None


def test_samba_refuses_simple_binds_without_tls(samba_ad: SambaAdServer, ad_dir: AdDirectory) -> None:
    settings = ad_settings(samba_ad, ad_dir.service_bind_dn, ad_dir.service_password, uri=samba_ad.uri)
    with pytest.raises(Exception) as caught, LdapClient(settings):
        pass
    assert getattr(caught.value, "code", "") == "tls"


@pytest.mark.skipif(missing_requirements() is not None, reason=str(missing_requirements()))
def test_stop_kills_every_process_and_deletes_the_namespace(ad_dir: AdDirectory) -> None:
    server = SambaAdServer().start(seed=ad_dir)
    pids, netns = server.pids, server.netns
    assert server.snapshot_restored  # the session fixture built the snapshot: this start only restored it
    server.stop()
    for pid in pids:
        state = subprocess.run(["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True).stdout
        assert state.strip() in ("", "Z"), pid
    assert netns not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


@pytest.mark.skipif(missing_requirements() is not None, reason=str(missing_requirements()))
def test_a_killed_test_process_leaves_no_domain_controller_running(ad_dir: AdDirectory, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """A run killed on timeout (SIGKILL: no finally, no atexit) must not leave samba and its relays behind."""
    import os
    import signal
    import sys
    import time

    script = tmp_path / "start.py"
    script.write_text(
        "import time\n"
        "from ldap_sync import ad_directory\n"
        "from ldap_sync.samba_ad import SambaAdServer\n"
        "server = SambaAdServer().start(seed=ad_directory.demo())\n"
        "print(' '.join(map(str, server.pids)), server.data_dir, server.netns, flush=True)\n"
        "time.sleep(300)\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    child = subprocess.Popen(
        [sys.executable, str(script)],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": root},
    )
    try:
        *numbers, folder, netns = (child.stdout.readline() if child.stdout else "").split()
        pids = [int(pid) for pid in numbers]
        assert len(pids) == 5
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    deadline = time.monotonic() + 10
    alive = pids
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [
            pid
            for pid in pids
            if subprocess.run(
                ["ps", "-o", "stat=", "-p", str(pid)], capture_output=True, text=True
            ).stdout.strip()
            not in ("", "Z")
        ]
    assert alive == []
    # What it could not clean itself (its folder, its now empty namespace) goes at the next start.
    from ldap_sync.samba_ad import _delete_stale_leftovers

    _delete_stale_leftovers()
    assert not os.path.exists(folder)
    assert netns not in subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


# -- bind names and AD's reasons ------------------------------------------------------------------------------------
@pytest.mark.parametrize("form", ["dn", "upn", "down-level"])
def test_service_account_binds_by_dn_upn_or_domain_user(form, samba_ad, ad_dir) -> None:  # type: ignore[no-untyped-def]
    name = {
        "dn": ad_dir.service_bind_dn,
        "upn": ad_dir.service_upn,
        "down-level": f"{ad_dir.netbios_domain}\\mdm-sync",
    }[form]
    report = check_connection(
        ad_settings(samba_ad, name, ad_dir.service_password, domain_scope=True),
        base_dn=ad_dir.base_dn,
        ou_filter=defaults(DirectoryKind.ACTIVE_DIRECTORY)["ou_filter"],
        user_filter=defaults(DirectoryKind.ACTIVE_DIRECTORY)["user_filter"],
        id_attribute="objectGUID",
    )
    assert report.ok, report.steps


def test_ad_bind_refusals_say_why(samba_ad, ad_dir) -> None:  # type: ignore[no-untyped-def]
    with (
        pytest.raises(LdapInvalidCredentials) as wrong,
        LdapClient(ad_settings(samba_ad, ad_dir.service_upn, "nope")),
    ):
        pass
    assert wrong.value.message == "Identifiant ou mot de passe incorrect."
    assert "52e" in wrong.value.detail
    disabled = ad_dir.user("adesactive")
    with (
        pytest.raises(LdapInvalidCredentials) as refused,
        LdapClient(ad_settings(samba_ad, disabled.upn, ad_dir.user_password)),
    ):
        pass
    assert refused.value.message == "Le compte est désactivé dans l'annuaire."


def test_connection_test_flags_an_id_attribute_the_directory_does_not_have(samba_ad, ad_dir) -> None:  # type: ignore[no-untyped-def]
    """The OpenLDAP defaults against AD: every step was green, then every sync failed on entryUUID."""
    report = check_connection(
        ad_settings(samba_ad, ad_dir.service_bind_dn, ad_dir.service_password),
        base_dn=ad_dir.base_dn,
        ou_filter="(objectClass=organizationalUnit)",
        user_filter="(objectClass=user)",
        id_attribute="entryUUID",
    )
    failed = [step for step in report.steps if step.status == StepStatus.FAILED]
    assert not report.ok and failed and "entryUUID" in failed[0].detail


# -- sync -----------------------------------------------------------------------------------------------------------
def test_sync_imports_ous_and_users_exactly(
    tenant, make_ad_directory, run_sync, ad_dir, samba_ad, small_pages
):  # type: ignore[no-untyped-def]
    directory = make_ad_directory(tenant)
    outcome = run_sync(directory)
    run = outcome.run
    assert run.status == SyncStatus.SUCCEEDED, (
        run.log
    )  # the domain root lists whole: no continuation reference
    paths = set(LdapOrgUnit.unscoped.filter(tenant=tenant).values_list("path", flat=True))
    assert paths == {console_path(path) for path in ad_dir.all_ous()}
    assert "/Domain Controllers" not in paths
    users = {user.email: user for user in LdapUser.unscoped.filter(tenant=tenant).select_related("org_unit")}
    expected = {user.email: user for user in ad_dir.all_users()}
    assert set(users) == set(expected)
    assert {email for email, user in users.items() if user.disabled} == {
        email for email, user in expected.items() if user.disabled
    }
    assert run.entries_skipped == 0
    for email, imported in users.items():
        generated = expected[email]
        assert (imported.uid, imported.name) == (generated.sam, generated.display_name)
        assert imported.org_unit is not None and imported.org_unit.path == console_path(generated.ou_path)

    # The identity is objectGUID, in its canonical text form.
    conn = samba_ad.admin_connection()
    try:
        one = ad_dir.user("cdurand")
        [(_dn, attrs)] = [
            item
            for item in conn.search_s(
                ad_dir.base_dn, ldap.SCOPE_SUBTREE, "(sAMAccountName=cdurand)", ["objectGUID"]
            )
            if item[0]
        ]
    finally:
        conn.unbind_s()
    assert users[one.email].entry_uuid == uuid.UUID(bytes_le=attrs["objectGUID"][0])

    again = run_sync(directory).run
    assert again.status == SyncStatus.SUCCEEDED
    assert (again.ous_added, again.ous_changed, again.ous_removed) == (0, 0, 0)
    assert (again.users_added, again.users_changed, again.users_removed) == (0, 0, 0)


def test_a_user_disabled_in_ad_is_flagged_at_the_next_sync(
    tenant, make_ad_directory, run_sync, ad_dir, samba_ad
):  # type: ignore[no-untyped-def]
    directory = make_ad_directory(tenant)
    run_sync(directory)
    target = ad_dir.user("jnomade")
    conn = samba_ad.admin_connection()
    dn = target.dn(ad_dir.base_dn)
    try:
        conn.modify_s(dn, [(ldap.MOD_REPLACE, "userAccountControl", [b"66050"])])
        run = run_sync(directory).run
        assert LdapUser.unscoped.get(tenant=tenant, email=target.email).disabled
        assert run.users_changed == 1
    finally:
        conn.modify_s(dn, [(ldap.MOD_REPLACE, "userAccountControl", [b"66048"])])
        conn.unbind_s()


# -- login ----------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("form", ["sam", "upn", "down-level"])
@pytest.mark.parametrize(
    ("sam", "role"), [("cdurand", Role.ADMIN), ("lfontaine", Role.OPERATOR), ("hcote", Role.READ_ONLY)]
)
def test_ad_users_sign_in_by_any_name_with_the_role_of_their_nested_group(  # type: ignore[no-untyped-def]
    form, sam, role, tenant, make_ad_directory, ad_dir
):
    make_ad_directory(tenant)
    user = ad_dir.user(sam)
    typed = {"sam": sam, "upn": user.upn, "down-level": f"{ad_dir.netbios_domain}\\{sam}"}[form]
    client = Client()
    response = client.post(
        reverse("login"), {"tenant": "acme", "username": typed, "password": ad_dir.user_password}
    )
    assert response.status_code == 302, response.content.decode()[-2000:]
    account = User.objects.get(username=f"acme:{sam}")
    assert account.role == role and account.email == user.email


def test_a_user_in_no_role_group_cannot_sign_in(tenant, make_ad_directory, ad_dir) -> None:  # type: ignore[no-untyped-def]
    make_ad_directory(tenant)
    assert authenticate(None, username="jnomade", password=ad_dir.user_password, tenant="acme") is None
    assert not User.objects.filter(username="acme:jnomade").exists()


def test_a_direct_member_of_an_ad_group_gets_that_groups_role_not_read_only(
    tenant, make_ad_directory, ad_dir
) -> None:  # type: ignore[no-untyped-def]
    """Before: AD groups were searched as groupOfNames; a direct member signed in as read-only."""
    make_ad_directory(
        tenant, admin_group_dn="", operator_group_dn=ad_dir.group_dn("operator"), readonly_group_dn=""
    )
    user = authenticate(None, username="lfontaine", password=ad_dir.user_password, tenant="acme")
    assert user is not None and user.role == Role.OPERATOR


def test_a_disabled_account_is_refused_with_the_reason(tenant, make_ad_directory, ad_dir) -> None:  # type: ignore[no-untyped-def]
    make_ad_directory(tenant)
    page = Client().post(
        reverse("login"), {"tenant": "acme", "username": "adesactive", "password": ad_dir.user_password}
    )
    assert page.status_code == 200
    assert "Le compte est désactivé dans l&#x27;annuaire." in page.content.decode()
    assert not User.objects.filter(username="acme:adesactive").exists()


def test_a_wrong_password_says_so_in_plain_words(tenant, make_ad_directory, ad_dir) -> None:  # type: ignore[no-untyped-def]
    make_ad_directory(tenant)
    page = Client().post(reverse("login"), {"tenant": "acme", "username": "cdurand", "password": "wrong"})
    assert "Identifiant ou mot de passe incorrect." in page.content.decode()


# -- role groups on the LDAP page -----------------------------------------------------------------------------------
def test_connection_test_shows_each_roles_group_and_how_many_users_it_resolves_to(  # type: ignore[no-untyped-def]
    tenant, make_ad_directory, ad_dir
):
    from ldap_sync import services

    directory = make_ad_directory(tenant, readonly_group_dn=f"CN=Absent,{ad_dir.groups_base_dn}")
    report = services.directory_test_connection(directory=directory)
    counts = {group.role: group.user_count for group in report.role_groups}
    # Admins: through the nested group, the disabled admin included (it resolves, it cannot sign in).
    assert counts == {Role.ADMIN: 2, Role.OPERATOR: 1, Role.READ_ONLY: None}


def test_ldap_sync_json_reports_the_ad_import(tenant, make_ad_directory, ad_dir):  # type: ignore[no-untyped-def]
    import json
    from io import StringIO

    from django.core.management import call_command

    make_ad_directory(tenant)
    out = StringIO()
    call_command("ldap_sync", "acme", "--json", stdout=out, stderr=StringIO())
    report = json.loads(out.getvalue())
    users = ad_dir.all_users()
    assert report["status"] == "succeeded"
    assert (report["org_units"], report["users"]) == (len(ad_dir.all_ous()), len(users))
    assert report["disabled_users"] == sum(user.disabled for user in users)
    assert report["added"] == {"org_units": len(ad_dir.all_ous()), "users": len(users)}
    assert report["skipped"] == []
    again = StringIO()
    call_command("ldap_sync", "acme", "--json", stdout=again, stderr=StringIO())
    second = json.loads(again.getvalue())
    assert second["added"] == second["changed"] == second["removed"] == {"org_units": 0, "users": 0}


def test_without_the_domain_scope_control_a_root_listing_is_partial(tenant, make_ad_directory, run_sync):  # type: ignore[no-untyped-def]
    """The finding: AD answers a search from the domain root with a continuation reference to
    CN=Configuration, so the run was 'partial' and nothing was ever removed. The AD kind sends the domain-scope
    control; an OpenLDAP-kind directory (no control) on the same server shows the difference."""
    directory = make_ad_directory(tenant, kind=DirectoryKind.OPENLDAP)
    run = run_sync(directory).run
    assert run.status == SyncStatus.PARTIAL
    assert any("Configuration" in str(line.get("params")) for line in run.log)
    directory.kind = DirectoryKind.ACTIVE_DIRECTORY
    directory.save()
    assert run_sync(directory).run.status == SyncStatus.SUCCEEDED


def test_a_login_renamed_in_ad_keeps_its_console_account(
    tenant, make_ad_directory, run_sync, ad_dir, samba_ad
):  # type: ignore[no-untyped-def]
    """Console accounts are keyed to the directory id (objectGUID), not to the login name."""
    directory = make_ad_directory(tenant)
    run_sync(directory)
    first = authenticate(None, username="lfontaine", password=ad_dir.user_password, tenant="acme")
    assert first is not None and LdapUser.unscoped.get(tenant=tenant, uid="lfontaine").console_user == first
    dn = ad_dir.user("lfontaine").dn(ad_dir.base_dn)
    conn = samba_ad.admin_connection()
    try:
        conn.modify_s(dn, [(ldap.MOD_REPLACE, "sAMAccountName", [b"lfontaine-renomme"])])
        run = run_sync(directory).run
        account = User.objects.get(pk=first.pk)
        assert account.username == "acme:lfontaine-renomme" and account.is_active, run.log
        again = authenticate(None, username="lfontaine-renomme", password=ad_dir.user_password, tenant="acme")
        assert again is not None and again.pk == first.pk and again.role == Role.OPERATOR
    finally:
        conn.modify_s(dn, [(ldap.MOD_REPLACE, "sAMAccountName", [b"lfontaine"])])
        conn.unbind_s()
    run_sync(directory)
    assert User.objects.get(pk=first.pk).username == "acme:lfontaine"


def test_the_ldap_page_says_how_many_imported_users_are_disabled(
    tenant, make_ad_directory, run_sync, ad_dir, admin_client_
):  # type: ignore[no-untyped-def]
    run_sync(make_ad_directory(tenant))
    page = admin_client_.get(reverse("ldap_sync:directory")).content.decode()
    disabled = sum(user.disabled for user in ad_dir.all_users())
    assert f"dont {disabled} désactivés dans l" in page


@pytest.mark.parametrize(
    "username",
    [
        "*",
        "*)(sAMAccountName=*",
        "cdurand)(|(sAMAccountName=*",
        "EXAMPLE\\*",
        "*@example.test",
        "nobody",
        "EXAMPLE\\",
        "\\",
        "  ",
    ],
)
def test_ad_logins_are_not_filter_injections(username, tenant, make_ad_directory, ad_dir):  # type: ignore[no-untyped-def]
    make_ad_directory(tenant)
    assert authenticate(None, username=username, password=ad_dir.user_password, tenant="acme") is None


def _some_plain_user(ad_dir: AdDirectory, index: int):  # type: ignore[no-untyped-def]
    """A generated user no other test signs in with (the role holders come first)."""
    return [user for user in ad_dir.users[10:] if not user.disabled][index]


def test_a_locked_account_says_so(tenant, make_ad_directory, ad_dir, samba_ad):  # type: ignore[no-untyped-def]
    """AD's 775 (locked out after too many attempts) reaches the login form as plain words."""
    make_ad_directory(tenant)
    locked = _some_plain_user(ad_dir, 1)
    domain = ad_dir.base_dn
    conn = samba_ad.admin_connection()
    try:
        conn.modify_s(domain, [(ldap.MOD_REPLACE, "lockoutThreshold", [b"2"])])
        for _attempt in range(3):
            Client().post(reverse("login"), {"tenant": "acme", "username": locked.sam, "password": "wrong"})
        page = Client().post(
            reverse("login"), {"tenant": "acme", "username": locked.sam, "password": ad_dir.user_password}
        )
        assert "Le compte est verrouillé (trop d&#x27;essais)" in page.content.decode()
    finally:
        conn.modify_s(domain, [(ldap.MOD_REPLACE, "lockoutThreshold", [b"0"])])
        conn.modify_s(locked.dn(domain), [(ldap.MOD_REPLACE, "lockoutTime", [b"0"])])
        conn.unbind_s()


@pytest.mark.parametrize(
    ("code", "words"),
    [
        ("525", "introuvable"),
        ("52e", "mot de passe incorrect"),
        ("530", "restriction horaire"),
        ("531", "restriction de postes"),
        ("532", "a expiré : changez-le"),
        ("533", "désactivé"),
        ("701", "Le compte a expiré"),
        ("773", "doit être changé"),
        ("775", "verrouillé"),
    ],
)
def test_every_ad_bind_code_has_its_plain_message(code: str, words: str) -> None:
    """Samba does not produce them all (773 needs a Windows DC): AD's diagnostic message, as AD writes it."""
    from ldap_sync.client import AD_BIND_MESSAGES, ad_bind_reason

    info = f"80090308: LdapErr: DSID-0C09042A, comment: AcceptSecurityContext error, data {code}, v3839"
    error = ldap.INVALID_CREDENTIALS({"desc": "Invalid credentials", "info": info})
    assert ad_bind_reason(error) == code and words in AD_BIND_MESSAGES[code]
    assert ad_bind_reason(ldap.INVALID_CREDENTIALS({"desc": "Invalid credentials", "info": ""})) is None


def test_an_account_without_given_name_is_named_by_its_display_name(
    tenant, make_ad_directory, ad_dir, samba_ad
):  # type: ignore[no-untyped-def]
    make_ad_directory(tenant)
    dn = f"CN=Accueil Standard,OU=Services,{ad_dir.base_dn}"
    password = f'"{ad_dir.user_password}"'.encode("utf-16-le")
    conn = samba_ad.admin_connection()
    try:
        conn.add_s(
            dn,
            [
                ("objectClass", [b"user"]),
                ("sAMAccountName", [b"accueil"]),
                ("displayName", ["Accueil – Standard".encode()]),
                ("unicodePwd", [password]),
                ("userAccountControl", [b"66048"]),
            ],
        )
        conn.modify_s(ad_dir.group_dn("read_only"), [(ldap.MOD_ADD, "member", [dn.encode()])])
        user = authenticate(None, username="accueil", password=ad_dir.user_password, tenant="acme")
        assert user is not None and user.display_name == "Accueil – Standard"
    finally:
        conn.delete_s(dn)
        conn.unbind_s()


def test_ad_names_of_one_account_share_one_sign_in_allowance(  # type: ignore[no-untyped-def]
    tenant, make_ad_directory, ad_dir, samba_ad, settings
):
    """sAMAccountName, UPN and DOMAIN\\user are one account: alternating them does not buy more wrong passwords
    at the customer's AD. AD's own badPwdCount is the witness (Samba keeps it once the domain has a lockout
    threshold; 1000 here, so nothing locks)."""
    make_ad_directory(tenant)
    user = ad_dir.user("cdurand")
    dn = user.dn(ad_dir.base_dn)
    conn = samba_ad.admin_connection()

    def bad_passwords() -> int:
        found = conn.search_s(dn, ldap.SCOPE_BASE, attrlist=["badPwdCount"])
        return int(found[0][1].get("badPwdCount", [b"0"])[0])

    conn.modify_s(ad_dir.base_dn, [(ldap.MOD_REPLACE, "lockoutThreshold", [b"1000"])])
    try:
        start = bad_passwords()
        names = ["cdurand", user.upn, f"{ad_dir.netbios_domain}\\cdurand"]
        attacker = Client(REMOTE_ADDR="203.0.113.52")
        limit = settings.AXES_FAILURE_LIMIT
        statuses = [
            attacker.post(
                reverse("login"), {"tenant": "acme", "username": names[i % 3], "password": "wrong"}
            ).status_code
            for i in range(3 * limit)
        ]
        assert bad_passwords() - start == limit
        assert statuses == [200] * (limit - 1) + [429] * (len(statuses) - limit + 1)
    finally:
        conn.modify_s(ad_dir.base_dn, [(ldap.MOD_REPLACE, "lockoutThreshold", [b"0"])])
        conn.modify_s(dn, [(ldap.MOD_REPLACE, "badPwdCount", [b"0"])])
        conn.unbind_s()
