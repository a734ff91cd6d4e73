"""Celery task of the integration removal (thin: the service does the work)."""

from __future__ import annotations

from celery import shared_task

from chromeos.services.removal import removal_run_execute

__all__ = ["removal_run_task"]


@shared_task(name="chromeos.tasks.removal_run_task")
def removal_run_task(run_id: int) -> str:
    return removal_run_execute(run_id).status
