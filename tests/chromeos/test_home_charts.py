"""Accueil's small charts (issue 17, What to build 3): devices by status (a stacked bar), syncs of the last days
(columns), devices by OS version (bars); each with its numbers as text and links into the filtered fleet table;
server-rendered SVG sized by attributes (the CSP forbids inline styles and scripts)."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
from django.utils import timezone

from chromeos.models import SyncRun
from tests.chromeos.test_home import synced_fleet  # noqa: F401 - fixture
from tests.factories import ChromeOSDeviceFactory

pytestmark = pytest.mark.django_db

HOME = "/"


def _health(client) -> str:
    body = client.get(HOME).content.decode()
    return body[body.index('id="fleet-health"') :]


def test_devices_by_status_is_a_stacked_bar_beside_its_numbers(admin_client_, synced_fleet):  # noqa: F811
    health = _health(admin_client_)
    bar = re.search(r'<svg class="chart stacked-bar"[^>]*aria-hidden="true"[^>]*>(.*?)</svg>', health)
    assert bar, "no stacked bar"
    segments = re.findall(r'class="seg seg-(\w+)" x="([\d.]+)" y="0" width="([\d.]+)"', bar[1])
    assert [(s, float(w)) for s, _x, w in segments] == [("active", 83.33), ("disabled", 16.67)]
    assert float(segments[1][1]) == pytest.approx(83.33)
    # Its text alternative is the list under it: each status with its number and its link.
    assert re.search(r'data-status="ACTIVE">Actif</a> <span class="count">5</span>', health)
    assert "style=" not in health and "<script" not in health


def test_os_versions_are_bars_in_a_table_linking_to_the_filtered_list(admin_client_, synced_fleet, tenant):  # noqa: F811
    for _ in range(3):
        ChromeOSDeviceFactory(tenant=tenant, os_version="130.0.6723.1")
    health = _health(admin_client_)
    card = health[health.index('id="health-os"') :]
    card = card[: card.index("</article>")]
    rows = re.findall(
        r'<th scope="row"><a href="([^"]+)">([^<]+)</a></th>\s*<td class="num">(\d+)</td>', card
    )
    assert [(label, int(n)) for _u, label, n in rows] == [("128.0.6613.98", 6), ("130.0.6723.1", 3)]
    for url, _label, n in rows:
        assert admin_client_.get(unescape(url)).context["total"] == int(n)
    widths = re.findall(r'<rect x="0" y="0" width="([\d.]+)" height="8">', card)
    assert [float(w) for w in widths] == [100.0, 50.0]
    assert "66.7 %" in card or "66,7 %" in card  # the share, in words, for screen readers


def test_syncs_of_the_last_days_are_columns_with_their_numbers(admin_client_, synced_fleet, tenant):  # noqa: F811
    now = timezone.now()
    for days_ago, status in [
        (0, "succeeded"),
        (0, "succeeded"),
        (0, "failed"),
        (3, "succeeded"),
        (30, "failed"),
    ]:
        run = SyncRun.unscoped.create(
            tenant=tenant, integration=synced_fleet, trigger="scheduled", status=status
        )
        SyncRun.unscoped.filter(pk=run.pk).update(finished_at=now - timedelta(days=days_ago))
    health = _health(admin_client_)
    card = health[health.index('id="health-syncs"') :]
    card = card[: card.index("</article>")]
    assert "Synchronisations des 14 derniers jours" in card
    svg = re.search(r'<svg class="chart columns"[^>]*role="img" aria-labelledby="sync-chart-label"', card)
    assert svg
    assert re.search(r'id="sync-chart-label">3 réussies · 1 en échec · au plus 3 par jour<', card)
    assert len(re.findall(r'<rect class="ok"', card)) == 2 and len(re.findall(r'<rect class="ko"', card)) == 1
    # The numbers, day by day, behind « Voir les chiffres »: 14 rows, today's last.
    days = re.findall(
        r'<tr><th scope="row">[^<]+</th><td class="num">(\d+)</td><td class="num">(\d+)</td></tr>', card
    )
    assert len(days) == 14 and days[-1] == ("2", "1") and days[-4] == ("1", "0")


def test_the_charts_read_in_english(admin_client_, synced_fleet):  # noqa: F811
    admin_client_.cookies["django_language"] = "en"
    health = _health(admin_client_)
    assert (
        "Syncs of the last 14 days" in health
        and "ChromeOS versions" in health
        and "Show the numbers" in health
    )
