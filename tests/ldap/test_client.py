"""The LDAP client against a real slapd: paging, TLS, and every failure as a typed, readable error."""

from __future__ import annotations

import pytest

from ldap_sync.client import (
    LdapBaseDnNotFound,
    LdapClient,
    LdapFilterError,
    LdapInvalidCredentials,
    LdapInvalidDn,
    LdapReferral,
    LdapServerDown,
    LdapSizeLimitExceeded,
    LdapTimeout,
    LdapTlsError,
    LdapUnreachable,
    dn_is_under,
    dn_rdns,
    escape_filter_value,
    filter_with_equality,
    looks_like_filter,
    normalize_dn,
    validate_uri,
)
from ldap_sync.slapd import TlsMaterial, free_port

PEOPLE = "(objectClass=inetOrgPerson)"
OUS = "(objectClass=organizationalUnit)"


def test_paged_search_lists_more_entries_than_the_size_limit(slapd, service_settings, demo_dir):
    with LdapClient(service_settings(page_size=40)) as client:
        search = client.search(slapd.base_dn, PEOPLE, ["mail", "entryUUID"])
        people = list(search)

    assert len(people) == len(demo_dir.people) > slapd.size_limit
    assert search.complete and search.pages >= len(people) // 40
    assert all(person.first("entryUUID") for person in people)
    assert {person.first("mail") for person in people} == {person.mail for person in demo_dir.people}


def test_plain_search_of_the_same_listing_hits_the_size_limit(slapd, service_settings):
    import ldap

    with LdapClient(service_settings()) as client, pytest.raises(ldap.SIZELIMIT_EXCEEDED):
        client.connection.search_s(slapd.base_dn, ldap.SCOPE_SUBTREE, PEOPLE)


def test_non_ascii_dns_and_values_come_back_as_text(slapd, service_settings):
    with LdapClient(service_settings()) as client:
        ous = {entry.dn: entry for entry in client.search(slapd.base_dn, OUS, ["ou"])}
        network = client.read_entry("ou=Équipe Réseau,ou=Paris,dc=example,dc=com", ["ou"])

    assert "ou=Équipe Réseau,ou=Paris,dc=example,dc=com" in ous
    assert network is not None and network.first("ou") == "Équipe Réseau"


def test_ldaps_with_the_right_ca_certificate(slapd, service_settings):
    with LdapClient(service_settings(uri=slapd.ldaps_uri, ca_cert_pem=slapd.ca_cert_pem)) as client:
        assert client.check_base_dn(slapd.base_dn).dn == slapd.base_dn


def test_start_tls_with_the_right_ca_certificate(slapd, service_settings):
    with LdapClient(service_settings(start_tls=True, ca_cert_pem=slapd.ca_cert_pem)) as client:
        assert client.check_base_dn(slapd.base_dn).dn == slapd.base_dn


@pytest.fixture(scope="module")
def foreign_ca() -> str:
    return TlsMaterial.generate("Some other CA").ca_cert_pem


def test_ldaps_with_a_wrong_ca_certificate_is_a_tls_failure(slapd, service_settings, foreign_ca):
    with pytest.raises(LdapTlsError) as caught:
        LdapClient(service_settings(uri=slapd.ldaps_uri, ca_cert_pem=foreign_ca)).open()
    assert "certificat" in caught.value.message


def test_start_tls_with_a_wrong_ca_certificate_is_a_tls_failure(service_settings, foreign_ca):
    with pytest.raises(LdapTlsError):
        LdapClient(service_settings(start_tls=True, ca_cert_pem=foreign_ca)).open()


def test_ldaps_on_a_plain_ldap_port_is_a_tls_failure(slapd, service_settings):
    uri = slapd.uri.replace("ldap://", "ldaps://")
    with pytest.raises(LdapTlsError):
        LdapClient(service_settings(uri=uri, ca_cert_pem=slapd.ca_cert_pem)).open()


def test_closed_port_is_unreachable(service_settings):
    with pytest.raises(LdapUnreachable) as caught:
        LdapClient(service_settings(uri=f"ldap://127.0.0.1:{free_port()}")).open()
    assert caught.value.retryable


def test_unknown_host_is_unreachable_with_a_dns_message(service_settings):
    with pytest.raises(LdapUnreachable) as caught:
        LdapClient(service_settings(uri="ldap://ldap.does-not-exist.invalid")).open()
    assert "DNS" in caught.value.message


def test_wrong_password_is_bad_credentials_and_never_echoes_the_password(service_settings):
    with pytest.raises(LdapInvalidCredentials) as caught:
        LdapClient(service_settings(bind_password="not-the-password")).open()
    assert "not-the-password" not in str(caught.value)


def test_empty_password_is_refused_before_any_unauthenticated_bind(service_settings):
    with pytest.raises(LdapInvalidCredentials):
        LdapClient(service_settings(bind_password="")).open()


def test_malformed_bind_dn(service_settings):
    with pytest.raises(LdapInvalidDn):
        LdapClient(service_settings(bind_dn="not a dn")).open()


def test_missing_base_dn(service_settings):
    with LdapClient(service_settings()) as client, pytest.raises(LdapBaseDnNotFound):
        client.check_base_dn("ou=Nulle Part,dc=example,dc=com")
    with LdapClient(service_settings()) as client, pytest.raises(LdapBaseDnNotFound):
        list(client.search("ou=Nulle Part,dc=example,dc=com", OUS, ["ou"]))


@pytest.mark.parametrize("bad_filter", ["(objectClass=*", "(&(ou=a)(ou=b)", "((ou=a)"])
def test_filter_syntax_error(slapd, service_settings, bad_filter):
    with LdapClient(service_settings()) as client, pytest.raises(LdapFilterError):
        client.check_filter(slapd.base_dn, bad_filter)


def test_form_input_cannot_inject_into_a_filter(slapd, service_settings):
    hostile = "*)(uid=*"
    with LdapClient(service_settings()) as client:
        found = list(client.search(slapd.base_dn, filter_with_equality(PEOPLE, "uid", hostile), ["uid"]))
        wildcard = list(client.search(slapd.base_dn, filter_with_equality(PEOPLE, "uid", "*"), ["uid"]))
    assert found == [] and wildcard == []
    assert escape_filter_value("a*(b)\\c\0") == r"a\2a\28b\29\5cc\00"


def test_dn_with_escaped_characters_round_trips(scratch_ou, service_settings):
    ou = scratch_ou.add_ou("Ventes, Export + Après-vente")
    with LdapClient(service_settings()) as client:
        (entry,) = client.search(ou, OUS, ["ou"])
    assert entry.first("ou") == "Ventes, Export + Après-vente"
    assert dn_rdns(entry.dn)[0] == ("ou", "Ventes, Export + Après-vente")


def test_continuation_references_are_recorded_not_followed(scratch_ou, service_settings):
    scratch_ou.add_ou("Local")
    delegated = f"ou=Délégué,{scratch_ou.dn}"
    scratch_ou.add(
        delegated,
        {
            "objectClass": ["referral", "extensibleObject"],
            "ou": ["Délégué"],
            "ref": [f"ldap://other.example.net/{delegated}"],
        },
        manage_dsa_it=True,
    )
    with LdapClient(service_settings()) as client:
        search = client.search(scratch_ou.dn, OUS, ["ou"])
        names = [entry.first("ou") for entry in search]
        assert search.complete
        assert names == [scratch_ou.name, "Local"]
        assert len(search.references) == 1 and search.references[0].startswith("ldap://other.example.net/")

        with pytest.raises(LdapReferral):
            list(client.search(f"ou=Sous,{delegated}", OUS, ["ou"]))


def test_paged_total_limit_is_a_size_limit_error(own_slapd, service_settings):
    server = own_slapd(size_limit=100, paged_total_limit="hard")
    with LdapClient(service_settings(server)) as client, pytest.raises(LdapSizeLimitExceeded) as caught:
        list(client.search(server.base_dn, PEOPLE, ["uid"]))
    assert "rien n'a été supprimé" in caught.value.message


def test_server_stopping_mid_listing_is_server_down(own_slapd, service_settings):
    server = own_slapd()
    with LdapClient(service_settings(server, page_size=20)) as client:
        entries = iter(client.search(server.base_dn, PEOPLE, ["uid"]))
        next(entries)
        server.stop()
        with pytest.raises(LdapServerDown) as caught:
            list(entries)
    assert caught.value.retryable


def test_hung_server_is_a_timeout(own_slapd, service_settings):
    server = own_slapd()
    with LdapClient(service_settings(server, operation_timeout=0.5, page_size=20)) as client:
        entries = iter(client.search(server.base_dn, PEOPLE, ["uid"]))
        next(entries)
        server.pause()
        try:
            with pytest.raises(LdapTimeout):
                list(entries)
        finally:
            server.resume()


def test_helpers():
    assert validate_uri("ldaps://ldap.example.com:636") is None
    assert validate_uri("ldap://127.0.0.1:389") is None
    assert validate_uri("http://ldap.example.com") is not None
    assert validate_uri("ldap://a ldap://b") is not None
    assert looks_like_filter("(&(objectClass=person)(cn=a\\29b))")
    assert not looks_like_filter("objectClass=person")
    assert not looks_like_filter("(a=b))(")
    assert dn_is_under("ou=Ventes,OU=paris,dc=example,dc=com", "ou=Paris,dc=example,dc=com")
    assert not dn_is_under("ou=Paris,dc=example,dc=com", "ou=Ventes,ou=Paris,dc=example,dc=com")
    assert normalize_dn("OU=Ventes, dc=example,DC=com") == "ou=Ventes,dc=example,dc=com"
