"""A test-only model carrying an encrypted field, so the field is tested apart from any integration."""

from django.db import models

from mdm.fields import EncryptedTextField
from mdm.tenancy import TenantOwnedModel


class SecretNote(TenantOwnedModel):
    label = models.CharField(max_length=50)
    secret = EncryptedTextField(blank=True)

    class Meta:
        app_label = "testapp"
