import subprocess
from io import StringIO

import pytest
from cryptography.fernet import Fernet
from django.conf import settings
from django.core.management import call_command
from django.db import connection

from mdm.fields import MASK, DecryptionError, key_id, mask
from tests.testapp.models import SecretNote

SECRET = "refresh-token-1//0gAbCdEf-ultra-secret"


def raw_value(pk):
    with connection.cursor() as cur:
        cur.execute("SELECT secret FROM testapp_secretnote WHERE id = %s", [pk])
        return cur.fetchone()[0]


@pytest.fixture
def note(tenant):
    return SecretNote.unscoped.create(tenant=tenant, label="n", secret=SECRET)


@pytest.mark.django_db
def test_round_trip_and_stored_form(note):
    assert SecretNote.unscoped.get(pk=note.pk).secret == SECRET
    stored = raw_value(note.pk)
    assert SECRET not in stored
    assert stored.startswith(key_id(settings.MDM_ENCRYPTION_KEYS[0]) + "$gAAAAA")


@pytest.mark.django_db
def test_empty_secret_stays_empty(tenant):
    note = SecretNote.unscoped.create(tenant=tenant, label="e", secret="")
    assert raw_value(note.pk) == ""
    assert SecretNote.unscoped.get(pk=note.pk).secret == ""


@pytest.mark.django_db
def test_unknown_key_raises_instead_of_reading_empty(note, settings):
    settings.MDM_ENCRYPTION_KEYS = [Fernet.generate_key().decode()]
    with pytest.raises(DecryptionError, match="not in MDM_ENCRYPTION_KEYS"):
        SecretNote.unscoped.get(pk=note.pk)


@pytest.mark.django_db
def test_tampered_value_raises(note):
    stored = raw_value(note.pk)
    with connection.cursor() as cur:
        cur.execute(
            "UPDATE testapp_secretnote SET secret = %s WHERE id = %s", [stored[:-8] + "AAAAAAA=", note.pk]
        )
    with pytest.raises(DecryptionError, match="failed authentication"):
        SecretNote.unscoped.get(pk=note.pk)


@pytest.mark.django_db
def test_rotation_re_encrypts_with_the_new_first_key(note, settings):
    old_key = settings.MDM_ENCRYPTION_KEYS[0]
    new_key = Fernet.generate_key().decode()
    settings.MDM_ENCRYPTION_KEYS = [new_key, old_key]
    assert raw_value(note.pk).startswith(key_id(old_key))
    out = StringIO()
    call_command("rotate_encryption_keys", stdout=out)
    assert "testapp.SecretNote.secret: 1 value(s) re-encrypted" in out.getvalue()
    assert raw_value(note.pk).startswith(key_id(new_key) + "$")
    settings.MDM_ENCRYPTION_KEYS = [new_key]  # the old key can go now
    assert SecretNote.unscoped.get(pk=note.pk).secret == SECRET
    out = StringIO()
    call_command("rotate_encryption_keys", stdout=out)
    assert "0 value(s) re-encrypted" in out.getvalue()


@pytest.mark.django_db
def test_dumpdata_writes_ciphertext_and_loaddata_reads_it_back(note, tmp_path):
    out = StringIO()
    # --all: support dumps across tenants through the base (unscoped) manager.
    call_command("dumpdata", "testapp", "--all", stdout=out)
    assert SECRET not in out.getvalue()
    dump = tmp_path / "dump.json"
    dump.write_text(out.getvalue())
    SecretNote.unscoped.all().delete()
    call_command("loaddata", str(dump), verbosity=0)
    assert SecretNote.unscoped.get().secret == SECRET


@pytest.mark.django_db(transaction=True)
def test_secret_not_in_a_pg_dump(tenant):
    SecretNote.unscoped.create(tenant=tenant, label="dump", secret=SECRET)
    db = connection.settings_dict
    dump = subprocess.run(
        [
            "pg_dump",
            "-h",
            db["HOST"],
            "-p",
            str(db["PORT"]),
            "-U",
            db["USER"],
            "-t",
            "testapp_secretnote",
            db["NAME"],
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "testapp_secretnote" in dump
    assert SECRET not in dump


def test_mask_shows_nothing_of_the_secret():
    assert mask(SECRET) == MASK
    assert not set(SECRET) & set(mask(SECRET))
    assert mask("") == ""


@pytest.mark.django_db
def test_pasted_ciphertext_is_plain_text_never_decrypted(note, other_tenant):
    """Only the database decrypts: another tenant's ciphertext typed into a form stays that text."""
    ciphertext = raw_value(note.pk)
    pasted = SecretNote(tenant=other_tenant, label="pasted", secret=ciphertext)
    pasted.full_clean()  # what every ModelForm and django-admin does
    assert pasted.secret == ciphertext
    pasted.save()
    assert SecretNote.unscoped.get(pk=pasted.pk).secret == ciphertext
    assert raw_value(pasted.pk) != ciphertext  # encrypted as any other text


@pytest.mark.django_db
@pytest.mark.parametrize("lookalike", ["0123abcd$gAAAAAnot-a-token", "ffffffff$gAAAAA" + "A" * 120])
def test_a_ciphertext_lookalike_is_text_and_never_an_error(lookalike, tenant):
    note = SecretNote(tenant=tenant, label="l", secret=lookalike)
    note.full_clean()
    note.save()
    assert SecretNote.unscoped.get(pk=note.pk).secret == lookalike
