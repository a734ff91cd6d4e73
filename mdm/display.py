"""Display safety: invisible formatting characters in text that comes from Google or LDAP.

Device fields, OU paths, LDAP names and the audit targets built from them are typed by people outside the
console. Bidi controls (U+202A–202E, U+2066–2069, U+200E/200F, U+061C) reorder what follows them: a serial
``doc<U+202E>fdp.exe`` renders as ``docexe.pdf``; zero-width characters (U+200B–200D, U+2060, U+FEFF) make
two different values look the same. Shown, each becomes a visible marker (``⟨U+202E⟩``); searched, each is
ignored.

Where it is done, and why there: :class:`DisplaySafetyMiddleware` rewrites every HTML response on its way out
(console pages, htmx partials, django-admin, error pages). A template filter would have to be remembered at
every ``{{ }}`` of every page, by every lane that writes one, and django-admin renders through its own code;
the last step before the browser cannot be forgotten. Stored data is never rewritten, and the values a form
posts back are left exactly as they are (``value="..."`` attributes, ``<textarea>``), so saving a form
unchanged never changes the data. The console's own templates and catalogues contain none of these
characters, so nothing of ours is altered.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from django.db.models import Case, Func, TextField, Value, When
from django.db.models.functions import Length
from django.db.models.lookups import Exact
from django.http import HttpRequest, HttpResponse

BIDI_CONTROLS = (
    *range(0x202A, 0x202F),  # LRE, RLE, PDF, LRO, RLO
    *range(0x2066, 0x206A),  # LRI, RLI, FSI, PDI
    0x200E,  # LRM
    0x200F,  # RLM
    0x061C,  # ALM
)
ZERO_WIDTH = (0x200B, 0x200C, 0x200D, 0x2060, 0xFEFF)
INVISIBLE = frozenset((*BIDI_CONTROLS, *ZERO_WIDTH))
INVISIBLE_CHARS = "".join(chr(cp) for cp in sorted(INVISIBLE))

_MARKERS = {cp: f"⟨U+{cp:04X}⟩" for cp in INVISIBLE}
_STRIP: dict[int, None] = dict.fromkeys(INVISIBLE)
_MARKER_TEXT = re.compile(r"⟨U\+(?:" + "|".join(f"{cp:04X}" for cp in sorted(INVISIBLE)) + r")⟩", re.I)
_INVISIBLE_RE = re.compile(f"[{re.escape(INVISIBLE_CHARS)}]")
_INVISIBLE_BYTES = re.compile(b"|".join(re.escape(chr(cp).encode()) for cp in sorted(INVISIBLE)))


def neutralise(text: str) -> str:
    """``text`` with every invisible formatting character replaced by its visible marker."""
    return text.translate(_MARKERS)


def strip_invisible(text: str) -> str:
    """``text`` without invisible formatting characters, nor the markers a copy from a page carries."""
    return _MARKER_TEXT.sub("", text).translate(_STRIP)


def unmark(text: str) -> str:
    """``text`` with markers turned back into the characters they show: a value copied from a page and pasted
    into an exact-match filter (an OU path) finds what it was copied from."""
    return _MARKER_TEXT.sub(lambda m: chr(int(m.group(0)[3:-1], 16)), text)


def has_invisible(text: str) -> bool:
    return _INVISIBLE_RE.search(text) is not None


class StripInvisible(Func):
    """SQL twin of :func:`strip_invisible` (without the markers): ``translate(expr, <characters>, '')``.

    Immutable, so a generated column and its index can use it.
    """

    function = "TRANSLATE"

    def __init__(self, expression: object, **extra: Any) -> None:
        super().__init__(expression, Value(INVISIBLE_CHARS), Value(""), **extra)


# -- HTML responses -------------------------------------------------------------------------------------------
# One pass: what a form posts back (a ``value="..."`` attribute, a ``<textarea>``) and our scripts and styles
# are matched and kept; any other invisible character is matched and replaced. Outside tags, autoescaping
# turns every ``"`` into ``&quot;``, so ``value="`` only ever matches inside a tag.
_HTML_TOKENS = re.compile(
    r"<(textarea|script|style)\b.*?</\1\s*>"
    r"""|\svalue\s*=\s*(?:"[^"]*"|'[^']*')"""
    f"|[{re.escape(INVISIBLE_CHARS)}]",
    re.S | re.I,
)


def _replace(match: re.Match[str]) -> str:
    token = match.group(0)
    return _MARKERS[ord(token)] if len(token) == 1 else token


def neutralise_html(html: str) -> str:
    """Markers for invisible characters in an HTML document's text and attributes, except what a form posts
    back (``value`` attributes, ``<textarea>``) and scripts and styles (ours, which hold no outside text)."""
    return _HTML_TOKENS.sub(_replace, html)


class DisplaySafetyMiddleware:
    """Neutralise invisible formatting characters in every HTML response (see the module docstring)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if response.streaming or not response.get("Content-Type", "").startswith("text/html"):
            return response
        body = response.content
        # Nearly every page holds none: one byte scan, and the page goes out untouched.
        if not _INVISIBLE_BYTES.search(body):
            return response
        charset = response.charset or "utf-8"
        response.content = neutralise_html(body.decode(charset)).encode(charset)
        if response.has_header("Content-Length"):
            response["Content-Length"] = str(len(response.content))
        return response


# -- Accent folding ----------------------------------------------------------------------------------------------
# Lower-case Latin letters with diacritics and their base letter, one for one (TRANSLATE maps characters, not
# strings: « œ », « æ », « ß » stay as they are).
ACCENTED = "àáâãäåāăąçćčďđèéêëēėęěìíîïīįłñńňòóôõöøōőŕřśšşťţùúûüūůűųýÿźżž"
UNACCENTED = "aaaaaaaaacccddeeeeeeeeiiiiiilnnnoooooooorrsssttuuuuuuuuyyzzz"
_FOLD = str.maketrans(ACCENTED, UNACCENTED)


def fold_accents(text: str) -> str:
    """« Zoé Lefèvre » → « zoe lefevre »: lower-cased, accents dropped (Python twin of ``FoldAccents``)."""
    return text.lower().translate(_FOLD)


class FoldAccents(Func):
    """SQL twin of :func:`fold_accents` for lower-cased text: ``translate(expr, 'àá…', 'aa…')``.

    Immutable (unlike ``unaccent``), so a generated column and its index can use it.
    """

    function = "TRANSLATE"

    def __init__(self, expression: object, **extra: Any) -> None:
        super().__init__(expression, Value(ACCENTED), Value(UNACCENTED), **extra)


def search_fold(expression: Any) -> Case:
    """Search text for a generated column: ``expression`` (lower-cased) with invisible characters stripped and
    accents folded (``FoldAccents(StripInvisible(…))``), except that ASCII text is taken as it is.

    Every character these translates change is outside ASCII, and ASCII is what most of a device's search text
    is (serials, MACs, e-mail addresses). PostgreSQL's ``translate`` costs the text's length times the length
    of its character list for every row written: the two of them were a fifth of the CPU of a first sync's
    insert (issue 18, ``perf``), where ``octet_length = char_length`` is one pass.
    """
    return Case(
        When(Exact(Func(expression, function="OCTET_LENGTH"), Length(expression)), then=expression),
        default=FoldAccents(StripInvisible(expression, output_field=TextField()), output_field=TextField()),
        output_field=TextField(),
    )
