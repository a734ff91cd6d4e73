"""LDAP timeouts have real bounds (issue 14): 0 failed every LDAP login, 32,767 s held a web thread that long."""

from __future__ import annotations

import pytest
from django.urls import reverse

from ldap_sync.models import LdapDirectory
from tests.ldap.test_views import form_data

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    ("field", "value", "ok"),
    [
        ("network_timeout", 0, False),
        ("network_timeout", 31, False),
        ("network_timeout", 32767, False),
        ("network_timeout", 30, True),
        ("operation_timeout", 0, False),
        ("operation_timeout", 61, False),
        ("operation_timeout", 32767, False),
        ("operation_timeout", 1, True),
    ],
)
def test_ldap_timeouts_have_real_bounds(field, value, ok, admin_client_, tenant, slapd, demo_dir):
    response = admin_client_.post(
        reverse("ldap_sync:directory"), form_data(slapd, demo_dir, **{field: value})
    )
    if ok:
        assert response.status_code == 302
        assert getattr(LdapDirectory.unscoped.get(tenant=tenant), field) == value
    else:
        assert response.status_code == 400
        assert field in response.context["form"].errors
        assert not LdapDirectory.unscoped.exists()
