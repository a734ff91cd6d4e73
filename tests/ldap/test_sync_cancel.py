"""« Annuler la synchronisation » of an LDAP sync (issue 15, point 1): queued or reading the directory, it is
cancelled and nothing is applied; once it applies its listing (one step, at the end), the cancel is refused."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from django.db import connection
from django.urls import reverse

from ldap_sync import services
from ldap_sync.models import LdapOrgUnit, LdapSyncRun, LdapUser, SyncStatus, SyncTrigger
from mdm.models import AuditEvent, Role


def _queued(directory: Any) -> LdapSyncRun:
    return LdapSyncRun.unscoped.create(
        tenant=directory.tenant, directory=directory, trigger=SyncTrigger.MANUAL
    )


@pytest.mark.django_db
def test_a_sync_cancelled_while_it_reads_the_directory_applies_nothing_and_ends_cancelled(
    tenant: Any, make_directory: Any, operator_user: Any, monkeypatch: Any
) -> None:
    directory = make_directory(tenant)
    run = _queued(directory)
    read = services.directory_read

    def read_then_cancelled(**kwargs: Any) -> Any:
        listing = read(**kwargs)
        services.sync_cancel(run=LdapSyncRun.unscoped.get(pk=run.pk), actor=operator_user)
        return listing

    monkeypatch.setattr(services, "directory_read", read_then_cancelled)

    services.ldap_sync_run(run=run)

    run.refresh_from_db()
    assert run.status == SyncStatus.CANCELLED
    assert run.ous_seen > 0  # it had read the directory...
    assert not LdapOrgUnit.unscoped.filter(tenant=tenant).exists()  # ...and applied none of it
    assert not LdapUser.unscoped.filter(tenant=tenant).exists()
    messages = " ".join(line["msgid"] % line["params"] for line in run.log)
    assert "Lecture de l'annuaire" in messages
    assert f"annulée par {operator_user.display_name}" in messages and "Arrêtée avant" in messages
    assert AuditEvent.unscoped.get(action="ldap.sync.cancel").details["was"] == SyncStatus.RUNNING


@pytest.mark.django_db
def test_a_queued_ldap_sync_cancelled_is_left_alone_by_its_worker(
    tenant: Any, make_directory: Any, operator_user: Any
) -> None:
    run = _queued(make_directory(tenant))
    services.sync_cancel(run=run, actor=operator_user)

    services.ldap_sync_run(run=LdapSyncRun.unscoped.get(pk=run.pk))

    run.refresh_from_db()
    assert run.status == SyncStatus.CANCELLED and run.started_at is None
    assert not LdapOrgUnit.unscoped.filter(tenant=tenant).exists()


@pytest.mark.django_db(transaction=True)
def test_a_cancel_while_the_sync_applies_its_listing_is_refused_with_the_reason(
    tenant: Any, make_directory: Any, operator_user: Any, monkeypatch: Any
) -> None:
    directory = make_directory(tenant)
    run = _queued(directory)
    apply = services._apply_listing
    answers: list[str] = []

    def cancel_from_another_session() -> None:
        try:
            services.sync_cancel(run=LdapSyncRun.unscoped.get(pk=run.pk), actor=operator_user)
            answers.append("cancelled")
        except services.CancelRefused as refused:
            answers.append(refused.message)
        finally:
            connection.close()

    def apply_while_cancelled(*args: Any, **kwargs: Any) -> Any:
        canceller = threading.Thread(target=cancel_from_another_session)
        canceller.start()
        canceller.join()
        return apply(*args, **kwargs)

    monkeypatch.setattr(services, "_apply_listing", apply_while_cancelled)

    services.ldap_sync_run(run=run)

    assert len(answers) == 1 and "applique déjà ses changements" in answers[0]
    run.refresh_from_db()
    assert run.status == SyncStatus.SUCCEEDED
    assert LdapOrgUnit.unscoped.filter(tenant=tenant).exists()


@pytest.mark.django_db
def test_cancel_view_operator_ok_readonly_403_other_tenant_404_finished_refused(
    tenant: Any, other_tenant: Any, make_directory: Any, make_user: Any, client_for: Any
) -> None:
    run = _queued(make_directory(tenant))
    operator = client_for(make_user(tenant, Role.OPERATOR))
    url = reverse("ldap_sync:cancel", kwargs={"pk": run.pk})
    page = operator.get(reverse("ldap_sync:run", kwargs={"pk": run.pk})).content.decode()
    assert 'id="run-cancel"' in page and "Annuler la synchronisation" in page

    assert client_for(make_user(tenant, Role.READ_ONLY)).post(url).status_code == 403
    assert client_for(make_user(other_tenant, Role.ADMIN)).post(url).status_code == 404
    assert LdapSyncRun.unscoped.get(pk=run.pk).status == SyncStatus.QUEUED

    response = operator.post(url, follow=True)
    assert response.status_code == 200 and "Synchronisation annulée" in response.content.decode()
    assert LdapSyncRun.unscoped.get(pk=run.pk).status == SyncStatus.CANCELLED
    assert 'id="run-cancel"' not in response.content.decode()

    again = operator.post(url, follow=True)
    assert again.status_code == 200 and "rien à annuler" in again.content.decode()
