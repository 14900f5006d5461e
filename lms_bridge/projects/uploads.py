"""Attachment checks by content, not by extension, and safe names for storage and display.

Office Open XML files are ZIPs with [Content_Types].xml and a word/, ppt/ or xl/ part;
OpenDocument files are ZIPs whose `mimetype` entry names the document type.
"""

import io
import os
import secrets
import unicodedata
import zipfile

from ..i18n import N_, _

DEFAULT_MAX_BYTES = 20 * 1024 * 1024
MiB = 1024 * 1024

# kind -> (description with article, canonical extension)
KINDS: dict[str, tuple[str, str]] = {
    "pdf": (N_("a PDF document"), "pdf"),
    "docx": (N_("a Word document"), "docx"),
    "pptx": (N_("a PowerPoint file"), "pptx"),
    "xlsx": (N_("an Excel workbook"), "xlsx"),
    "odt": (N_("an OpenDocument text"), "odt"),
    "odp": (N_("an OpenDocument presentation"), "odp"),
    "ods": (N_("an OpenDocument spreadsheet"), "ods"),
    "png": (N_("a PNG image"), "png"),
    "jpeg": (N_("a JPEG image"), "jpg"),
    "text": (N_("plain text"), "txt"),
    # Recognised only to say what a rejected file really is:
    "ole": (N_("a legacy Office (97-2003) file"), ""),
    "zip": (N_("a ZIP archive"), ""),
    "exe": (N_("a Windows executable"), ""),
    "elf": (N_("a Linux executable"), ""),
    "unknown": (N_("unrecognised binary data"), ""),
}
ACCEPTABLE = ("pdf", "docx", "pptx", "xlsx", "odt", "odp", "ods", "png", "jpeg", "text")

EXTENSIONS: dict[str, str] = {
    "pdf": "pdf", "docx": "docx", "pptx": "pptx", "xlsx": "xlsx", "odt": "odt", "odp": "odp",
    "ods": "ods", "png": "png", "jpg": "jpeg", "jpeg": "jpeg", "txt": "text",
}

SLIDES = frozenset({"pdf", "pptx", "odp"})
DOCUMENTS = frozenset({"pdf", "docx", "odt"})
IMAGES = frozenset({"png", "jpeg"})

_OPENDOCUMENT = {
    b"application/vnd.oasis.opendocument.text": "odt",
    b"application/vnd.oasis.opendocument.presentation": "odp",
    b"application/vnd.oasis.opendocument.spreadsheet": "ods",
}
_OOXML = (("word/", "docx"), ("ppt/", "pptx"), ("xl/", "xlsx"))


class UploadRejected(ValueError):
    """A file refused for its size, its type or a content that does not match its name."""


# Office and OpenDocument files are ZIPs: a few KB can unpack to gigabytes in whoever opens them.
CONTAINERS = frozenset({"docx", "pptx", "xlsx", "odt", "odp", "ods"})
MAX_UNPACKED = 256 * MiB   # all entries together, as the archive declares them
MAX_RATIO = 100            # unpacked / packed, for archives that unpack to more than RATIO_FLOOR
RATIO_FLOOR = 8 * MiB
MAX_ENTRIES = 5000


def container_problem(blob: bytes) -> str | None:
    """Why this Office/ODF archive is not accepted (a zip bomb), or None. Reads the directory only."""
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as archive:
            entries = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError, ValueError):
        return "its contents cannot be read"
    if len(entries) > MAX_ENTRIES:
        return f"it holds {len(entries):,} parts (at most {MAX_ENTRIES:,})"
    unpacked = sum(max(0, e.file_size) for e in entries)
    packed = max(1, sum(max(0, e.compress_size) for e in entries))
    if unpacked > MAX_UNPACKED:
        return f"it unpacks to {_megabytes(unpacked)} (at most {_megabytes(MAX_UNPACKED)})"
    if unpacked > RATIO_FLOOR and unpacked / packed > MAX_RATIO:
        return f"it unpacks to {unpacked / packed:,.0f} times its size (at most {MAX_RATIO} times)"
    for e in entries:
        if e.file_size > RATIO_FLOOR and e.file_size / max(1, e.compress_size) > MAX_RATIO:
            return f"its part {safe_display_name(e.filename)} unpacks to {_megabytes(e.file_size)}"
    return None


def _read_all(data) -> bytes:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return bytes(data)
    position = data.tell()
    try:
        return data.read()
    finally:
        data.seek(position)


def _sniff_zip(blob: bytes) -> str:
    try:
        with zipfile.ZipFile(io.BytesIO(blob)) as archive:
            names = archive.namelist()
            if "[Content_Types].xml" in names:
                for prefix, kind in _OOXML:
                    if any(n.startswith(prefix) for n in names):
                        return kind
            if "mimetype" in names and archive.getinfo("mimetype").file_size <= 200:
                return _OPENDOCUMENT.get(archive.read("mimetype").strip(), "zip")
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, NotImplementedError):
        return "unknown"
    return "zip"


def _is_text(blob: bytes) -> bool:
    if b"\x00" in blob:
        return False
    try:
        text = blob.decode("utf-8-sig")
    except UnicodeDecodeError:
        return False
    return not any(ord(ch) < 32 and ch not in "\t\n\r\f" for ch in text)


def sniff(stream_or_bytes, filename: str = "") -> str:
    """The kind of file the content really is (a KINDS key); the name is not trusted.

    `filename` is accepted for symmetry with check_upload and is not used to decide.
    """
    blob = _read_all(stream_or_bytes)
    head = blob[:1024]
    if head.lstrip(b"\r\n\t \xef\xbb\xbf").startswith(b"%PDF-"):
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        return _sniff_zip(blob)
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if head.startswith(b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"):
        return "ole"
    if head.startswith(b"MZ"):
        return "exe"
    if head.startswith(b"\x7fELF"):
        return "elf"
    if blob and _is_text(blob):
        return "text"
    return "unknown"


def _megabytes(n: int) -> str:
    return f"{n / MiB:.1f}".removesuffix(".0") + " MB"


def _size(data) -> int:
    if isinstance(data, (bytes, bytearray, memoryview)):
        return len(data)
    position = data.tell()
    size = data.seek(0, os.SEEK_END) - position
    data.seek(position)
    return size


def _type_list(kinds) -> str:
    names = sorted(f".{KINDS[k][1]}" for k in kinds)
    return ", ".join(names[:-1]) + (" or " if len(names) > 1 else "") + names[-1]


def check_upload(filename: str, data, allowed_kinds=ACCEPTABLE, max_bytes: int = DEFAULT_MAX_BYTES) -> str:
    """The detected kind when the file is acceptable, else UploadRejected saying why."""
    name = safe_display_name(filename)
    unknown = set(allowed_kinds) - set(ACCEPTABLE)
    if unknown or not allowed_kinds:
        raise ValueError(f"Cannot accept file kinds {sorted(unknown) or 'none'}.")
    size = _size(data)
    if size > max_bytes:
        raise UploadRejected(_("%(name)s is %(size)s; the limit is %(limit)s.", name=name, size=_megabytes(size),
                               limit=_megabytes(max_bytes)))
    if size == 0:
        raise UploadRejected(_("%(name)s is empty.", name=name))
    extension = name.rpartition(".")[2].lower() if "." in name else ""
    claimed = EXTENSIONS.get(extension)
    if claimed not in allowed_kinds:
        raise UploadRejected(_("%(name)s: only %(types)s files are accepted here.", name=name,
                               types=_type_list(allowed_kinds)))
    actual = sniff(data, filename)
    if actual != claimed:
        what = KINDS[claimed][0]
        what = what if claimed != "text" else N_("a plain text file")
        raise UploadRejected(_("%(name)s is not %(what)s (its content is %(actual)s).", name=name, what=_(what),
                               actual=_(KINDS[actual][0])))
    if actual in CONTAINERS:
        problem = container_problem(_read_all(data))
        if problem:
            raise UploadRejected(f"{name} is refused: {problem}. Save it again from your office program, or "
                                 "export it as PDF.")
    return actual


def storage_name(kind: str) -> str:
    """A random file name for storage; nothing in it comes from the uploader."""
    extension = KINDS[kind][1] if kind in ACCEPTABLE else "bin"
    return f"{secrets.token_hex(16)}.{extension}"


def safe_display_name(filename: str, max_length: int = 120) -> str:
    """The uploader's file name without directories or control characters, for display only."""
    name = unicodedata.normalize("NFC", str(filename or ""))
    name = name.replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(
        "_" if ch in '<>:"|?*' else ch
        for ch in name
        if unicodedata.category(ch)[0] != "C"
    )
    name = " ".join(name.split()).lstrip(". ")
    if len(name) > max_length:
        stem, dot, ext = name.rpartition(".")
        if dot and 0 < len(ext) <= 10:
            name = stem[: max_length - len(ext) - 1].rstrip() + "." + ext
        else:
            name = name[:max_length]
    return name or "file"
