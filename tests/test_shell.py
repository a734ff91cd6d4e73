"""The console's shell on every screen: the active sidebar entry, branded error pages, what a role may not do,
people by name, language and country names, colours people can read."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from django.test import Client, RequestFactory
from django.urls import reverse
from django.utils import translation
from django.views.defaults import server_error

from mdm.names import country_name, language_name
from tests.factories import BlueprintFactory, ChromeOSDeviceFactory, UserFactory

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[1]


def _current_entry(body: str) -> list[str]:
    """Labels of the sidebar links marked as the current page."""
    sidebar = body[body.index('<aside class="sidebar"') : body.index("</aside>")]
    return re.findall(r'<a href="[^"]*" aria-current="page">([^<]+)</a>', sidebar)


@pytest.mark.parametrize(
    ("url", "entry"),
    [
        (lambda ctx: reverse("home"), "Accueil"),
        (lambda ctx: reverse("chromeos:device_list"), "Périphériques"),
        (lambda ctx: reverse("chromeos:device_detail", args=[ctx["device"].pk]), "Périphériques"),
        (lambda ctx: reverse("chromeos:device_job_list"), "Périphériques"),
        (lambda ctx: reverse("mdm:blueprint_list"), "Configurations (Blueprints)"),
        (
            lambda ctx: reverse("mdm:blueprint_edit", args=[ctx["blueprint"].pk]),
            "Configurations (Blueprints)",
        ),
        (lambda ctx: reverse("mdm:app_list"), "Applis"),
        (lambda ctx: reverse("mdm:app_create"), "Applis"),
        (lambda ctx: reverse("chromeos:manage"), "Gestion ChromeOS"),
        (lambda ctx: reverse("chromeos:policies"), "Affectations ChromeOS"),
        (lambda ctx: reverse("ldap_sync:directory"), "LDAP"),
        (lambda ctx: reverse("mdm:audit"), "Journal d'audit"),
    ],
)
def test_the_sidebar_marks_the_current_page_on_every_screen(url, entry, admin_user, admin_client_):
    ctx = {
        "device": ChromeOSDeviceFactory(tenant=admin_user.tenant),
        "blueprint": BlueprintFactory(tenant=admin_user.tenant),
    }
    response = admin_client_.get(url(ctx))
    assert response.status_code == 200
    assert _current_entry(response.content.decode()) == [entry]


def test_forbidden_is_a_branded_french_page_with_a_way_back(readonly_user, client_for):
    response = client_for(readonly_user).post(reverse("mdm:blueprint_create"), {"name": "X"})
    assert response.status_code == 403
    body = response.content.decode()
    assert "<h1" in body and "Accès refusé" in body
    assert "Votre rôle (Lecture seule) ne permet pas cette action" in body
    assert f'href="{reverse("home")}"' in body and "Retour à l'accueil" in body
    assert "403 Forbidden" not in body
    assert 'class="sidebar"' in body  # the console around it: the way back to every page


def test_forbidden_in_english(readonly_user, client_for):
    client = client_for(readonly_user)
    client.cookies["django_language"] = "en"
    body = client.post(reverse("mdm:blueprint_create"), {"name": "X"}).content.decode()
    assert "Access denied" in body and "Back to the home page" in body


def test_support_staff_sent_to_the_console_get_a_way_to_support(support_user, client_for):
    response = client_for(support_user).get(reverse("home"))
    assert response.status_code == 403
    assert f'href="{reverse("admin:index")}"' in response.content.decode()


def test_not_found_is_a_branded_page_with_a_way_back(admin_client_):
    response = admin_client_.get("/nulle-part/")
    assert response.status_code == 404
    body = response.content.decode()
    assert "Page introuvable" in body and f'href="{reverse("home")}"' in body


def test_server_error_is_a_branded_page_in_the_active_language():
    request = RequestFactory().get("/")
    with translation.override("fr"):
        body = server_error(request).content.decode()
    assert "Erreur du serveur" in body and 'href="/"' in body and 'lang="fr"' in body
    with translation.override("en"):
        assert "Server error" in server_error(request).content.decode()


@pytest.mark.parametrize(
    "url",
    [
        lambda ctx: reverse("chromeos:device_list"),
        lambda ctx: reverse("chromeos:device_detail", args=[ctx["device"].pk]),
        lambda ctx: reverse("mdm:blueprint_list"),
        lambda ctx: reverse("mdm:blueprint_edit", args=[ctx["blueprint"].pk]),
        lambda ctx: reverse("mdm:app_list"),
        lambda ctx: reverse("chromeos:manage"),
    ],
)
def test_read_only_users_are_told_why_controls_are_missing(url, readonly_user, client_for):
    ctx = {
        "device": ChromeOSDeviceFactory(tenant=readonly_user.tenant),
        "blueprint": BlueprintFactory(tenant=readonly_user.tenant),
    }
    body = client_for(readonly_user).get(url(ctx)).content.decode()
    assert "data-role-note" in body
    assert re.search(r"Réservé aux|Seul un administrateur", body)


def test_admins_see_no_role_note(admin_user, admin_client_):
    assert "data-role-note" not in admin_client_.get(reverse("chromeos:device_list")).content.decode()


def test_people_are_shown_by_name_not_by_login(tenant, client_for):
    ldap_user = UserFactory(
        tenant=tenant, username="acme:camille.durand", first_name="Camille", last_name="Durand"
    )
    body = client_for(ldap_user).get(reverse("home")).content.decode()
    header = body[body.index("<header") : body.index("</header>")]
    assert "Camille Durand" in header
    assert ">acme:camille.durand" not in header
    no_name = UserFactory(tenant=tenant, username="acme:lea.fontaine")
    assert no_name.display_name == "lea.fontaine"


def test_languages_and_countries_by_name():
    with translation.override("fr"):
        assert language_name("fr") == "Français"
        assert language_name("en-GB") == "Anglais britannique"
        assert country_name("FR") == "France"
    with translation.override("en"):
        assert language_name("fr") == "French"
        assert country_name("fr") == "France"
    assert language_name("xx") == "xx" and country_name("ZZ") == "ZZ"


def _luminance(hex_colour: str) -> float:
    channels = [int(hex_colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


@pytest.mark.parametrize("kind", ["ok", "ko", "warn"])
def test_status_badges_have_a_readable_contrast(kind):
    css = (ROOT / "static/css/console.css").read_text()
    rule = re.search(rf"\.status\.{kind} \{{ background: (#[0-9a-f]{{6}}); color: (#[0-9a-f]{{6}}); \}}", css)
    assert rule, f".status.{kind} not found"
    low, high = sorted((_luminance(rule[1]), _luminance(rule[2])))
    assert (high + 0.05) / (low + 0.05) >= 4.5


def test_login_page_has_no_sidebar_and_no_menu_button():
    body = Client().get(reverse("login")).content.decode()
    assert "menu-toggle" not in body


def test_the_domain_information_names_its_language_and_country(tenant):
    from chromeos.selectors.integration import customer_rows
    from tests.factories import GoogleIntegrationFactory

    integration = GoogleIntegrationFactory(
        tenant=tenant,
        customer_info={"language": "fr", "postalAddress": {"locality": "Paris", "countryCode": "FR"}},
    )
    rows = {str(label): value for label, value in customer_rows(integration)}
    assert rows["Langue"] == "Français"
    assert rows["Adresse"] == "Paris, France"


def test_french_pages_keep_guillemets_and_synchro_maintenant_on_one_line(admin_client_, tenant):
    from tests.factories import GoogleIntegrationFactory

    GoogleIntegrationFactory(tenant=tenant)
    body = admin_client_.get(reverse("chromeos:manage")).content.decode()
    assert "« " not in body and " »" not in body
    assert "«\u00a0" in body and "\u00a0»" in body
    from mdm.typography import french_text

    assert french_text("« Synchro maintenant »") == "«\u00a0Synchro\u00a0maintenant\u00a0»"


def test_french_typography_leaves_attributes_and_form_values_alone():
    from mdm.typography import french_html

    html = '<input value="« a »"><textarea>« b »</textarea><p title="« c »">« d » Synchro maintenant</p>'
    assert french_html(html) == (
        '<input value="« a »"><textarea>« b »</textarea><p title="« c »">«\u00a0d\u00a0» Synchro maintenant</p>'
    )


def test_short_durations_read_less_than_a_second():
    from chromeos.templatetags.chromeos_sync import duration

    assert duration(0) == "< 1 s" and duration(12) == "12 s"
