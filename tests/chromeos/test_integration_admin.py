"""django-admin lists integrations per tenant with their status, and never shows a token."""

from __future__ import annotations

from django.urls import reverse

from tests.factories import GoogleIntegrationFactory


def test_changelist_lists_integrations_per_tenant_with_status(support_user, client_for, tenant, other_tenant):
    acme = GoogleIntegrationFactory(tenant=tenant, domain="acme.example", access_token="ya29.acme-access")
    GoogleIntegrationFactory(tenant=other_tenant, domain="globex.example", status="reauth_required")
    page = (
        client_for(support_user).get(reverse("admin:chromeos_googleintegration_changelist")).content.decode()
    )
    assert "acme.example" in page and "globex.example" in page
    assert ">acme<" in page and ">globex<" in page
    assert "Réautorisation requise" in page and "Active" in page
    assert acme.refresh_token not in page and acme.access_token not in page


def test_change_page_never_shows_the_tokens(support_user, client_for, google_integration):
    url = reverse("admin:chromeos_googleintegration_change", args=[google_integration.pk])
    response = client_for(support_user).get(url)
    assert response.status_code == 200
    page = response.content.decode()
    assert google_integration.domain in page and google_integration.customer_id in page
    for secret in (google_integration.refresh_token, google_integration.access_token):
        assert secret not in page
        assert secret[:20] not in page
    assert 'field-refresh_token"' not in page and 'field-access_token"' not in page
    assert 'name="refresh_token"' not in page and 'name="access_token"' not in page


def test_support_cannot_add_or_delete_integrations(support_user, client_for, google_integration):
    client = client_for(support_user)
    assert client.get(reverse("admin:chromeos_googleintegration_add")).status_code == 403
    url = reverse("admin:chromeos_googleintegration_delete", args=[google_integration.pk])
    assert client.get(url).status_code == 403
