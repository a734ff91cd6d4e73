"""Fast settings for the test suite: same PostgreSQL and Redis as development, cheaper hashing."""

import os

os.environ.setdefault("DJANGO_DEBUG", "1")
# One cache namespace per test process. pytest-xdist's workers inherit the controller's environment, and the
# controller imports these settings too: a prefix it set would be shared by every worker, whose databases number
# their rows alike (a device job's retry notice, keyed by its id, showed on another worker's job). A process
# started by a test (a real Celery worker) inherits its worker's prefix, ending in that worker's id, and keeps it.
_xdist_worker = os.environ.get("PYTEST_XDIST_WORKER")
if _xdist_worker and not os.environ.get("CACHE_KEY_PREFIX", "").endswith(f"-{_xdist_worker}"):
    os.environ["CACHE_KEY_PREFIX"] = f"mdm-test-{os.getpid()}-{_xdist_worker}"
os.environ.setdefault("CACHE_KEY_PREFIX", f"mdm-test-{os.getpid()}")

from mdm.settings import *  # noqa: E402, F403 - the environment above must be set before the settings read it

PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
# Tasks run inline unless a test starts a real worker; enqueueing still goes through transaction.on_commit.
# MDM_CELERY_EAGER=0: a real worker subprocess started by a test (e.g. the sync's SIGKILL test) runs them.
CELERY_TASK_ALWAYS_EAGER = os.environ.get("MDM_CELERY_EAGER", "1") == "1"
CELERY_TASK_EAGER_PROPAGATES = True

INSTALLED_APPS = [*INSTALLED_APPS, "tests.testapp"]  # noqa: F405
# The suite's own slapd servers listen on free ports of the loopback (the console's services stay refused).
MDM_OUTBOUND_ALLOWED_NETWORKS = ["127.0.0.0/8", "::1/128"]
MDM_OUTBOUND_ALLOWED_PORTS = ["1024-65535"]
