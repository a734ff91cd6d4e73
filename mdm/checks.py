"""Deployment checks (``manage.py check --deploy``): the encryption keys a production console must have."""

from __future__ import annotations

from typing import Any

from cryptography.fernet import Fernet
from django.conf import settings
from django.core.checks import Error, Tags, register

DEV_KEY_HINT = (
    "Generate one: python -c 'from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())'"
)


def key_problems(keys: list[str]) -> list[tuple[str, str]]:
    """``(check id, message)`` for every unusable key; the messages never quote a key."""
    from mdm.settings import _DEV_ENCRYPTION_KEY

    if not keys:
        return [("mdm.E001", "MDM_ENCRYPTION_KEYS is empty: secrets can be neither stored nor read.")]
    problems = []
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key.encode())
        except (ValueError, TypeError):
            problems.append(
                (
                    "mdm.E002",
                    f"MDM_ENCRYPTION_KEYS key #{position} is not a Fernet key "
                    "(32 bytes, url-safe base64, 44 characters).",
                )
            )
            continue
        if key == _DEV_ENCRYPTION_KEY:
            problems.append(
                (
                    "mdm.E003",
                    f"MDM_ENCRYPTION_KEYS key #{position} is the public development key: anyone can decrypt "
                    "what it encrypts.",
                )
            )
    return problems


@register(Tags.security, deploy=True)
def check_encryption_keys(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    return [
        Error(message, hint=DEV_KEY_HINT, id=check_id)
        for check_id, message in key_problems(list(settings.MDM_ENCRYPTION_KEYS))
    ]
