"""Strict parsing of JSON typed by a user (Blueprint settings): a clear error for anything PostgreSQL, the
ChromeOS policies or the browser could not take back, never a 500.

Python's ``json`` accepts more than JSON: ``NaN`` and ``Infinity``; ``1e999`` becomes ``inf``; ``"\\ud800"`` becomes
a lone surrogate (not encodable as UTF-8); ``"\\u0000"`` is refused by PostgreSQL's ``jsonb``; deep nesting
exhausts the recursion limit; a 5,000-digit integer exceeds Python's conversion limit. Each is refused here with
its own message, within these limits:

=====================  =========  ===================================================================
limit                  value      why
=====================  =========  ===================================================================
``MAX_JSON_CHARS``     65,536     a Blueprint's settings are a few keys; 64 KiB leaves room to spare
``MAX_JSON_DEPTH``     32         policies nest 3 or 4 levels; the recursion limit is about 1,000
``MAX_NUMBER_CHARS``   32         a 64-bit integer has 20 characters; a double's repr up to 24
=====================  =========  ===================================================================
"""

from __future__ import annotations

import json
import math
from typing import Any

MAX_JSON_CHARS = 64 * 1024
MAX_JSON_DEPTH = 32
MAX_NUMBER_CHARS = 32


def _(message: str) -> str:  # marks msgids; the form translates them
    return message


class JSONInputError(ValueError):
    def __init__(self, message: str, **params: Any) -> None:
        self.message = message
        self.params = params
        super().__init__(message % params if params else message)


def _reject_constant(name: str) -> Any:
    raise JSONInputError(_("NaN et Infinity ne sont pas du JSON : utilisez un nombre."))


def _parse_float(text: str) -> float:
    if len(text) > MAX_NUMBER_CHARS:
        raise JSONInputError(_("Nombre trop long (%(limit)s caractères au plus)."), limit=MAX_NUMBER_CHARS)
    value = float(text)
    if not math.isfinite(value):
        raise JSONInputError(_("Nombre hors limites : %(number)s."), number=text[:MAX_NUMBER_CHARS])
    return value


def _parse_int(text: str) -> int:
    if len(text) > MAX_NUMBER_CHARS:
        raise JSONInputError(_("Nombre trop long (%(limit)s caractères au plus)."), limit=MAX_NUMBER_CHARS)
    return int(text)


def _check_text(value: str) -> None:
    for char in value:
        code = ord(char)
        if code == 0:
            raise JSONInputError(_("Le caractère nul (\\u0000) n'est pas permis."))
        if 0xD800 <= code <= 0xDFFF:
            raise JSONInputError(_("Caractère Unicode invalide (demi-paire de substitution isolée)."))


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        _check_text(key)
        if key in result:
            raise JSONInputError(_("La clé « %(key)s » apparaît deux fois."), key=key[:100])
        result[key] = value
    return result


def _depth(text: str) -> int:
    """The deepest nesting of ``[`` / ``{`` outside strings, measured before parsing (recursion-free)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _walk(value: Any) -> None:
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            _check_text(item)
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def parse_json_input(text: str) -> Any:
    """Parse ``text`` strictly; raise :class:`JSONInputError` (a translatable message) otherwise."""
    if len(text) > MAX_JSON_CHARS:
        raise JSONInputError(_("Texte JSON trop long (%(limit)s caractères au plus)."), limit=MAX_JSON_CHARS)
    if _depth(text) > MAX_JSON_DEPTH:
        raise JSONInputError(_("JSON trop imbriqué (%(limit)s niveaux au plus)."), limit=MAX_JSON_DEPTH)
    try:
        value = json.loads(
            text,
            parse_constant=_reject_constant,
            parse_float=_parse_float,
            parse_int=_parse_int,
            object_pairs_hook=_object,
        )
    except JSONInputError:
        raise
    except (ValueError, RecursionError) as exc:
        raise JSONInputError(_("JSON invalide : %(error)s"), error=str(exc)[:200]) from exc
    _walk(value)
    return value
