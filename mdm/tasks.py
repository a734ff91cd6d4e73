from celery import shared_task
from django.conf import settings

from mdm import services


@shared_task
def audit_purge_task() -> int:
    return services.audit_purge(older_than_days=settings.AUDIT_RETENTION_DAYS)
