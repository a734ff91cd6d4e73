"""No 500 from any input (issue 14, "What to build" 4): Blueprint settings JSON is parsed strictly, with limits.
Each case gave a 500 before (or was stored and broke later)."""

from __future__ import annotations

import pytest
from django.urls import reverse

from mdm.jsoninput import MAX_JSON_CHARS, MAX_JSON_DEPTH
from mdm.models import Blueprint

pytestmark = pytest.mark.django_db

BAD_JSON = {
    "nul": ('{"a": "x\\u0000y"}', "caractère nul"),
    "nan": ('{"a": NaN}', "NaN et Infinity"),
    "infinity": ('{"a": -Infinity}', "NaN et Infinity"),
    "overflow": ('{"a": 1e999}', "Nombre hors limites"),
    "long integer": ('{"a": ' + "9" * 5000 + "}", "Nombre trop long"),
    "lone surrogate": ('{"a": "\\ud800"}', "demi-paire"),
    "lone surrogate key": ('{"\\udfff": 1}', "demi-paire"),
    "deep nesting": ("[" * 5000 + "]" * 5000, "trop imbriqué"),
    "too long": ('{"a": "' + "x" * (MAX_JSON_CHARS + 1) + '"}', "trop long"),
    "duplicate key": ('{"a": 1, "a": 2}', "apparaît deux fois"),
    "syntax": ('{"a": ', "JSON invalide"),
}


@pytest.mark.parametrize("case", sorted(BAD_JSON))
def test_blueprint_settings_json_is_parsed_strictly(case, admin_client_):
    text, message = BAD_JSON[case]
    response = admin_client_.post(
        reverse("mdm:blueprint_create"), {"name": "Stricte", "platform": "android", "settings": text}
    )
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not Blueprint.unscoped.exists()


def test_blueprint_settings_within_the_limits_are_kept(admin_client_):
    nested = "[" * (MAX_JSON_DEPTH - 1) + "1" + "]" * (MAX_JSON_DEPTH - 1)
    text = '{"a": "[{ not nesting }]", "b": 1.5, "c": -12, "d": ' + nested + "}"
    response = admin_client_.post(
        reverse("mdm:blueprint_create"), {"name": "Correcte", "platform": "android", "settings": text}
    )
    assert response.status_code == 302
    assert Blueprint.unscoped.get().settings["b"] == 1.5


def test_blueprint_settings_errors_are_translated(admin_client_):
    response = admin_client_.post(
        reverse("mdm:blueprint_create"),
        {"name": "X", "platform": "android", "settings": '{"a": NaN}'},
        HTTP_ACCEPT_LANGUAGE="en",
    )
    assert "NaN and Infinity are not JSON" in response.content.decode()
