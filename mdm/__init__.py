# Load the Celery app with Django so that @shared_task binds to it in web processes too.
from celery_app import app as celery_app

__all__ = ["celery_app"]
