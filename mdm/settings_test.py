"""Fast settings for the test suite: same PostgreSQL and Redis as development, cheaper hashing."""

import os

os.environ.setdefault("DJANGO_DEBUG", "1")
os.environ.setdefault("CACHE_KEY_PREFIX", f"mdm-test-{os.getpid()}")

from mdm.settings import *  # noqa: F403

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tasks run inline unless a test starts a real worker; enqueueing still goes through transaction.on_commit.
# MDM_CELERY_EAGER=0: a real worker subprocess started by a test (e.g. the sync's SIGKILL test) runs them.
CELERY_TASK_ALWAYS_EAGER = os.environ.get("MDM_CELERY_EAGER", "1") == "1"
CELERY_TASK_EAGER_PROPAGATES = True

INSTALLED_APPS = [*INSTALLED_APPS, "tests.testapp"]  # noqa: F405
