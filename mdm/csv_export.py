"""CSV exports that spreadsheets open right and cannot turn into formulas.

* **Formulas.** A cell a spreadsheet would read as a formula gets a leading apostrophe: one starting with
  ``= + - @``, a tab, a carriage return or a line feed, also after leading blanks (`` =1+1``: spaces, tabs,
  no-break and typographic spaces), and the full-width signs Excel folds into them (``＝ ＋ － ＠``). Exported text comes from people (annotations) and from Google.
* **Language.** With the interface in French the separator is ``;`` (French Excel splits on it; ``,`` is the
  decimal comma), dates are ``dd/mm/yyyy``, decimals take a comma, yes/no are « oui »/« non »; in English, ``,``
  and ISO dates. ``?sep=comma`` or ``?sep=semicolon`` (or ``,`` / ``;``) overrides the separator whatever the
  language.
* **Times** are in the current time zone (the console's display zone), never UTC.
* **Encoding** is UTF-8 with a byte-order mark, which Excel needs to read accents right.
* **Invisible characters** (bidi controls, zero-width) become their visible markers, as on the pages
  (``mdm/display.py``): a spreadsheet shows text as a page does.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, tzinfo
from decimal import Decimal
from typing import Any

from django.http import HttpRequest, StreamingHttpResponse
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from mdm.display import neutralise

BOM = "\ufeff"
_FORMULA_STARTS = frozenset("=+-@\t\r\n＝＋－＠")
# Spaces a spreadsheet skips before a formula: ASCII, no-break, the typographic ones (en/em/thin/hair… U+2000-200A,
# narrow no-break U+202F, medium mathematical U+205F) and the ideographic one.
_LEADING_BLANKS = " \t\u00a0" + "".join(map(chr, range(0x2000, 0x200B))) + "\u202f\u205f\u3000"
SEPARATORS = {"semicolon": ";", "comma": ",", ";": ";", ",": ","}


def csv_safe(text: str) -> str:
    """``text`` as a cell no spreadsheet evaluates."""
    if text[:1] in _FORMULA_STARTS or text.lstrip(_LEADING_BLANKS)[:1] in _FORMULA_STARTS:
        return "'" + text
    return text


@dataclass(frozen=True)
class CsvFormat:
    delimiter: str
    french: bool
    # Read when the view runs: the rows are formatted while the response streams, after the view returned.
    tz: tzinfo | None = None

    @property
    def sep_param(self) -> str:
        return "semicolon" if self.delimiter == ";" else "comma"

    def cell(self, value: Any) -> str:
        """One value as the cell text: localised, neutralised."""
        if value is None:
            return ""
        if isinstance(value, bool):
            return _("oui") if value else _("non")
        if isinstance(value, datetime):
            value = timezone.localtime(value, self.tz) if timezone.is_aware(value) else value
            return value.strftime("%d/%m/%Y %H:%M:%S" if self.french else "%Y-%m-%d %H:%M:%S")
        if isinstance(value, date):
            return value.strftime("%d/%m/%Y" if self.french else "%Y-%m-%d")
        if isinstance(value, int):
            return str(value)
        if isinstance(value, float | Decimal):
            text = str(value)
            return text.replace(".", ",") if self.french else text
        return csv_safe(neutralise(str(value)))


def csv_format(request: HttpRequest) -> CsvFormat:
    """The export's format: the interface language's, unless ``?sep=`` names the separator."""
    french = (translation.get_language() or "").startswith("fr")
    delimiter = SEPARATORS.get(request.GET.get("sep", ""), ";" if french else ",")
    return CsvFormat(delimiter=delimiter, french=french, tz=timezone.get_current_timezone())


class _Echo:
    """A file-like object whose write returns the line: csv.writer then yields rows to the response."""

    def write(self, value: str) -> str:
        return value


def csv_response(
    fmt: CsvFormat, header: list[str], rows: Iterable[Iterable[Any]], *, filename: str
) -> StreamingHttpResponse:
    """A streamed CSV attachment: the header as given, each row's values through :meth:`CsvFormat.cell`."""
    # The language is read now: the rows are formatted while the response streams, after the view returned.
    language = translation.get_language()

    def stream() -> Iterator[str]:
        with translation.override(language):
            writer = csv.writer(_Echo(), delimiter=fmt.delimiter)
            yield BOM
            yield writer.writerow([csv_safe(neutralise(h)) for h in header])
            for row in rows:
                yield writer.writerow([fmt.cell(v) for v in row])

    response = StreamingHttpResponse(stream(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response
