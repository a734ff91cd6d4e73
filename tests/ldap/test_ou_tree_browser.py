"""The OU tree in a real browser (Debian's Chromium): search, tick a branch, collapse, and 1,200 ticked OUs saved
in one request (the page's script sends them as one field)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.urls import reverse

from ldap_sync.models import LdapOrgUnit
from tests.browser import signed_in_page
from tests.ldap.factories import LdapDirectoryFactory, LdapOrgUnitFactory

playwright_api = pytest.importorskip("playwright.sync_api")

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser_page(live_server: Any, admin_user: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with signed_in_page(live_server.url, admin_user) as page:
        yield page


def test_search_branch_collapse_and_1200_ticks(browser_page, tenant):
    directory = LdapDirectoryFactory(tenant=tenant)
    schools = []
    for school in range(40):
        parent = LdapOrgUnitFactory(tenant=tenant, directory=directory, name=f"Lycée {school:02d}")
        schools.append(parent)
        LdapOrgUnit.unscoped.bulk_create(
            [
                LdapOrgUnitFactory.build(
                    tenant=tenant,
                    directory=directory,
                    parent=parent,
                    name=f"Classe {school:02d}-{n:02d}",
                    path=f"/Lycée {school:02d}/Classe {school:02d}-{n:02d}",
                )
                for n in range(29)
            ]
        )
    assert LdapOrgUnit.unscoped.filter(tenant=tenant).count() == 1200
    page = browser_page
    page.goto(reverse("ldap_sync:directory"))

    # Search: matching OUs and their ancestors stay, the rest is hidden.
    page.get_by_label("Rechercher une OU").fill("classe 07-1")
    assert page.get_by_role("checkbox", name="Classe 07-13").is_visible()
    assert page.get_by_role("checkbox", name="Lycée 07").is_visible()
    assert not page.get_by_role("checkbox", name="Classe 08-13").is_visible()
    page.get_by_label("Rechercher une OU").fill("")

    # Tick one branch, then collapse it.
    branch = page.locator("li[data-ou-node]", has=page.get_by_role("checkbox", name="Lycée 03", exact=True))
    branch.get_by_role("button", name="cocher la branche", exact=True).click()
    assert page.get_by_role("checkbox", name="Classe 03-28").is_checked()
    assert not page.get_by_role("checkbox", name="Classe 04-00").is_checked()
    toggle = branch.get_by_role("button", name="Replier ou déplier Lycée 03")
    toggle.click()
    assert toggle.get_attribute("aria-expanded") == "false"
    assert not page.get_by_role("checkbox", name="Classe 03-28").is_visible()

    # Everything ticked and saved: 1,200 OUs, one request.
    page.get_by_label("Seulement les unités organisationnelles choisies").check()
    page.get_by_role("button", name="Tout cocher").click()
    assert page.locator("[data-ou-count]").inner_text() == "1200 / 1200"
    with page.expect_navigation():
        page.get_by_role("button", name="Enregistrer le choix").click()

    assert "Unités organisationnelles ajoutées enregistrées." in page.content()
    assert LdapOrgUnit.unscoped.filter(tenant=tenant, selected=True).count() == 1200
    assert LdapOrgUnit.unscoped.filter(tenant=tenant, added=True).count() == 1200
