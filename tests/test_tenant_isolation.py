"""Tenant isolation of every console URL: a user of tenant A asking for tenant B's objects gets 404."""

import pytest
from django.urls import reverse

from tests.sweep import SWEEP, console_url_patterns

PATTERNS = sorted(console_url_patterns(), key=lambda item: item[0])
WITH_ARGS = [name for name, p in PATTERNS if p.pattern.regex.groups]


def test_every_url_with_arguments_is_in_the_sweep():
    missing = sorted(set(WITH_ARGS) - set(SWEEP))
    assert not missing, f"Add these URL patterns to tests/sweep.py SWEEP: {missing}"


@pytest.mark.django_db
@pytest.mark.parametrize("name", WITH_ARGS)
@pytest.mark.parametrize("method", ["get", "post"])
def test_other_tenants_objects_answer_404(name, method, admin_user, other_tenant, client_for):
    url = reverse(name, kwargs=SWEEP[name](other_tenant))
    response = getattr(client_for(admin_user), method)(url)
    assert response.status_code == 404, f"{method.upper()} {url} answered {response.status_code}"


@pytest.mark.django_db
@pytest.mark.parametrize("name", WITH_ARGS)
def test_own_objects_are_reachable(name, admin_user, client_for):
    url = reverse(name, kwargs=SWEEP[name](admin_user.tenant))
    assert client_for(admin_user).get(url).status_code in (200, 302)


@pytest.mark.django_db
@pytest.mark.parametrize("name,pattern", PATTERNS, ids=[n for n, _ in PATTERNS])
def test_anonymous_users_are_sent_to_login(name, pattern, tenant, client):
    kwargs = SWEEP[name](tenant) if pattern.pattern.regex.groups else {}
    response = client.get(reverse(name, kwargs=kwargs))
    assert response.status_code == 302
    assert response["Location"].startswith(reverse("login"))


@pytest.mark.django_db
@pytest.mark.parametrize("name,pattern", PATTERNS, ids=[n for n, _ in PATTERNS])
def test_support_staff_use_django_admin_not_console_pages(name, pattern, tenant, support_user, client_for):
    kwargs = SWEEP[name](tenant) if pattern.pattern.regex.groups else {}
    assert client_for(support_user).get(reverse(name, kwargs=kwargs)).status_code == 403
