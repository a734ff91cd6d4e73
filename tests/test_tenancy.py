import pytest
from django.apps import apps

from mdm.models import Blueprint
from mdm.tenancy import NoCurrentTenant, TenantOwnedModel, TenantScopedManager, tenant_context
from tests.factories import BlueprintFactory


def tenant_owned_models():
    return [m for m in apps.get_models() if issubclass(m, TenantOwnedModel)]


def test_every_tenant_owned_model_defaults_to_the_scoped_manager():
    models = tenant_owned_models()
    assert Blueprint in models
    for model in models:
        assert isinstance(model._default_manager, TenantScopedManager), model
        assert model._base_manager is model.unscoped, model


@pytest.mark.django_db
@pytest.mark.parametrize("model", tenant_owned_models(), ids=lambda m: m._meta.label)
def test_default_access_path_refuses_to_run_without_a_tenant(model):
    with pytest.raises(NoCurrentTenant):
        list(model.objects.all())


@pytest.mark.django_db
def test_default_access_path_sees_only_the_current_tenant(tenant, other_tenant):
    mine = BlueprintFactory(tenant=tenant, name="Mine")
    BlueprintFactory(tenant=other_tenant, name="Theirs")
    with tenant_context(tenant):
        assert list(Blueprint.objects.all()) == [mine]
        assert not Blueprint.objects.filter(name="Theirs").exists()
    with tenant_context(other_tenant):
        assert list(Blueprint.objects.values_list("name", flat=True)) == ["Theirs"]
    assert Blueprint.unscoped.count() == 2


@pytest.mark.django_db
def test_save_in_a_tenant_context_assigns_that_tenant(tenant):
    with tenant_context(tenant):
        bp = Blueprint(name="Auto")
        bp.save()
    assert bp.tenant == tenant


@pytest.mark.django_db
def test_requests_run_in_the_signed_in_users_tenant(admin_user, other_tenant, client_for):
    BlueprintFactory(tenant=admin_user.tenant, name="Visible")
    BlueprintFactory(tenant=other_tenant, name="Invisible")
    body = client_for(admin_user).get("/configurations/").content.decode()
    assert "Visible" in body
    assert "Invisible" not in body
