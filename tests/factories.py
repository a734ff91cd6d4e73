"""factory_boy factories. Tenant-owned rows are created through the ``unscoped`` manager, with an explicit tenant."""

from __future__ import annotations

import io
import struct
import zipfile
from typing import Any

import factory
from django.core.files.base import ContentFile
from django.utils import timezone
from factory.django import DjangoModelFactory

from mdm.models import App, AppKind, AuditEvent, Blueprint, Platform, Role, Tenant, User


class TenantFactory(DjangoModelFactory):
    class Meta:
        model = Tenant
        django_get_or_create = ("slug",)

    slug = factory.Sequence(lambda n: f"tenant-{n}")
    name = factory.LazyAttribute(lambda o: f"Société {o.slug}")


class UserFactory(DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}@example.com")
    email = factory.LazyAttribute(lambda o: o.username)
    tenant = factory.SubFactory(TenantFactory)
    role = Role.ADMIN
    password = factory.PostGenerationMethodCall("set_password", "pw")

    @classmethod
    def _after_postgeneration(cls, instance: User, create: bool, results: Any = None) -> None:
        if create:
            instance.save()


class TenantOwnedFactory(DjangoModelFactory):
    class Meta:
        abstract = True

    tenant = factory.SubFactory(TenantFactory)

    @classmethod
    def _create(cls, model_class: type, *args: Any, **kwargs: Any) -> Any:
        return model_class.unscoped.create(*args, **kwargs)


class BlueprintFactory(TenantOwnedFactory):
    class Meta:
        model = Blueprint

    name = factory.Sequence(lambda n: f"Configuration {n}")
    platform = Platform.CHROMEOS
    settings = factory.LazyFunction(lambda: {"guest_mode": False})


class AppFactory(TenantOwnedFactory):
    class Meta:
        model = App

    name = factory.Sequence(lambda n: f"Appli {n}")
    kind = AppKind.ANDROID
    identifier = factory.Sequence(lambda n: f"com.example.app{n}")


def zip_bytes(entries: dict[str, bytes] | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in (entries or {"manifest.json": b'{"manifest_version": 3, "name": "Demo"}'}).items():
            # A fixed time: writestr(name) stamps the current time, so two calls a second apart differed.
            archive.writestr(zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0)), data)
    return buffer.getvalue()


def crx_bytes() -> bytes:
    """A CRX3 package: magic, version 3, a header of that length, then the ZIP archive."""
    header = b"\x12\x00" * 8
    return b"Cr24" + struct.pack("<II", 3, len(header)) + header + zip_bytes()


def apk_bytes() -> bytes:
    return zip_bytes({"AndroidManifest.xml": b"\x03\x00\x08\x00", "classes.dex": b"dex\n035\x00"})


class PackagedAppFactory(AppFactory):
    """An uploaded app with its package stored (under a random name, as the form stores it)."""

    kind = AppKind.UPLOADED
    identifier = factory.Sequence(lambda n: f"appli-{n}.crx")
    file = factory.LazyFunction(lambda: ContentFile(crx_bytes(), name="appli.crx"))
    file_name = "Appli école.crx"


class AuditEventFactory(TenantOwnedFactory):
    class Meta:
        model = AuditEvent

    actor_label = "someone@example.com"
    action = "test.action"


class GoogleIntegrationFactory(TenantOwnedFactory):
    """An integration row as the authorization stores it; its tokens are not valid at any Google."""

    class Meta:
        model = "chromeos.GoogleIntegration"

    status = "active"
    customer_id = factory.Sequence(lambda n: f"C0{n:07d}")
    domain = factory.LazyAttribute(lambda o: f"{o.tenant.slug}.example.com")
    admin_email = factory.LazyAttribute(lambda o: f"admin@{o.domain}")
    authorized_at = factory.LazyFunction(timezone.now)
    scopes = factory.LazyFunction(list)
    refresh_token = "1//factory-refresh-token"


def _tenant_integration(tenant: Tenant) -> Any:
    from chromeos.models import GoogleIntegration

    return GoogleIntegration.unscoped.filter(tenant=tenant).first() or GoogleIntegrationFactory(tenant=tenant)


class ChromeOSDeviceFactory(TenantOwnedFactory):
    class Meta:
        model = "chromeos.ChromeOSDevice"

    # The tenant's one integration (created on first use): several devices of a tenant share it.
    integration = factory.LazyAttribute(lambda o: _tenant_integration(o.tenant))
    device_id = factory.Sequence(lambda n: f"dev-{n:08d}")
    serial_number = factory.Sequence(lambda n: f"5CD{n:07d}")
    status = "ACTIVE"
    model = "HP Chromebook 14 G7"
    os_version = "128.0.6613.98"
    org_unit_path = "/"


class DeviceActionJobFactory(TenantOwnedFactory):
    """A drafted device action on one fresh device of the tenant (its item included)."""

    class Meta:
        model = "chromeos.DeviceActionJob"
        skip_postgeneration_save = True

    action = "disable"
    total = 1

    @factory.post_generation
    def with_device(obj: Any, create: bool, extracted: Any, **kwargs: Any) -> None:
        if not create:
            return
        from chromeos.models import DeviceActionItem

        device = extracted or ChromeOSDeviceFactory(tenant=obj.tenant)
        DeviceActionItem.unscoped.create(
            tenant=obj.tenant,
            job=obj,
            device=device,
            google_device_id=device.device_id,
            serial_number=device.serial_number,
        )


class OrgUnitFactory(TenantOwnedFactory):
    """A Google OU of the tenant's integration (not linked to LDAP: "non prise en charge")."""

    class Meta:
        model = "chromeos.OrgUnit"

    integration = factory.LazyAttribute(lambda o: _tenant_integration(o.tenant))
    org_unit_id = factory.Sequence(lambda n: f"03ou{n:011d}")
    name = factory.Sequence(lambda n: f"Unité {n}")
    path = factory.LazyAttribute(lambda o: f"/{o.name}")
    parent_org_unit_id = "03rootou00000000"


class PolicyAssignmentFactory(TenantOwnedFactory):
    """A Blueprint assigned to a fresh OU of the tenant, not applied."""

    class Meta:
        model = "chromeos.PolicyAssignment"

    org_unit = factory.SubFactory(OrgUnitFactory, tenant=factory.SelfAttribute("..tenant"))
    integration = factory.LazyAttribute(lambda o: o.org_unit.integration)
    blueprint = factory.SubFactory(BlueprintFactory, tenant=factory.SelfAttribute("..tenant"))


class SavedDeviceViewFactory(TenantOwnedFactory):
    """A saved view of the fleet table, shared with its tenant (its owner a fresh operator of that tenant)."""

    class Meta:
        model = "chromeos.SavedDeviceView"

    owner = factory.LazyAttribute(lambda o: UserFactory(tenant=o.tenant, role="operator"))
    name = factory.Sequence(lambda n: f"Vue {n}")
    query = "status=ACTIVE"
    shared = True
