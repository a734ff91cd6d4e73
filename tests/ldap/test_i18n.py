"""The LDAP app's catalog (ldap_sync/locale) translates every message into English."""

from pathlib import Path

import polib
import pytest
from django.urls import reverse
from django.utils import translation

from ldap_sync.client import LdapInvalidCredentials

LOCALE = Path(__file__).resolve().parents[2] / "ldap_sync" / "locale"


def test_english_catalog_translates_every_message():
    po = polib.pofile(str(LOCALE / "en" / "LC_MESSAGES" / "django.po"))
    untranslated = [e.msgid for e in po if not e.obsolete and (not e.translated() or "fuzzy" in e.flags)]
    assert not untranslated, f"Translate these in ldap_sync/locale/en/LC_MESSAGES/django.po: {untranslated}"


def test_client_messages_are_translated_at_display_time():
    with translation.override("en"):
        assert translation.gettext(LdapInvalidCredentials.default_message).startswith("Credentials refused")


@pytest.mark.django_db
def test_the_page_speaks_english_too(admin_client_):
    admin_client_.cookies["django_language"] = "en"
    page = admin_client_.get(reverse("ldap_sync:directory"), HTTP_ACCEPT_LANGUAGE="en").content.decode()
    assert "Add organisational units" in page and "Test the connection" in page
