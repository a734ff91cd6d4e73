"""Fast settings for the test suite: same PostgreSQL and Redis as development, cheaper hashing."""

import os

os.environ.setdefault("DJANGO_DEBUG", "1")
os.environ.setdefault("CACHE_KEY_PREFIX", f"mdm-test-{os.getpid()}")

from mdm.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tasks run inline unless a test starts a real worker; enqueueing still goes through transaction.on_commit.
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True

INSTALLED_APPS = [*INSTALLED_APPS, "tests.testapp"]  # noqa: F405
