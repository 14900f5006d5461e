"""Write the course as a byte-for-byte reproducible IMS Common Cartridge 1.1 (.imscc) file."""

from __future__ import annotations

import zipfile
from pathlib import Path
from urllib.parse import urlsplit

from content_packages.content import ContentError, Course, load_course
from content_packages.documents import discussion_xml, item_file, lti_link_xml, manifest_xml, page_html
from content_packages.qti import assessment_xml
from content_packages.schemas import MANIFEST, validate_cartridge

DEFAULT_TOOL_URL = "http://127.0.0.1:5000"
ZIP_DATE = (2020, 1, 1, 0, 0, 0)

__all__ = ["build_cartridge", "cartridge_files", "normalise_tool_url", "validate_cartridge"]


def normalise_tool_url(tool_url: str) -> str:
    """The tool's base URL must be absolute http(s): imported links are matched to the site tool by it."""
    parts = urlsplit(tool_url or "")
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise ContentError(f"tool URL {tool_url!r}: must be an absolute http(s) URL without query or fragment")
    return tool_url.rstrip("/")


def cartridge_files(course: Course, tool_url: str) -> dict[str, bytes]:
    """Every file of the cartridge by archive path, the manifest included."""
    files = {MANIFEST: manifest_xml(course)}
    for item in course.items():
        if item.kind == "page":
            data = page_html(item, course.language)
        elif item.kind == "discussion":
            data = discussion_xml(item)
        elif item.kind == "lti":
            data = lti_link_xml(item, tool_url)
        else:
            data = assessment_xml(item)
        files[item_file(item)] = data
    return files


def build_cartridge(out_path: Path | str, tool_url: str = DEFAULT_TOOL_URL,
                    content_dir: Path | str | None = None) -> Path:
    """Load and check the content, then write the .imscc zip with fixed timestamps, order and permissions."""
    tool_url = normalise_tool_url(tool_url)
    course = load_course(content_dir)
    files = cartridge_files(course, tool_url)
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    order = [MANIFEST] + sorted(name for name in files if name != MANIFEST)
    with zipfile.ZipFile(out, "w") as archive:
        for name in order:
            info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3
            info.external_attr = 0o100644 << 16
            archive.writestr(info, files[name])
    return out
