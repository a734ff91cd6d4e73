"""Benchmark: what display safety (``mdm/display.py``) adds to a page.

Usage: ``.venv/bin/python benchmarks/display_safety.py [--rows 200] [--repeat 200]``

No database: it builds a device-list-like HTML page (a table of N rows with inputs, links and a search form,
~0.6 KB per row) and times, per page, the middleware's work in its two cases:

* **clean page** (nearly every page): one byte scan of the body, nothing rewritten;
* **page with invisible characters** (one row's serial holds U+202E): decode, tokenise, rewrite, encode.

Prints the median time per page and the page size.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "mdm.settings")
os.environ.setdefault("DJANGO_DEBUG", "1")

import django  # noqa: E402

django.setup()

from django.http import HttpRequest, HttpResponse  # noqa: E402

from mdm.display import DisplaySafetyMiddleware  # noqa: E402


def page(rows: int, spoof: bool) -> str:
    body = [
        '<!DOCTYPE html><html lang="fr"><head><title>Périphériques</title></head><body>',
        '<form><input type="search" name="q" value="5CD"><button>Rechercher</button></form><table>',
    ]
    for n in range(rows):
        serial = f"doc\u202efdp.exe{n}" if spoof and n == rows // 2 else f"5CD10{n:05d}"
        body.append(
            f'<tr><td><input type="checkbox" name="device" value="{n}" aria-label="{serial}"></td>'
            f'<td><a href="/devices/{n}/">{serial}</a></td><td><span class="status ok">Actif</span></td>'
            "<td>Lenovo 300e Chromebook Gen 3</td><td>124.0.6367.225</td><td>/Paris/Collège Jean Moulin/CDI</td>"
            f"<td>eleve{n}@college.example</td><td>30/11/2026 10:15</td><td>01/06/2029</td></tr>"
        )
    body.append("</table></body></html>")
    return "".join(body)


def measure(html: str, repeat: int) -> float:
    middleware = DisplaySafetyMiddleware(lambda request: HttpResponse(html))
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        middleware(HttpRequest())
        times.append(time.perf_counter() - start)
    # The response itself is built inside the timed call: subtract what building it alone costs.
    baseline = []
    for _ in range(repeat):
        start = time.perf_counter()
        HttpResponse(html)
        baseline.append(time.perf_counter() - start)
    return statistics.median(times) - statistics.median(baseline)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=200)
    args = parser.parse_args()
    for label, spoof in (("clean page", False), ("page with invisible characters", True)):
        html = page(args.rows, spoof)
        seconds = measure(html, args.repeat)
        print(f"{label:32} {len(html.encode()) / 1024:7.0f} KB  {seconds * 1e6:9.0f} µs per page")


if __name__ == "__main__":
    main()
