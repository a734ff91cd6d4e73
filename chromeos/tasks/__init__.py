"""Celery tasks of the ChromeOS integration (thin: load by id, call one service). Imported here so that
``app.autodiscover_tasks()`` registers every area's tasks."""

from chromeos.tasks.actions import *  # noqa: F403
from chromeos.tasks.policies import *  # noqa: F403
from chromeos.tasks.removal import *  # noqa: F403
from chromeos.tasks.sync import *  # noqa: F403
