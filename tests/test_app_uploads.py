"""App packages: size and type checked (extension and content), stored under a random name, replaced files
removed, served only through the download view; apps and Blueprints deletable unless still assigned."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from chromeos.models import AppContext, InstallType, PolicyAssignment
from mdm.models import App, AppKind, AuditEvent, Blueprint
from mdm.uploads import CappedTemporaryFileUploadHandler
from tests.factories import (
    AppFactory,
    BlueprintFactory,
    OrgUnitFactory,
    PackagedAppFactory,
    PolicyAssignmentFactory,
    apk_bytes,
    crx_bytes,
    zip_bytes,
)

pytestmark = pytest.mark.django_db

CREATE = reverse("mdm:app_create")


def stored_files(media_root: Path) -> list[Path]:
    return sorted(p for p in media_root.rglob("*") if p.is_file())


def post_app(client, name: str, content: bytes, url: str = CREATE, **extra):  # type: ignore[no-untyped-def]
    data = {"name": "Appli", "kind": AppKind.UPLOADED, "identifier": "appli-ecole", **extra}
    data["file"] = SimpleUploadedFile(name, content, content_type="application/octet-stream")
    return client.post(url, data)


@pytest.mark.parametrize(
    "name,content",
    [
        ("page.html", b"<html><script>alert(1)</script></html>"),
        ("logo.svg", b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'),
        ("setup.exe", b"MZ\x90\x00" + b"\x00" * 200),
        ("setup.crx.exe", crx_bytes()),
        ("sans-extension", crx_bytes()),
        # Content that is not what the extension says.
        ("setup.crx", b"MZ\x90\x00" + b"\x00" * 200),
        ("page.zip", b"<html></html>"),
        ("app.apk", zip_bytes()),  # a ZIP, but no AndroidManifest.xml
        ("broken.zip", b"PK\x03\x04" + b"\x00" * 60),
        ("vide.crx", b""),
    ],
)
def test_refused_packages_are_neither_stored_nor_saved(admin_client_, media_root, name, content):
    response = post_app(admin_client_, name, content)
    assert response.status_code == 400
    assert response.context["form"].errors["file"]
    assert not App.unscoped.exists()
    assert stored_files(media_root) == []


def test_a_package_over_the_size_limit_is_refused(admin_client_, media_root, settings):
    settings.APP_UPLOAD_MAX_BYTES = 200
    response = post_app(admin_client_, "gros.crx", crx_bytes() + b"\x00" * 300)
    assert response.status_code == 400
    assert "la limite est de 200" in response.context["form"].errors["file"][0]
    assert stored_files(media_root) == []


@pytest.mark.parametrize(
    "name,content", [("Mon Appli.CRX", crx_bytes()), ("kiosque.zip", zip_bytes()), ("app.apk", apk_bytes())]
)
def test_accepted_packages_are_stored_under_a_random_name(admin_client_, media_root, name, content):
    response = post_app(admin_client_, name, content)
    assert response.status_code == 302
    app = App.unscoped.get()
    assert app.file_name == name
    assert app.file_size == len(content)
    assert len(app.file_sha256) == 64
    [stored] = stored_files(media_root)
    # Random: 32 hex digits, nothing of the uploader's name.
    assert len(stored.stem) == 32 and int(stored.stem, 16) >= 0
    assert stored.suffix == Path(name).suffix.lower()
    assert stored.read_bytes() == content


def test_replacing_a_package_removes_the_old_file(
    admin_client_, media_root, tenant, django_capture_on_commit_callbacks
):
    post_app(admin_client_, "v1.crx", crx_bytes())
    app = App.unscoped.get()
    [first] = stored_files(media_root)
    with django_capture_on_commit_callbacks(execute=True):
        response = post_app(admin_client_, "v2.zip", zip_bytes(), url=reverse("mdm:app_edit", args=[app.pk]))
    assert response.status_code == 302
    [second] = stored_files(media_root)
    assert second != first and second.suffix == ".zip"
    app.refresh_from_db()
    assert app.file_name == "v2.zip"


def test_clearing_a_package_removes_the_file(
    admin_client_, media_root, tenant, django_capture_on_commit_callbacks
):
    app = PackagedAppFactory(tenant=tenant, kind=AppKind.ANDROID, identifier="com.example.app")
    assert len(stored_files(media_root)) == 1
    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client_.post(
            reverse("mdm:app_edit", args=[app.pk]),
            {"name": app.name, "kind": app.kind, "identifier": app.identifier, "file-clear": "on"},
        )
    assert response.status_code == 302
    assert stored_files(media_root) == []
    app.refresh_from_db()
    assert not app.file and app.file_name == ""


def test_an_uploaded_app_cannot_lose_its_package(admin_client_, media_root, tenant):
    app = PackagedAppFactory(tenant=tenant)
    response = admin_client_.post(
        reverse("mdm:app_edit", args=[app.pk]),
        {"name": app.name, "kind": app.kind, "identifier": app.identifier, "file-clear": "on"},
    )
    assert response.status_code == 400
    assert len(stored_files(media_root)) == 1


def test_the_current_file_link_downloads_through_the_console(readonly_user, client_for, tenant):
    app = PackagedAppFactory(tenant=tenant)
    client = client_for(readonly_user)
    page = client.get(reverse("mdm:app_edit", args=[app.pk])).content.decode()
    download = reverse("mdm:app_download", args=[app.pk])
    # « Actuellement » names the package as uploaded and links the download view, not a media URL.
    assert f'<a href="{download}">Appli école.crx</a>' in page
    assert "/media/" not in page

    response = client.get(download)
    assert response.status_code == 200
    assert response["Content-Type"] == "application/octet-stream"
    assert response["Content-Disposition"].startswith("attachment;")
    assert "Appli%20%C3%A9cole.crx" in response["Content-Disposition"]
    assert response["X-Content-Type-Options"] == "nosniff"
    assert b"".join(response.streaming_content) == crx_bytes()


def test_stored_packages_have_no_public_url(client, admin_client_, tenant):
    app = PackagedAppFactory(tenant=tenant)
    assert client.get("/" + app.file.url.lstrip("/")).status_code == 404
    assert admin_client_.get("/" + app.file.url.lstrip("/")).status_code == 404


def test_an_app_without_package_has_nothing_to_download(admin_client_, tenant):
    app = AppFactory(tenant=tenant)
    assert admin_client_.get(reverse("mdm:app_download", args=[app.pk])).status_code == 404


# -- deleting -------------------------------------------------------------------------------------------------
def test_an_unassigned_app_is_deleted_with_its_package_and_audited(
    admin_client_, admin_user, media_root, tenant, django_capture_on_commit_callbacks
):
    app = PackagedAppFactory(tenant=tenant, name="Lecteur PDF")
    url = reverse("mdm:app_delete", args=[app.pk])
    page = admin_client_.get(url).content.decode()
    assert "Supprimer définitivement" in page

    with django_capture_on_commit_callbacks(execute=True):
        response = admin_client_.post(url)
    assert response.status_code == 302 and response["Location"] == reverse("mdm:app_list")
    assert not App.unscoped.filter(pk=app.pk).exists()
    assert stored_files(media_root) == []
    event = AuditEvent.unscoped.get(action="app.delete")
    assert event.actor == admin_user and event.target == "Lecteur PDF"
    assert event.details["file"]["name"] == "Appli école.crx"


def test_an_unassigned_blueprint_is_deleted_and_audited(client_for, operator_user, tenant):
    bp = BlueprintFactory(tenant=tenant, name="Examens")
    response = client_for(operator_user).post(reverse("mdm:blueprint_delete", args=[bp.pk]))
    assert response.status_code == 302
    assert not Blueprint.unscoped.filter(pk=bp.pk).exists()
    event = AuditEvent.unscoped.get(action="blueprint.delete")
    assert event.target == "Examens" and event.details["settings"] == {"guest_mode": False}


def test_an_assigned_blueprint_is_not_deleted_and_its_assignments_are_listed(admin_client_, tenant):
    assignment = PolicyAssignmentFactory(
        tenant=tenant, org_unit=OrgUnitFactory(tenant=tenant, path="/Lycée/CDI")
    )
    url = reverse("mdm:blueprint_delete", args=[assignment.blueprint.pk])
    page = admin_client_.get(url).content.decode()
    assert "/Lycée/CDI" in page and "Supprimer définitivement" not in page
    assert reverse("chromeos:policy_assignment", args=[assignment.pk]) in page

    response = admin_client_.post(url)
    assert response.status_code == 409
    assert "/Lycée/CDI" in response.content.decode()
    assert Blueprint.unscoped.filter(pk=assignment.blueprint.pk).exists()
    assert PolicyAssignment.unscoped.filter(pk=assignment.pk).exists()
    assert not AuditEvent.unscoped.filter(action="blueprint.delete").exists()


def test_an_assigned_app_is_not_deleted(admin_client_, tenant, media_root):
    app = PackagedAppFactory(tenant=tenant)
    PolicyAssignmentFactory(
        tenant=tenant,
        org_unit=OrgUnitFactory(tenant=tenant, path="/Collège"),
        blueprint=None,
        app=app,
        app_context=AppContext.USERS,
        install_type=InstallType.FORCE_INSTALL,
    )
    response = admin_client_.post(reverse("mdm:app_delete", args=[app.pk]))
    assert response.status_code == 409
    assert "/Collège" in response.content.decode()
    assert App.unscoped.filter(pk=app.pk).exists()
    assert len(stored_files(media_root)) == 1


def test_read_only_users_cannot_delete(readonly_user, client_for, tenant):
    bp = BlueprintFactory(tenant=tenant)
    app = AppFactory(tenant=tenant)
    c = client_for(readonly_user)
    assert c.post(reverse("mdm:blueprint_delete", args=[bp.pk])).status_code == 403
    assert c.post(reverse("mdm:app_delete", args=[app.pk])).status_code == 403
    assert Blueprint.unscoped.filter(pk=bp.pk).exists() and App.unscoped.filter(pk=app.pk).exists()


def test_an_oversized_upload_is_not_written_to_disk_past_the_limit(settings, rf):
    settings.APP_UPLOAD_MAX_BYTES = 1000
    handler = CappedTemporaryFileUploadHandler(rf.post("/"))
    handler.new_file("file", "gros.crx", "application/octet-stream", 10_000)
    for start in range(0, 10_000, 500):
        handler.receive_data_chunk(b"x" * 500, start)
    upload = handler.file_complete(10_000)
    assert upload.size == 10_000  # the form refuses it by its real size...
    assert (
        Path(upload.temporary_file_path()).stat().st_size <= 1000
    )  # ...and the disk holds no more than the limit


def test_an_oversized_upload_through_the_form_says_its_size(admin_client_, media_root, settings):
    settings.APP_UPLOAD_MAX_BYTES = 2000
    settings.FILE_UPLOAD_MAX_MEMORY_SIZE = 0  # through the temporary-file handler, as a large upload goes
    response = post_app(admin_client_, "gros.crx", crx_bytes() + b"\x00" * 5000)
    assert response.status_code == 400
    assert "la limite est de" in response.context["form"].errors["file"][0]
    assert stored_files(media_root) == []


def test_support_sees_the_package_but_cannot_swap_it(support_user, client_for, tenant):
    app = PackagedAppFactory(tenant=tenant)
    page = client_for(support_user).get(f"/support/mdm/app/{app.pk}/change/").content.decode()
    assert "Appli école.crx" in page
    assert 'type="file"' not in page and "/media/" not in page


def test_deleting_a_tenant_removes_its_packages(tenant, media_root, django_capture_on_commit_callbacks):
    PackagedAppFactory(tenant=tenant)
    PackagedAppFactory(tenant=tenant)
    assert len(stored_files(media_root)) == 2
    with django_capture_on_commit_callbacks(execute=True):
        tenant.delete()
    assert stored_files(media_root) == []


def test_a_spoofing_file_name_is_neutralised_in_the_download(admin_client_, tenant):
    # Django drops unprintable characters from uploaded names; a name stored before (or by another path) may
    # still hold one, and the download must not hand it raw to the admin's system.
    app = PackagedAppFactory(tenant=tenant, file_name="doc\u202efdp.crx")
    disposition = admin_client_.get(reverse("mdm:app_download", args=[app.pk]))["Content-Disposition"]
    assert "%E2%80%AE" not in disposition
    assert "%E2%9F%A8U%2B202E%E2%9F%A9" in disposition  # ⟨U+202E⟩
    assert App.unscoped.get(pk=app.pk).file_name == "doc\u202efdp.crx"  # stored data untouched


def test_control_characters_never_reach_the_stored_name(admin_client_, tenant):
    response = post_app(admin_client_, "a\x07b\x1bc.crx", crx_bytes())
    assert response.status_code == 302
    assert App.unscoped.get().file_name == "abc.crx"
    assert admin_client_.get(reverse("mdm:app_download", args=[App.unscoped.get().pk])).status_code == 200
