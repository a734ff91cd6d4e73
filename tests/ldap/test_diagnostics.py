"""What "Tester la connexion" reports, step by step."""

from __future__ import annotations

from ldap_sync.diagnostics import (
    STEP_BASE_DN,
    STEP_BIND,
    STEP_CONNECT,
    STEP_OU_FILTER,
    STEP_TLS,
    STEP_USER_FILTER,
    StepStatus,
    check_connection,
)
from ldap_sync.slapd import TlsMaterial, free_port

FILTERS = {"ou_filter": "(objectClass=organizationalUnit)", "user_filter": "(objectClass=inetOrgPerson)"}


def statuses(report):
    return {step.label: step.status for step in report.steps}


def test_everything_works(slapd, service_settings):
    report = check_connection(
        service_settings(uri=slapd.ldaps_uri, ca_cert_pem=slapd.ca_cert_pem), base_dn=slapd.base_dn, **FILTERS
    )
    assert report.ok
    assert statuses(report) == dict.fromkeys(
        [STEP_CONNECT, STEP_TLS, STEP_BIND, STEP_BASE_DN, STEP_OU_FILTER, STEP_USER_FILTER], StepStatus.OK
    )


def test_unreachable_host_fails_the_first_step(slapd, service_settings):
    report = check_connection(
        service_settings(uri=f"ldap://127.0.0.1:{free_port()}"), base_dn=slapd.base_dn, **FILTERS
    )
    assert not report.ok
    assert statuses(report)[STEP_CONNECT] == StepStatus.FAILED
    assert statuses(report)[STEP_BIND] == StepStatus.SKIPPED
    assert report.first_error.error_code == "unreachable"


def test_tls_failure_names_the_tls_step(slapd, service_settings):
    wrong_ca = TlsMaterial.generate("Wrong CA").ca_cert_pem
    report = check_connection(
        service_settings(start_tls=True, ca_cert_pem=wrong_ca), base_dn=slapd.base_dn, **FILTERS
    )
    assert statuses(report)[STEP_CONNECT] == StepStatus.OK
    assert statuses(report)[STEP_TLS] == StepStatus.FAILED


def test_bad_credentials(slapd, service_settings):
    report = check_connection(service_settings(bind_password="wrong"), base_dn=slapd.base_dn, **FILTERS)
    assert report.first_error.label == STEP_BIND and report.first_error.error_code == "invalid_credentials"


def test_base_dn_not_found(service_settings):
    report = check_connection(service_settings(), base_dn="ou=Absent,dc=example,dc=com", **FILTERS)
    assert report.first_error.label == STEP_BASE_DN
    assert statuses(report)[STEP_OU_FILTER] == StepStatus.SKIPPED


def test_filter_syntax_error_and_empty_filter(slapd, service_settings):
    report = check_connection(
        service_settings(),
        base_dn=slapd.base_dn,
        ou_filter="(objectClass=organizationalUnit",
        user_filter="(uid=nobody)",
    )
    assert statuses(report)[STEP_OU_FILTER] == StepStatus.FAILED
    assert report.first_error.error_code == "filter_syntax"
    assert statuses(report)[STEP_USER_FILTER] == StepStatus.WARNING
