"""App packages admins upload: which files are accepted, and how they are checked before being stored.

What a package may be (the ChromeOS console's needs; a platform added later adds its own types here):

| extension | what it is                                             | content must be                                         |
|-----------|--------------------------------------------------------|---------------------------------------------------------|
| ``.crx``  | a packed Chrome extension or app (self-hosted)         | ``Cr24``, header version 2 or 3, then a ZIP archive      |
| ``.zip``  | an unpacked extension, a kiosk or web app, as one ZIP  | a readable ZIP archive with at least one entry           |
| ``.apk``  | an Android app for ChromeOS's Android runtime          | a readable ZIP archive holding ``AndroidManifest.xml``   |

Anything else is refused, whatever its content (``.html``, ``.svg``, ``.exe``, ``.js``...), and so is a file
whose content is not what its extension says (an ``.exe`` renamed ``.crx``). The extension is read from the
last suffix only (``app.crx.exe`` is an ``.exe``). The size limit is ``APP_UPLOAD_MAX_BYTES``. Packages are
stored under a random name (``mdm.models.app_upload_path``), never the uploader's, and are served only through
the console's download view, as attachments.
"""

from __future__ import annotations

import hashlib
import struct
import unicodedata
import zipfile
from dataclasses import dataclass
from pathlib import PurePath
from typing import Any

from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.core.files.uploadhandler import TemporaryFileUploadHandler
from django.template.defaultfilters import filesizeformat
from django.utils.translation import gettext as _

ALLOWED_EXTENSIONS = (".crx", ".zip", ".apk")
_ZIP_MAGIC = b"PK\x03\x04"
_CHUNK = 1024 * 1024


class PackageRejected(ValueError):
    """The upload is not an acceptable app package; ``message`` says why, for the admin."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class Package:
    name: str  # the uploader's file name, kept for display and download
    extension: str
    size: int
    sha256: str


def package_extension(name: str) -> str:
    return PurePath(name).suffix.lower()


def inspect_package(upload: UploadedFile) -> Package:
    """Check an uploaded package's size, extension and content; raise :class:`PackageRejected` if any fails."""
    # Control characters (a CR/LF decoded from an RFC 2231 name) never reach a header or a page.
    name = "".join(
        c for c in PurePath((upload.name or "").replace("\\", "/")).name if unicodedata.category(c) != "Cc"
    )
    size = upload.size or 0
    limit = settings.APP_UPLOAD_MAX_BYTES
    if size > limit:
        raise PackageRejected(
            _("Le fichier pèse %(size)s ; la limite est de %(limit)s.")
            % {"size": filesizeformat(size), "limit": filesizeformat(limit)}
        )
    if size == 0:
        raise PackageRejected(_("Le fichier est vide."))
    extension = package_extension(name)
    if extension not in ALLOWED_EXTENSIONS:
        raise PackageRejected(
            _("Type de fichier refusé (%(ext)s). Types acceptés : %(allowed)s.")
            % {"ext": extension or _("sans extension"), "allowed": ", ".join(ALLOWED_EXTENSIONS)}
        )
    upload.seek(0)
    try:
        if extension == ".crx":
            _check_crx(upload)
        else:
            _check_zip(upload, needs="AndroidManifest.xml" if extension == ".apk" else None)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, struct.error, EOFError, OSError, ValueError) as exc:
        raise PackageRejected(
            _("Le contenu du fichier ne correspond pas à son extension (%(ext)s).") % {"ext": extension}
        ) from exc
    return Package(name=name[:255], extension=extension, size=size, sha256=_sha256(upload))


def _check_crx(upload: UploadedFile) -> None:
    header = upload.read(16)
    if header[:4] != b"Cr24":
        raise ValueError("no Cr24 magic")
    version = struct.unpack("<I", header[4:8])[0]
    if version == 2:
        key_length, signature_length = struct.unpack("<II", header[8:16])
        archive_at = 16 + key_length + signature_length
    elif version == 3:
        archive_at = 12 + struct.unpack("<I", header[8:12])[0]
    else:
        raise ValueError(f"CRX version {version}")
    upload.seek(archive_at)
    if upload.read(4) != _ZIP_MAGIC:
        raise ValueError("no archive after the CRX header")


def _check_zip(upload: UploadedFile, *, needs: str | None) -> None:
    if upload.read(4) != _ZIP_MAGIC:
        raise ValueError("no ZIP magic")
    upload.seek(0)
    with zipfile.ZipFile(upload) as archive:
        names = archive.namelist()
    if not names or (needs is not None and needs not in names):
        raise ValueError("archive without the expected entries")


def _sha256(upload: UploadedFile) -> str:
    digest = hashlib.sha256()
    upload.seek(0)
    for chunk in upload.chunks(_CHUNK):
        digest.update(chunk)
    upload.seek(0)
    return digest.hexdigest()


class CappedTemporaryFileUploadHandler(TemporaryFileUploadHandler):
    """Django's temporary-file upload handler that stops writing past ``APP_UPLOAD_MAX_BYTES`` but keeps
    counting: an oversized upload never fills the disk, and its form still refuses it by its real size."""

    def new_file(self, *args: Any, **kwargs: Any) -> None:
        super().new_file(*args, **kwargs)
        self._received = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        self._received += len(raw_data)
        if self._received <= settings.APP_UPLOAD_MAX_BYTES:
            self.file.write(raw_data)
