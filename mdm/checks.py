"""Deployment checks (``manage.py check --deploy``): the encryption keys and the SECRET_KEY a production console
must have."""

from __future__ import annotations

import base64
from typing import Any

from cryptography.fernet import Fernet
from django.conf import settings
from django.core.checks import Error, Tags, register
from django.core.checks.security.base import (
    SECRET_KEY_INSECURE_PREFIX,
    SECRET_KEY_MIN_LENGTH,
    SECRET_KEY_MIN_UNIQUE_CHARACTERS,
)

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
        # Compared decoded: the decoder skips characters outside base64 and extra padding, so the development key
        # re-padded or with a stray character is still the development key.
        if base64.urlsafe_b64decode(key.encode()) == base64.urlsafe_b64decode(_DEV_ENCRYPTION_KEY):
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


SIGNING_KEY_HINT = "Generate one: python -c 'import secrets; print(secrets.token_urlsafe(50))'"


def secret_key_problems(secret_key: str) -> list[tuple[str, str]]:
    """``(check id, message)`` when SECRET_KEY is the public development value or too weak; never quotes it.

    Django's own security.W009 is only a warning and does not know this project's development value: sessions,
    password-reset tokens and signed values would be forgeable, so both are errors here."""
    from mdm.settings import _DEV_SECRET_KEY

    if secret_key.strip() == _DEV_SECRET_KEY:
        return [
            (
                "mdm.E004",
                "SECRET_KEY is the public development key: anyone can forge sessions and signatures.",
            )
        ]
    if (
        len(secret_key) < SECRET_KEY_MIN_LENGTH
        or len(set(secret_key)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS
        or secret_key.startswith(SECRET_KEY_INSECURE_PREFIX)
    ):
        return [
            (
                "mdm.E005",
                f"SECRET_KEY is weak: it needs at least {SECRET_KEY_MIN_LENGTH} characters, "
                f"{SECRET_KEY_MIN_UNIQUE_CHARACTERS} of them different, and no '{SECRET_KEY_INSECURE_PREFIX}' prefix.",
            )
        ]
    return []


@register(Tags.security, deploy=True)
def check_secret_key(app_configs: Any = None, **kwargs: Any) -> list[Error]:
    return [
        Error(message, hint=SIGNING_KEY_HINT, id=check_id)
        for check_id, message in secret_key_problems(settings.SECRET_KEY)
    ]
