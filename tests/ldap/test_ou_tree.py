"""Choosing among many OUs: the tree follows each OU's parent, and a thousand ticks are one request field."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest
from django.urls import reverse

from ldap_sync.models import LdapOrgUnit, OuSelection
from tests.ldap.factories import LdapDirectoryFactory, LdapOrgUnitFactory

pytestmark = pytest.mark.django_db

DIRECTORY = reverse("ldap_sync:directory")


class TreeParser(HTMLParser):
    """Map each OU checkbox's label text to the label text of the OU whose ``<li>`` encloses it."""

    def __init__(self) -> None:
        super().__init__()
        self.in_tree = 0
        self.stack: list[str | None] = []  # one entry per open <li>: its OU name once read
        self.parents: dict[str, str | None] = {}
        self.label: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if (tag == "ul" and ("data-ou-tree", None) in attrs) or (tag == "ul" and self.in_tree):
            self.in_tree += 1
        elif tag == "li" and self.in_tree:
            self.stack.append(None)
        elif tag == "label" and self.in_tree:
            self.label = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "ul" and self.in_tree:
            self.in_tree -= 1
        elif tag == "li" and self.in_tree and self.stack:
            self.stack.pop()
        elif tag == "label" and self.label is not None:
            name = "".join(self.label).strip()
            self.label = None
            parent = next((item for item in reversed(self.stack[:-1]) if item), None)
            self.parents[name] = parent
            self.stack[-1] = name

    def handle_data(self, data: str) -> None:
        if self.label is not None:
            self.label.append(data)


def parents_on_page(html: str) -> dict[str, str | None]:
    parser = TreeParser()
    parser.feed(html)
    return parser.parents


def test_the_tree_follows_parents_not_path_prefixes(
    admin_client_, tenant, make_directory, run_sync, scratch_ou
):
    scratch_ou.add_ou("Seconde 1")
    scratch_ou.add_ou("Seconde 1", "Groupe A")
    scratch_ou.add_ou("Seconde 1 bis")
    scratch_ou.add_ou("Seconde 1 bis", "Groupe B")
    seconde2 = scratch_ou.add_ou("Seconde 2")
    # An OU below a non-OU container hangs from the nearest OU above it.
    container = scratch_ou.add(
        f"cn=Conteneur,{seconde2}", {"objectClass": ["organizationalRole"], "cn": ["Conteneur"]}
    )
    scratch_ou.add(
        f"ou=Sous conteneur,{container}", {"objectClass": ["organizationalUnit"], "ou": ["Sous conteneur"]}
    )
    run_sync(make_directory(tenant, base_dn=scratch_ou.dn))

    page = admin_client_.get(DIRECTORY).content.decode()

    assert parents_on_page(page) == {
        "Seconde 1": None,
        "Groupe A": "Seconde 1",
        "Seconde 1 bis": None,
        "Groupe B": "Seconde 1 bis",
        "Seconde 2": None,
        "Sous conteneur": "Seconde 2",
    }


def test_ticking_1200_ous_is_one_request_field(admin_client_, tenant):
    directory = LdapDirectoryFactory(tenant=tenant)
    LdapOrgUnit.unscoped.bulk_create(
        [
            LdapOrgUnitFactory.build(
                tenant=tenant, directory=directory, name=f"Classe {n}", path=f"/Classe {n}"
            )
            for n in range(1200)
        ]
    )
    ids = list(LdapOrgUnit.unscoped.filter(tenant=tenant).values_list("pk", flat=True))
    page = admin_client_.get(DIRECTORY).content.decode()
    assert page.count('name="selected"') == 1200 and 'name="selected_ids"' in page

    # What the page's script sends: the ticked OUs in one field (1,200 checkboxes would be answered 400).
    response = admin_client_.post(
        reverse("ldap_sync:org_units"),
        {"mode": OuSelection.SELECTED, "selected_ids": ",".join(map(str, ids[:1100]))},
    )

    assert response.status_code == 302
    assert LdapOrgUnit.unscoped.filter(tenant=tenant, selected=True).count() == 1100
    assert LdapOrgUnit.unscoped.filter(tenant=tenant, added=True).count() == 1100


def test_compact_selection_refuses_another_tenants_ids(admin_client_, tenant, other_tenant):
    mine = LdapOrgUnitFactory(tenant=tenant, name="Paris")
    theirs = LdapOrgUnitFactory(tenant=other_tenant, name="Secret")

    response = admin_client_.post(
        reverse("ldap_sync:org_units"),
        {"mode": "selected", "selected_ids": f"{mine.pk},{theirs.pk}"},
        follow=True,
    )

    assert "illisible" in response.content.decode()
    theirs.refresh_from_db()
    mine.refresh_from_db()
    assert not theirs.selected and not mine.selected


def test_the_ou_section_has_no_inline_script_handler_or_style(admin_client_, tenant):
    parent = LdapOrgUnitFactory(tenant=tenant, name="Lycée")
    LdapOrgUnitFactory(tenant=tenant, name="Seconde", parent=parent, path="/Lycée/Seconde")
    page = admin_client_.get(DIRECTORY).content.decode()
    section = page[page.index('id="ous"') :]

    assert "js/ldap-ou-tree.js" in page and "css/ldap.css" in page
    assert not re.search(r"<script(?![^>]*\bsrc=)", page)
    assert not re.search(r"\son[a-z]+=", section) and "style=" not in section and "<style" not in page
    assert 'aria-controls="ou-children-' in section and "data-ou-search" in section
