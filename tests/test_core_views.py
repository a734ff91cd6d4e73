import pytest
from django.urls import reverse

from mdm.models import App, AppKind, AuditEvent, Blueprint
from tests.factories import AuditEventFactory, BlueprintFactory

pytestmark = pytest.mark.django_db


def test_login_with_a_local_account_and_logout(admin_user, client):
    response = client.post(reverse("login"), {"username": admin_user.username, "password": "pw"})
    assert response.status_code == 302
    assert client.get(reverse("home")).status_code == 200
    client.post(reverse("logout"))
    assert client.get(reverse("home")).status_code == 302


def test_login_with_a_wrong_password_says_so(admin_user, client):
    response = client.post(reverse("login"), {"username": admin_user.username, "password": "nope"})
    assert response.status_code == 200
    assert "Saisissez un nom d’utilisateur et un mot de passe valides" in response.content.decode()


def test_shell_shows_the_sidebar_in_french(admin_client_):
    body = admin_client_.get(reverse("home")).content.decode()
    for label in (
        "Gestion ChromeOS",
        "LDAP",
        "Périphériques",
        "Configurations (Blueprints)",
        "Applis",
        "Journal d",
    ):
        assert label in body


@pytest.mark.parametrize("fixture", ["admin_user", "operator_user"])
def test_admins_and_operators_create_blueprints(fixture, request, client_for):
    user = request.getfixturevalue(fixture)
    response = client_for(user).post(
        reverse("mdm:blueprint_create"),
        # ChromeOS settings come from the typed form of the chromeos app, not from raw JSON.
        {"name": "Écoles", "platform": "chromeos", "description": "", "settings-guest_mode": "false"},
    )
    assert response.status_code == 302
    bp = Blueprint.unscoped.get(name="Écoles")
    assert bp.tenant == user.tenant
    assert bp.settings == {"guest_mode": False}
    event = AuditEvent.unscoped.get(action="blueprint.create")
    assert event.actor == user
    assert event.target == "Écoles"


def test_read_only_users_see_blueprints_but_cannot_write(readonly_user, client_for):
    bp = BlueprintFactory(tenant=readonly_user.tenant, name="Lecture")
    c = client_for(readonly_user)
    page = c.get(reverse("mdm:blueprint_list")).content.decode()
    assert "Lecture" in page
    assert reverse("mdm:blueprint_create") not in page
    assert c.get(reverse("mdm:blueprint_edit", args=[bp.pk])).status_code == 200
    assert (
        c.post(reverse("mdm:blueprint_edit", args=[bp.pk]), {"name": "X", "platform": "chromeos"}).status_code
        == 403
    )
    assert c.post(reverse("mdm:blueprint_create"), {"name": "X", "platform": "chromeos"}).status_code == 403
    assert Blueprint.unscoped.get(pk=bp.pk).name == "Lecture"


def test_bad_blueprint_input_is_rejected_and_loses_nothing(admin_user, client_for):
    BlueprintFactory(tenant=admin_user.tenant, name="Existante")
    c = client_for(admin_user)
    response = c.post(
        reverse("mdm:blueprint_create"), {"name": "Existante", "platform": "android", "settings": "{"}
    )
    assert response.status_code == 400
    body = response.content.decode()
    assert "Une configuration porte déjà ce nom." in body
    assert "JSON" in body
    assert 'value="Existante"' in body  # what the admin typed is still there
    assert Blueprint.unscoped.count() == 1


def test_apps_validate_identifiers(admin_user, client_for):
    c = client_for(admin_user)
    bad = c.post(
        reverse("mdm:app_create"), {"name": "Bad", "kind": AppKind.CHROME, "identifier": "not-an-id"}
    )
    assert bad.status_code == 400
    assert "32 lettres" in bad.content.decode()
    ok = c.post(
        reverse("mdm:app_create"),
        {"name": "Google Keep", "kind": AppKind.CHROME, "identifier": "hmjkmjkepdijhoojdojkdfohbdgmmhki"},
    )
    assert ok.status_code == 302
    assert App.unscoped.get().identifier == "hmjkmjkepdijhoojdojkdfohbdgmmhki"


def test_audit_page_filters_by_actor_action_and_date(admin_user, client_for):
    t = admin_user.tenant
    AuditEventFactory(tenant=t, actor_label="alice@acme.test", action="google.authorize", target="acme.fr")
    AuditEventFactory(tenant=t, actor_label="bob@acme.test", action="blueprint.create", target="Écoles")
    c = client_for(admin_user)
    body = c.get(reverse("mdm:audit"), {"actor": "alice"}).content.decode()
    assert 'data-action="google.authorize"' in body and 'data-action="blueprint.create"' not in body
    body = c.get(reverse("mdm:audit"), {"action": "blueprint"}).content.decode()
    assert "Écoles" in body and "acme.fr" not in body
    body = c.get(reverse("mdm:audit"), {"date_from": "2000-01-01", "date_to": "2000-01-02"}).content.decode()
    assert "Aucun événement." in body
    bad = c.get(reverse("mdm:audit"), {"date_from": "2020-02-02", "date_to": "2020-01-01"}).content.decode()
    assert "La date de début est postérieure à la date de fin." in bad


def test_english_is_one_click_away(admin_client_):
    admin_client_.post(reverse("set_language"), {"language": "en", "next": "/"})
    body = admin_client_.get(reverse("home")).content.decode()
    assert "Audit log" in body
    assert "Devices" in body
    assert "Journal d" not in body
    admin_client_.post(reverse("set_language"), {"language": "fr", "next": "/"})
    assert "Journal d" in admin_client_.get(reverse("home")).content.decode()


def test_audit_page_takes_the_last_and_first_dates_a_date_field_accepts(admin_user, client_for):
    # Found by tests/test_fuzz_forms.py: « Au » 9999-12-31 filtered on the day after it (OverflowError, a 500).
    AuditEventFactory(tenant=admin_user.tenant, actor_label="alice@acme.test", action="google.authorize")
    c = client_for(admin_user)
    for dates in (
        {"date_to": "9999-12-31"},
        {"date_from": "0001-01-01"},
        {"date_from": "0001-01-01", "date_to": "9999-12-31"},
    ):
        response = c.get(reverse("mdm:audit"), dates)
        assert response.status_code == 200, dates
        assert 'data-action="google.authorize"' in response.content.decode(), dates
