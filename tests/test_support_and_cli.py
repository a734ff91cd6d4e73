import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command

from mdm import services
from mdm.models import AuditEvent, Role, Tenant, User
from tests.factories import BlueprintFactory

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.django_db
def test_support_sees_every_tenant_in_django_admin(support_user, tenant, other_tenant, client_for):
    BlueprintFactory(tenant=tenant, name="Acme config")
    BlueprintFactory(tenant=other_tenant, name="Globex config")
    c = client_for(support_user)
    body = c.get("/support/mdm/blueprint/").content.decode()
    assert "Acme config" in body and "Globex config" in body
    assert c.get("/support/mdm/auditevent/").status_code == 200
    assert c.get("/support/mdm/tenant/").status_code == 200


@pytest.mark.django_db
def test_audit_record_keeps_actor_label_after_user_deletion(admin_user):
    event = services.audit_record(
        tenant=admin_user.tenant, actor=admin_user, action="x.y", target="t", details={"n": 1}
    )
    admin_user.delete()
    event.refresh_from_db()
    assert event.actor is None
    assert event.actor_label == "admin@acme.test"
    assert event.details == {"n": 1}


@pytest.mark.django_db
def test_tenant_create_and_list(monkeypatch):
    monkeypatch.setenv("ADMIN_PW", "correct horse battery staple")
    out = StringIO()
    call_command(
        "tenant_create",
        "acme",
        "--name",
        "ACME SAS",
        "--admin-email",
        "a@acme.fr",
        "--password-env",
        "ADMIN_PW",
        stdout=out,
    )
    tenant = Tenant.objects.get(slug="acme")
    admin = User.objects.get(username="a@acme.fr")
    assert admin.tenant == tenant and admin.role == Role.ADMIN
    assert admin.check_password("correct horse battery staple")
    assert AuditEvent.unscoped.filter(tenant=tenant, action="tenant.create").exists()
    out = StringIO()
    call_command("tenant_list", stdout=out)
    assert "acme" in out.getvalue() and "ACME SAS" in out.getvalue() and "1 tenant(s)" in out.getvalue()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "args,env,message",
    [
        (
            ["Not A Slug", "--name", "X", "--admin-email", "a@b.fr", "--password-env", "PW"],
            "long enough pw 123",
            "slug",
        ),
        (
            ["acme", "--name", "X", "--admin-email", "nope", "--password-env", "PW"],
            "long enough pw 123",
            "valid email",
        ),
        (["acme", "--name", "X", "--admin-email", "a@b.fr", "--password-env", "PW"], "", "unset or empty"),
        (
            ["acme", "--name", "X", "--admin-email", "a@b.fr", "--password-env", "PW"],
            "short",
            "Password rejected",
        ),
        (
            ["a" * 64, "--name", "X", "--admin-email", "a@b.fr", "--password-env", "PW"],
            "long enough pw 123",
            "longer than 63",
        ),
        (
            ["acme", "--name", "A\x00B", "--admin-email", "a@b.fr", "--password-env", "PW"],
            "long enough pw 123",
            "control characters",
        ),
        (
            ["acme", "--name", "N" * 201, "--admin-email", "a@b.fr", "--password-env", "PW"],
            "long enough pw 123",
            "1 to 200",
        ),
        (
            ["acme", "--name", "   ", "--admin-email", "a@b.fr", "--password-env", "PW"],
            "long enough pw 123",
            "1 to 200",
        ),
    ],
)
def test_tenant_create_rejects_bad_arguments_and_creates_nothing(args, env, message, monkeypatch):
    monkeypatch.setenv("PW", env)
    with pytest.raises(CommandError, match=message):
        call_command("tenant_create", *args)
    assert not Tenant.objects.exists()


@pytest.mark.django_db
def test_tenant_create_refuses_duplicates(tenant, monkeypatch):
    monkeypatch.setenv("PW", "long enough pw 123")
    with pytest.raises(CommandError, match="already exists"):
        call_command(
            "tenant_create", "acme", "--name", "X", "--admin-email", "z@b.fr", "--password-env", "PW"
        )


def production_env(**extra):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "MDM_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="mdm.settings",
        DJANGO_SECRET_KEY=Fernet.generate_key().decode() * 2,
        MDM_ENCRYPTION_KEYS=Fernet.generate_key().decode(),
        DJANGO_ALLOWED_HOSTS="mdm.example.com",
        **extra,
    )
    return env


def test_check_deploy_passes_with_production_environment():
    result = subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=production_env(),
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_refuses_to_start_without_keys():
    env = production_env()
    del env["MDM_ENCRYPTION_KEYS"]
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert result.returncode != 0
    assert "MDM_ENCRYPTION_KEYS must be set" in result.stderr
