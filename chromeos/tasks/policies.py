"""Celery tasks of policy assignments (thin: the service does the work and decides what is retried).

The Google client already retries transient errors within one run (backoff 1-16 s). When Google stays
unavailable through that, the service puts the assignment back and raises ``RetryLater``; the task then
runs again after 1, 5 and 15 minutes, and the last attempt marks the assignment failed.
"""

from __future__ import annotations

from typing import Any

from celery import shared_task

from chromeos.models import PolicyAssignment
from chromeos.services.policies import (
    TASK_RETRY_COUNTDOWNS,
    RetryLater,
    policy_assignment_apply,
    policy_assignment_unassign,
    policy_revert_detached,
)
from mdm.tenancy import tenant_context

__all__ = ["policy_assignment_apply_task", "policy_assignment_unassign_task", "policy_revert_detached_task"]

MAX_RETRIES = len(TASK_RETRY_COUNTDOWNS)


def _run(task: Any, service: Any, assignment_id: int) -> str:
    assignment = PolicyAssignment.unscoped.select_related("tenant").filter(pk=assignment_id).first()
    if assignment is None:
        return "gone"
    retries = task.request.retries or 0
    with tenant_context(assignment.tenant):
        try:
            result = service(assignment_id, final_attempt=retries >= MAX_RETRIES)
        except RetryLater:
            raise task.retry(countdown=TASK_RETRY_COUNTDOWNS[retries], max_retries=MAX_RETRIES) from None
    return result.state if result is not None else "skipped"


@shared_task(bind=True, name="chromeos.tasks.policy_assignment_apply_task")
def policy_assignment_apply_task(self: Any, assignment_id: int) -> str:
    return _run(self, policy_assignment_apply, assignment_id)


@shared_task(bind=True, name="chromeos.tasks.policy_assignment_unassign_task")
def policy_assignment_unassign_task(self: Any, assignment_id: int) -> str:
    return _run(self, policy_assignment_unassign, assignment_id)


@shared_task(name="chromeos.tasks.policy_revert_detached_task")
def policy_revert_detached_task(job: dict[str, Any]) -> bool:
    """Put back at Google what the assignments of a deleted Blueprint or app wrote (no retry: audited if not)."""
    return policy_revert_detached(job)
