from celery import shared_task
from django.conf import settings

from mdm import services


@shared_task
def audit_purge_task() -> int:
    return services.audit_purge(older_than_days=settings.AUDIT_RETENTION_DAYS)


@shared_task(name="mdm.tasks.jobs_reap_task", ignore_result=True)
def jobs_reap_task() -> dict[str, int]:
    """Beat, every minute: publish what the broker refused, settle the jobs whose worker died."""
    from mdm.jobs import jobs_reap

    return jobs_reap()
