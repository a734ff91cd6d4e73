"""French is the source language; every message shown to users must have its English translation."""

from pathlib import Path

import polib

LOCALE = Path(__file__).resolve().parent.parent / "locale"


def test_english_catalog_translates_every_message():
    po = polib.pofile(str(LOCALE / "en" / "LC_MESSAGES" / "django.po"))
    untranslated = [e.msgid for e in po if not e.obsolete and (not e.translated() or "fuzzy" in e.flags)]
    assert not untranslated, f"Translate these in locale/en/LC_MESSAGES/django.po: {untranslated}"


def test_french_catalog_exists():
    assert (LOCALE / "fr" / "LC_MESSAGES" / "django.po").exists()
