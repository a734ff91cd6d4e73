"""The OU tree beside the fleet table (issue 17, What to build 1): the tenant's OUs nested, each with its device
counts (own and with sub-OUs), each a link that filters the table (in the URL: back/forward and bookmarks work,
no script needed), the selected OU's branch open."""

from __future__ import annotations

import re
from html import unescape

import pytest
from django.urls import reverse
from django.utils import timezone

from chromeos.selectors.org_unit_tree import flatten, org_unit_tree
from mdm.tenancy import tenant_context
from tests.factories import ChromeOSDeviceFactory, OrgUnitFactory

pytestmark = pytest.mark.django_db

LIST = reverse("chromeos:device_list")


@pytest.fixture
def school(tenant, other_tenant):
    for name, path in [
        ("Écoles", "/Écoles"),
        ("CM1", "/Écoles/CM1"),
        ("CM2", "/Écoles/CM2"),
        ("Administration", "/Administration"),
    ]:
        OrgUnitFactory(tenant=tenant, name=name, path=path)
    for path, n in [("/Écoles", 1), ("/Écoles/CM1", 3), ("/Écoles/CM2", 2), ("/", 1)]:
        for _ in range(n):
            ChromeOSDeviceFactory(tenant=tenant, org_unit_path=path)
    # A device in an OU the last sync has not listed yet, a removed device, another tenant's fleet.
    ChromeOSDeviceFactory(tenant=tenant, org_unit_path="/Stock/Retours")
    ChromeOSDeviceFactory(tenant=tenant, org_unit_path="/Écoles/CM1", removed_at=timezone.now())
    OrgUnitFactory(tenant=other_tenant, name="Globex", path="/Globex")
    ChromeOSDeviceFactory(tenant=other_tenant, org_unit_path="/Écoles/CM1")
    return tenant


def _counts(root):
    return {n.path: (n.own, n.total) for n in flatten(root)}


def test_each_ou_counts_its_own_devices_and_those_of_its_sub_ous(school):
    with tenant_context(school):
        root = org_unit_tree()
    assert _counts(root) == {
        "/": (1, 8),
        "/Administration": (0, 0),
        "/Écoles": (1, 6),
        "/Écoles/CM1": (3, 3),
        "/Écoles/CM2": (2, 2),
        "/Stock": (0, 1),
        "/Stock/Retours": (1, 1),
    }
    assert [c.name for c in root.children] == ["Administration", "Écoles", "Stock"]


def test_the_tree_links_filter_the_table_and_keep_the_other_filters(admin_client_, school):
    response = admin_client_.get(LIST, {"status": "ACTIVE", "sort": "last_sync", "page": "2"})
    body = response.content.decode()
    links = {
        unescape(m.group(2)): unescape(m.group(1))
        for m in re.finditer(r'<a href="([^"]*)"[^>]*title="([^"]*)"><span class="ou-name">', body)
    }
    cm1 = links["/Écoles/CM1"]
    assert cm1.startswith(LIST + "?") and "status=ACTIVE" in cm1 and "sort=last_sync" in cm1
    assert "page=" not in cm1
    following = admin_client_.get(cm1)
    assert len(following.context["rows"]) == 3
    assert following.context["chips"][-1]["value"] == "/Écoles/CM1" or any(
        c["name"] == "org_unit" for c in following.context["chips"]
    )
    # The whole « Écoles » branch: the OU and its sub-OUs, as its count says.
    assert len(admin_client_.get(links["/Écoles"]).context["rows"]) == 6
    # The root clears the OU filter and keeps the others.
    assert "org_unit" not in links["/"] and "status=ACTIVE" in links["/"]


def test_the_selected_ou_is_marked_and_its_branch_open_accents_and_case_aside(admin_client_, school):
    body = admin_client_.get(LIST, {"org_unit": "/ecoles/cm1"}).content.decode()
    current = re.findall(r'aria-current="true" title="([^"]*)"', body)
    assert [unescape(c) for c in current] == ["/Écoles/CM1"]
    with tenant_context(school):
        nodes = {n.path: n for n in flatten(org_unit_tree("/ecoles/cm1"))}
    assert nodes["/Écoles"].open and nodes["/Écoles/CM1"].selected
    assert not nodes["/Stock"].open and not nodes["/Administration"].open


def test_the_tree_is_a_nested_list_with_disclosure_buttons(admin_client_, school):
    body = admin_client_.get(LIST).content.decode()
    assert '<div class="ou-nav" role="navigation" aria-label="Arbre des unités organisationnelles">' in body
    toggle = re.search(
        r'<button type="button" class="ou-toggle" aria-expanded="(\w+)" aria-controls="([^"]+)"', body
    )
    assert toggle is not None and f'<ul id="{toggle.group(2)}">' in body
    # Without the script every level shows: nothing is hidden by the server.
    tree = body.split('class="ou-tree"')[1].split("</details>")[0]
    assert '<ul id="ou-children' in tree and not re.search(r"<ul[^>]* hidden", tree)


def test_another_tenants_ous_and_devices_are_not_in_the_tree(admin_client_, school):
    body = admin_client_.get(LIST).content.decode()
    assert "/Globex" not in body
    with tenant_context(school):
        assert org_unit_tree().total == 8


def test_no_ou_no_tree(admin_client_, tenant):
    ChromeOSDeviceFactory(tenant=tenant, org_unit_path="/")
    assert "ou-panel" not in admin_client_.get(LIST).content.decode()
