"""Admin > LDAP pages: who may do what, the configuration form, "Tester la connexion", "Synchroniser", OUs."""

from __future__ import annotations

import html

import pytest
from django.urls import reverse

from ldap_sync.models import LdapDirectory, LdapOrgUnit, LdapSyncRun, SyncStatus
from mdm.models import AuditEvent, Role
from tests.ldap.factories import LdapOrgUnitFactory, LdapSyncRunFactory

pytestmark = pytest.mark.django_db

DIRECTORY = reverse("ldap_sync:directory")


def form_data(slapd, demo_dir, **overrides):  # type: ignore[no-untyped-def]
    data = {
        "uri": slapd.uri,
        "bind_dn": demo_dir.service_bind_dn,
        "bind_password": demo_dir.service_password,
        "base_dn": demo_dir.base_dn,
        "ou_filter": "(objectClass=organizationalUnit)",
        "user_filter": "(objectClass=inetOrgPerson)",
        "uid_attribute": "uid",
        "email_attribute": "mail",
        "name_attribute": "cn",
        "network_timeout": 2,
        "operation_timeout": 5,
        "ca_certificate": "",
        "admin_group_dn": demo_dir.group_dn("admin"),
        "operator_group_dn": "",
        "readonly_group_dn": "",
    }
    data.update(overrides)
    return data


@pytest.mark.parametrize(
    ("name", "method", "allowed"),
    [
        ("ldap_sync:directory", "get", {Role.ADMIN, Role.OPERATOR, Role.READ_ONLY}),
        ("ldap_sync:directory", "post", {Role.ADMIN}),
        ("ldap_sync:test", "post", {Role.ADMIN}),
        ("ldap_sync:sync", "post", {Role.ADMIN, Role.OPERATOR}),
        ("ldap_sync:org_units", "post", {Role.ADMIN}),
        ("ldap_sync:runs", "get", {Role.ADMIN, Role.OPERATOR, Role.READ_ONLY}),
    ],
)
@pytest.mark.parametrize("role", [Role.ADMIN, Role.OPERATOR, Role.READ_ONLY])
def test_roles_on_every_view(name, method, allowed, role, tenant, make_user, client_for):
    user = make_user(tenant, role)
    response = getattr(client_for(user), method)(reverse(name))
    if role in allowed:
        assert response.status_code in (200, 302, 400)
    else:
        assert response.status_code == 403


@pytest.mark.parametrize("role", [Role.ADMIN, Role.OPERATOR, Role.READ_ONLY])
def test_run_detail_is_readable_by_every_role(role, tenant, make_user, client_for):
    run = LdapSyncRunFactory(
        tenant=tenant,
        log=[{"level": "warning", "msgid": "%(count)s utilisateurs lus.", "params": {"count": 3}}],
    )
    response = client_for(make_user(tenant, role)).get(reverse("ldap_sync:run", kwargs={"pk": run.pk}))
    assert response.status_code == 200
    assert "3 utilisateurs lus." in response.content.decode()


def test_admin_saves_the_configuration_and_never_sees_the_password_again(
    admin_client_, tenant, slapd, demo_dir
):
    response = admin_client_.post(DIRECTORY, form_data(slapd, demo_dir))
    assert response.status_code == 302
    directory = LdapDirectory.unscoped.get(tenant=tenant)
    assert directory.bind_password == demo_dir.service_password
    page = admin_client_.get(DIRECTORY).content.decode()
    assert demo_dir.service_password not in page
    assert "Un mot de passe de liaison est enregistré." in page

    # An empty password field keeps the stored one.
    admin_client_.post(
        DIRECTORY, form_data(slapd, demo_dir, bind_password="", base_dn="ou=Paris,dc=example,dc=com")
    )
    directory.refresh_from_db()
    assert directory.bind_password == demo_dir.service_password and directory.base_dn.startswith("ou=Paris")
    event = AuditEvent.unscoped.filter(tenant=tenant, action="ldap.directory.update").get()
    assert event.details == {"changed": ["base_dn"]}
    assert demo_dir.service_password not in str(AuditEvent.unscoped.values_list("details", flat=True))


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("uri", "http://ldap.example.com", "ldap://"),
        ("base_dn", "pas un DN", "DN n'est pas valide"),
        ("ou_filter", "objectClass=organizationalUnit", "Filtre mal formé"),
        ("user_filter", "(&(objectClass=person)", "Filtre mal formé"),
        ("email_attribute", "mail)(uid=*", "nom d'attribut"),
        ("ca_certificate", "not a certificate", "certificat PEM"),
    ],
)
def test_bad_configuration_input_is_refused_with_a_message(
    field, value, message, admin_client_, slapd, demo_dir
):
    response = admin_client_.post(DIRECTORY, form_data(slapd, demo_dir, **{field: value}))
    assert response.status_code == 400
    assert message in html.unescape(response.content.decode())
    assert not LdapDirectory.unscoped.exists()


def test_start_tls_with_ldaps_is_refused(admin_client_, slapd, demo_dir):
    response = admin_client_.post(DIRECTORY, form_data(slapd, demo_dir, uri=slapd.ldaps_uri, start_tls="on"))
    assert response.status_code == 400 and "StartTLS" in response.content.decode()


def test_connection_test_explains_what_works_and_what_fails(admin_client_, slapd, demo_dir):
    ok = admin_client_.post(
        reverse("ldap_sync:test"),
        form_data(slapd, demo_dir, uri=slapd.ldaps_uri, ca_certificate=slapd.ca_cert_pem),
    ).content.decode()
    assert "la connexion fonctionne" in ok and "Chiffrement TLS" in ok

    bad = admin_client_.post(
        reverse("ldap_sync:test"), form_data(slapd, demo_dir, bind_password="faux")
    ).content.decode()
    assert "la connexion échoue" in bad and "Identifiants refusés" in bad

    missing = admin_client_.post(
        reverse("ldap_sync:test"), form_data(slapd, demo_dir, base_dn="ou=Nulle Part,dc=example,dc=com")
    ).content.decode()
    assert "Le DN de base est introuvable" in missing
    assert not LdapDirectory.unscoped.exists()  # testing saves nothing


def test_connection_test_uses_the_stored_password_when_left_empty(
    admin_client_, tenant, make_directory, slapd, demo_dir
):
    make_directory(tenant)
    page = admin_client_.post(
        reverse("ldap_sync:test"), form_data(slapd, demo_dir, bind_password="")
    ).content.decode()
    assert "la connexion fonctionne" in page


def test_synchroniser_queues_a_run_that_imports_the_directory(
    tenant, operator_user, client_for, make_directory, django_capture_on_commit_callbacks
):
    make_directory(tenant)
    with django_capture_on_commit_callbacks(execute=True):
        response = client_for(operator_user).post(reverse("ldap_sync:sync"))
    run = LdapSyncRun.unscoped.get(tenant=tenant)
    assert response.status_code == 302 and response["Location"] == reverse(
        "ldap_sync:run", kwargs={"pk": run.pk}
    )
    assert run.status == SyncStatus.SUCCEEDED and run.requested_by == operator_user.username
    page = client_for(operator_user).get(DIRECTORY).content.decode()
    assert "Équipe Réseau" in page and "Réussie" in page


def test_synchroniser_without_configuration_says_so(admin_client_):
    response = admin_client_.post(reverse("ldap_sync:sync"), follow=True)
    assert "Configurez d&#x27;abord le serveur LDAP." in response.content.decode()


def test_choosing_ous_only_accepts_this_tenants_ous(admin_client_, tenant, other_tenant):
    mine = LdapOrgUnitFactory(tenant=tenant, name="Paris")
    theirs = LdapOrgUnitFactory(tenant=other_tenant, name="Secret")
    response = admin_client_.post(
        reverse("ldap_sync:org_units"), {"mode": "selected", "selected": [theirs.pk]}
    )
    assert response.status_code == 302
    theirs.refresh_from_db()
    assert not theirs.selected

    admin_client_.post(reverse("ldap_sync:org_units"), {"mode": "selected", "selected": [mine.pk]})
    mine.refresh_from_db()
    assert mine.selected and mine.added


def test_other_tenants_run_is_not_found(admin_client_, other_tenant):
    run = LdapSyncRunFactory(tenant=other_tenant)
    assert admin_client_.get(reverse("ldap_sync:run", kwargs={"pk": run.pk})).status_code == 404


def test_directory_page_shows_only_this_tenants_ous(admin_client_, tenant, other_tenant):
    LdapOrgUnitFactory(tenant=tenant, name="Lyon")
    LdapOrgUnitFactory(tenant=other_tenant, name="Globex Secret")
    page = admin_client_.get(DIRECTORY).content.decode()
    assert "Lyon" in page and "Globex Secret" not in page
    assert LdapOrgUnit.unscoped.count() == 2


def test_run_page_says_what_started_the_run_and_its_options(admin_client_, tenant):
    plain = LdapSyncRunFactory(tenant=tenant, trigger="manual", requested_by="alice@acme.test")
    body = html.unescape(
        admin_client_.get(reverse("ldap_sync:run", kwargs={"pk": plain.pk})).content.decode()
    )
    assert "Manuelle (alice@acme.test)" in body and "Demandée le" in body
    assert "les suppressions au-delà du seuil attendent la confirmation d'un administrateur" in body
    confirmed = LdapSyncRunFactory(
        tenant=tenant, trigger="manual", requested_by="alice@acme.test", confirmed_removals=["u1", "u2", "u3"]
    )
    body = html.unescape(
        admin_client_.get(reverse("ldap_sync:run", kwargs={"pk": confirmed.pk})).content.decode()
    )
    assert "peut supprimer les 3 entrées retenues par la synchronisation précédente" in body
