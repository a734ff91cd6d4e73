"""Every job page says « La file des tâches est indisponible : l'action partira dès son retour. » while its job
waits in the outbox for the broker (one helper, ``mdm.jobs.waits_for_broker``, one template), not a plain
« En attente »."""

from __future__ import annotations

import html
from typing import Any

from django.urls import reverse

from chromeos.models import RemovalRun
from chromeos.services.removal import RUN_KIND as REMOVAL_KIND
from ldap_sync.services import RUN_KIND as LDAP_KIND
from mdm.models import OutboxMessage
from tests.ldap.factories import LdapSyncRunFactory

NOTICE = "La file des tâches est indisponible : l'action partira dès son retour."


def _waits_in_outbox(kind: str, pk: int) -> None:
    OutboxMessage.objects.create(task_name="any.task", args=[pk], kind=kind, object_id=pk)


def test_the_ldap_run_page_says_the_run_waits_for_the_broker(tenant: Any, admin_client_: Any) -> None:
    run = LdapSyncRunFactory(tenant=tenant, status="queued")
    url = reverse("ldap_sync:run", kwargs={"pk": run.pk})
    assert NOTICE not in html.unescape(admin_client_.get(url).content.decode())
    _waits_in_outbox(LDAP_KIND, run.pk)
    page = html.unescape(admin_client_.get(url).content.decode())
    assert NOTICE in page and 'id="run-broker"' in page


def test_the_removal_panel_says_the_removal_waits_for_the_broker(
    google_integration: Any, admin_client_: Any
) -> None:
    run = RemovalRun.unscoped.create(tenant=google_integration.tenant, status="queued")
    url = reverse("chromeos:manage")
    assert NOTICE not in html.unescape(admin_client_.get(url).content.decode())
    _waits_in_outbox(REMOVAL_KIND, run.pk)
    page = html.unescape(admin_client_.get(url).content.decode())
    assert NOTICE in page and 'id="removal-broker"' in page
