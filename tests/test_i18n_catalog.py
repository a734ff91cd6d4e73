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


def test_french_plurals_are_spelled_out():
    """Untranslated plurals fall back to English's rule (0 → plural); French says « 0 périphérique »."""
    for po_path in [LOCALE, *Path(LOCALE.parent).glob("*/locale")]:
        po = polib.pofile(str(po_path / "fr" / "LC_MESSAGES" / "django.po"))
        missing = [
            e.msgid for e in po if e.msgid_plural and not e.obsolete and not all(e.msgstr_plural.values())
        ]
        assert not missing, f"Fill msgstr[0]/msgstr[1] in {po_path}/fr for: {missing}"
