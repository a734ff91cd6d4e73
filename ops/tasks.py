"""Celery tasks of operations (thin: call one service)."""

from __future__ import annotations

from celery import shared_task

from ops.alerts import alerts_scan


@shared_task(name="ops.tasks.alerts_scan_task", ignore_result=True)
def alerts_scan_task() -> int:
    return alerts_scan()
