"""Named saved views of the fleet table (issue 17, What to build 1): a user saves the current filters, sort and
columns under a name, finds them in « Vues », shares one with the tenant (audited); only the owner or an admin
changes or deletes a shared view; another user's private view and another tenant's view are 404."""

from __future__ import annotations

import pytest
from django.urls import reverse

from chromeos.models import SavedDeviceView
from mdm.models import AuditEvent, Role
from tests.factories import ChromeOSDeviceFactory, UserFactory

pytestmark = pytest.mark.django_db

LIST = reverse("chromeos:device_list")
CREATE = reverse("chromeos:device_view_create")


def _save(client, name, query="status=DISABLED&sort=last_sync&dir=desc", shared=False):
    data = {"name": name, "query": query}
    if shared:
        data["shared"] = "on"
    return client.post(CREATE, data)


def _view(name):
    return SavedDeviceView.unscoped.get(name=name)


@pytest.fixture
def colleague(tenant, client_for):
    return client_for(UserFactory(tenant=tenant, role=Role.OPERATOR, username="op2@acme.test"))


def test_a_user_saves_the_current_filters_sort_and_columns_and_opens_them_again(admin_client_, tenant):
    ChromeOSDeviceFactory(tenant=tenant, status="DISABLED", serial_number="OFF1")
    ChromeOSDeviceFactory(tenant=tenant, status="ACTIVE", serial_number="ON1")
    admin_client_.get(LIST, {"set_columns": "1", "columns": ["serial_number", "status", "last_sync"]})
    # The page offers the list's current query to the « Vues » form.
    page = admin_client_.get(LIST, {"status": "DISABLED", "sort": "last_sync", "dir": "desc", "page": "1"})
    assert page.context["view_form"].initial["query"] == "status=DISABLED&sort=last_sync&dir=desc"
    response = _save(
        admin_client_, "  Désactivés   récents ", "status=DISABLED&sort=last_sync&dir=desc&page=3&x=1"
    )
    assert (
        response.status_code == 302
        and response["Location"] == LIST + "?status=DISABLED&sort=last_sync&dir=desc"
    )
    view = _view("Désactivés récents")
    assert view.columns == ["serial_number", "status", "last_sync"] and not view.shared
    assert not AuditEvent.unscoped.filter(action__startswith="device_view.").exists()  # private: not audited

    # Another column choice later; opening the view brings its columns and its filters (in the URL) back.
    admin_client_.get(LIST, {"set_columns": "1", "columns": ["serial_number", "model"]})
    opened = admin_client_.get(reverse("chromeos:device_view", args=[view.pk]))
    assert opened["Location"] == LIST + "?status=DISABLED&sort=last_sync&dir=desc"
    listed = admin_client_.get(opened["Location"])
    assert listed.context["column_keys"] == ["serial_number", "status", "last_sync"]
    assert [d.serial_number for d in listed.context["rows"]] == ["OFF1"]
    assert [v.name for v in listed.context["my_views"]] == ["Désactivés récents"]
    assert "Désactivés récents" in listed.content.decode()


@pytest.mark.parametrize(
    ("name", "query", "error"),
    [
        ("", "status=ACTIVE", "Donnez un nom à la vue."),
        ("   ", "status=ACTIVE", "Donnez un nom à la vue."),
        ("x" * 81, "status=ACTIVE", "80 caractères au plus."),
        ("Bad", "status=NOPE", "Ces filtres ne sont pas valides"),
        ("Long", "q=" + "a" * 150 + "&model=" + "b" * 1900, "trop longs"),
    ],
)
def test_a_bad_view_is_a_clear_error_not_a_500(admin_client_, name, query, error):
    response = _save(admin_client_, name, query)
    assert response.status_code == 400
    assert error in response.content.decode()
    assert not SavedDeviceView.unscoped.exists()


def test_two_views_of_one_user_cannot_share_a_name_but_two_users_can(admin_client_, colleague):
    assert _save(admin_client_, "Salle 12").status_code == 302
    again = _save(admin_client_, "Salle 12")
    assert (
        again.status_code == 400
        and "Vous avez déjà une vue nommée « Salle 12 »."
        in again.content.decode().replace("\u202f", " ").replace("\xa0", " ")
    )
    assert _save(colleague, "Salle 12").status_code == 302


def test_a_shared_view_is_seen_by_every_user_of_the_tenant_and_sharing_is_audited(
    admin_client_, colleague, readonly_user, client_for
):
    _save(colleague, "Hors ligne", shared=True)
    _save(colleague, "Brouillon")
    view = _view("Hors ligne")
    event = AuditEvent.unscoped.get(action="device_view.share")
    assert event.target == "Hors ligne" and event.details["view_id"] == view.pk
    reader = client_for(readonly_user)
    listed = reader.get(LIST)
    assert [v.name for v in listed.context["shared_views"]] == ["Hors ligne"]
    assert "Brouillon" not in listed.content.decode()
    assert reader.get(reverse("chromeos:device_view", args=[view.pk])).status_code == 302
    # The journal reads it as a sentence.
    assert "a partagé la vue" in admin_client_.get(reverse("mdm:audit")).content.decode()


def test_only_the_owner_or_an_admin_changes_or_deletes_a_shared_view(
    admin_client_, colleague, readonly_user, client_for
):
    _save(colleague, "Hors ligne", shared=True)
    view = _view("Hors ligne")
    edit = reverse("chromeos:device_view_edit", args=[view.pk])
    delete = reverse("chromeos:device_view_delete", args=[view.pk])
    reader = client_for(readonly_user)
    assert reader.get(edit).status_code == 403
    assert reader.post(edit, {"name": "Pris"}).status_code == 403
    assert reader.post(delete).status_code == 403
    assert "Modifier la vue" not in reader.get(LIST).content.decode()
    # The admin renames it (audited), the owner unshares it (audited).
    assert admin_client_.post(edit, {"name": "Hors ligne (30 j)", "shared": "on"}).status_code == 302
    assert colleague.post(edit, {"name": "Hors ligne (30 j)"}).status_code == 302
    actions = list(
        AuditEvent.unscoped.filter(action__startswith="device_view.")
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions == ["device_view.share", "device_view.rename", "device_view.unshare"]
    # Private again: the admin no longer sees it, let alone changes it.
    assert admin_client_.get(edit).status_code == 404
    assert admin_client_.post(delete).status_code == 404
    # Shared again, then deleted by the admin (audited).
    colleague.post(edit, {"name": "Hors ligne (30 j)", "shared": "on"})
    assert admin_client_.post(delete).status_code == 302
    assert not SavedDeviceView.unscoped.exists()
    assert AuditEvent.unscoped.filter(action="device_view.delete").count() == 1


def test_a_user_deletes_their_own_private_view_without_an_audit_entry(colleague):
    _save(colleague, "Perso")
    view = _view("Perso")
    assert colleague.post(reverse("chromeos:device_view_delete", args=[view.pk])).status_code == 302
    assert not SavedDeviceView.unscoped.exists()
    assert not AuditEvent.unscoped.filter(action__startswith="device_view.").exists()


def test_another_users_private_view_is_404(admin_client_, colleague):
    _save(colleague, "Perso")
    view = _view("Perso")
    for name in ("chromeos:device_view", "chromeos:device_view_edit"):
        assert admin_client_.get(reverse(name, args=[view.pk])).status_code == 404
    assert admin_client_.post(reverse("chromeos:device_view_delete", args=[view.pk])).status_code == 404


def test_another_tenants_view_is_404_even_shared(admin_client_, other_tenant, client_for):
    outsider = client_for(UserFactory(tenant=other_tenant, role=Role.ADMIN))
    _save(outsider, "Globex", shared=True)
    view = _view("Globex")
    for name in ("chromeos:device_view", "chromeos:device_view_edit"):
        assert admin_client_.get(reverse(name, args=[view.pk])).status_code == 404
    assert admin_client_.post(reverse("chromeos:device_view_delete", args=[view.pk])).status_code == 404
    assert (
        admin_client_.post(reverse("chromeos:device_view_edit", args=[view.pk]), {"name": "x"}).status_code
        == 404
    )
    assert "Globex" not in admin_client_.get(LIST).content.decode()
