"""The Celery application: ``celery -A celery_app worker`` and ``celery -A celery_app beat``.

Configuration lives in Django settings under the ``CELERY_`` prefix (mdm/settings.py), beat schedule included.
"""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mdm.settings")

app = Celery("mdm")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
