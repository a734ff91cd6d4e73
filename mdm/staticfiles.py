"""The npm packages' files that the console's pages use, and only those, as static files.

``VENDOR_STATIC_FILES`` maps a static path (``vendor/pico/pico.min.css``) to its file under ``node_modules``.
Listing whole package folders would make collectstatic copy, hash and compress Pico's 239 theme variants
(20 MB) and all of htmx's builds for two files; that was most of a production release's time.
"""

from __future__ import annotations

import builtins
import posixpath
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.staticfiles.finders import BaseFinder
from django.core.files.storage import FileSystemStorage


class VendorFinder(BaseFinder):
    def _files(self) -> dict[str, Path]:
        return {name: Path(source) for name, source in settings.VENDOR_STATIC_FILES.items()}

    def find(self, path: str, find_all: bool = False, **kwargs: Any) -> Any:
        source = self._files().get(path)
        if source is None or not source.is_file():
            return [] if find_all or kwargs.get("all") else None
        return [str(source)] if find_all or kwargs.get("all") else str(source)

    def list(self, ignore_patterns: Any) -> Iterator[tuple[str, FileSystemStorage]]:
        for name, source in self._files().items():
            if not source.is_file():
                continue
            storage = FileSystemStorage(location=source.parent)
            storage.prefix = posixpath.dirname(name)  # type: ignore[attr-defined]
            yield source.name, storage

    def check(self, **kwargs: Any) -> builtins.list[Any]:
        return []
