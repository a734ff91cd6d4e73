"""Secrets at rest: a model field encrypted with Fernet, storing the key id with each value.

Stored form: ``<key id>$<Fernet token>``, where the key id is the first 8 hex digits of the SHA-256 of the key.
``MDM_ENCRYPTION_KEYS`` lists the keys, newest first: the first encrypts, every listed key decrypts. To rotate:
put a new key first, deploy, run ``manage.py rotate_encryption_keys``, then drop the old key.

A value that no listed key can decrypt raises :class:`DecryptionError`; it never silently reads as empty.
Serialization (``dumpdata``) writes the stored form, never the clear value.
"""

from __future__ import annotations

import hashlib
import re
from functools import cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.db import models

_STORED = re.compile(r"^(?P<kid>[0-9a-f]{8})\$(?P<token>gAAAAA[A-Za-z0-9_\-=]+)$")
MASK = "••••••••"


class DecryptionError(RuntimeError):
    """An encrypted value could not be decrypted with any configured key."""


def key_id(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:8]


@cache
def _keyring(keys: tuple[str, ...]) -> tuple[str, dict[str, Fernet]]:
    if not keys:
        raise DecryptionError("MDM_ENCRYPTION_KEYS is empty.")
    ring = {key_id(k): Fernet(k.encode()) for k in keys}
    return key_id(keys[0]), ring


def keyring() -> tuple[str, dict[str, Fernet]]:
    return _keyring(tuple(settings.MDM_ENCRYPTION_KEYS))


def primary_key_id() -> str:
    return keyring()[0]


def encrypt(plaintext: str) -> str:
    kid, ring = keyring()
    return f"{kid}${ring[kid].encrypt(plaintext.encode()).decode()}"


def is_encrypted(value: str) -> bool:
    return bool(_STORED.match(value))


def decrypt(stored: str) -> str:
    match = _STORED.match(stored)
    if not match:
        raise DecryptionError("Value is not in the encrypted form '<key id>$<token>'.")
    _, ring = keyring()
    fernet = ring.get(match["kid"])
    if fernet is None:
        raise DecryptionError(f"Key {match['kid']} is not in MDM_ENCRYPTION_KEYS.")
    try:
        return fernet.decrypt(match["token"].encode()).decode()
    except InvalidToken as exc:
        raise DecryptionError(f"Value encrypted with key {match['kid']} failed authentication.") from exc


def mask(value: str | None) -> str:
    """What a screen shows instead of a secret: whether one is set, nothing of its content."""
    return MASK if value else ""


class StoredCiphertext(str):
    """A value in the stored form, as ``dumpdata`` wrote it: ``loaddata`` saves it as it is, never decrypted."""


class EncryptedTextField(models.TextField):
    """A text secret, encrypted in the database. Empty values are stored as empty (nothing to hide).

    Only :meth:`from_db_value` decrypts. Anything else (form input, django-admin, a model's ``full_clean``) is
    plain text, even when it looks like ciphertext: otherwise a tenant admin could paste another tenant's
    ciphertext (from a backup) as a password and have the console decrypt it and send it to their server.
    """

    def from_db_value(self, value: str | None, expression: Any, connection: Any) -> str | None:
        if not value:
            return value
        return decrypt(value)

    def to_python(self, value: Any) -> Any:
        # The deserializers (loaddata) call this with what value_to_string wrote: the stored form, kept as is.
        if isinstance(value, str) and not isinstance(value, StoredCiphertext) and is_encrypted(value):
            return StoredCiphertext(value)
        return value

    def clean(self, value: Any, model_instance: models.Model | None) -> Any:
        # Model validation also goes through to_python: there a value is whatever the user typed.
        cleaned = super().clean(value, model_instance)
        return str.__str__(cleaned) if isinstance(cleaned, StoredCiphertext) else cleaned

    def get_prep_value(self, value: Any) -> Any:
        # Field's, not TextField's: TextField.get_prep_value runs to_python, which would take typed text
        # that looks like ciphertext for the stored form.
        value = models.Field.get_prep_value(self, value)
        if not value:
            return value
        if isinstance(value, StoredCiphertext):
            decrypt(value)  # a dump made with other keys fails loudly here instead of storing garbage
            return str.__str__(value)
        return encrypt(str(value))

    def value_to_string(self, obj: models.Model) -> str:
        value = self.value_from_object(obj)
        if isinstance(value, StoredCiphertext):
            return str.__str__(value)
        return encrypt(str(value)) if value else ""


def encrypted_fields() -> list[tuple[type[models.Model], EncryptedTextField]]:
    from django.apps import apps

    return [
        (model, field)
        for model in apps.get_models()
        for field in model._meta.concrete_fields
        if isinstance(field, EncryptedTextField)
    ]
