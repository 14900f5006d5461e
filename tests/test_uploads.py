"""Attachments are checked by content: disguised, oversized and empty files are refused."""

import io
import re
import zipfile

import pytest

from lms_bridge.projects import uploads
from lms_bridge.projects.uploads import SLIDES, UploadRejected, check_upload, sniff

EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00" + b"\x00" * 200 + b"This program cannot be run in DOS mode."
PDF = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\nendobj\ntrailer\n%%EOF\n"
PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32
JPEG = b"\xff\xd8\xff\xe0" + b"\x00" * 32
OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 64


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def _ooxml(part: str) -> bytes:
    return _zip({"[Content_Types].xml": b"<Types/>", f"{part}/document.xml": b"<x/>"})


def _odf(kind: str) -> bytes:
    return _zip({"mimetype": f"application/vnd.oasis.opendocument.{kind}".encode(), "content.xml": b"<x/>"})


PPTX, DOCX, XLSX = _ooxml("ppt"), _ooxml("word"), _ooxml("xl")
ODP, ODT = _odf("presentation"), _odf("text")


@pytest.mark.parametrize("data,kind", [
    (PDF, "pdf"), (b"\xef\xbb\xbf%PDF-1.4", "pdf"), (PPTX, "pptx"), (DOCX, "docx"), (XLSX, "xlsx"),
    (ODP, "odp"), (ODT, "odt"), (PNG, "png"), (JPEG, "jpeg"), (OLE, "ole"), (EXE, "exe"),
    (b"\x7fELF\x02\x01", "elf"), (_zip({"a.txt": b"hi"}), "zip"),
    (_zip({"[Content_Types].xml": b""}), "zip"), (_zip({"mimetype": b"application/zip"}), "zip"),
    (b"PK\x03\x04broken", "unknown"), ("Notes on the plan\n".encode(), "text"),
    ("Catatan rencana, 광주\n".encode(), "text"), (b"\x00\x01\x02\x03", "unknown"),
])
def test_sniff_by_content(data, kind):
    assert sniff(data, "whatever.bin") == kind


def test_sniff_reads_a_stream_and_rewinds_it():
    stream = io.BytesIO(PPTX)
    assert sniff(stream, "slides.pptx") == "pptx"
    assert stream.tell() == 0
    assert check_upload("slides.pptx", stream, SLIDES) == "pptx"
    assert stream.tell() == 0


@pytest.mark.parametrize("name,data,kind", [
    ("slides.pptx", PPTX, "pptx"), ("Slides.PDF", PDF, "pdf"), ("talk.odp", ODP, "odp"),
])
def test_accepts_real_slides(name, data, kind):
    assert check_upload(name, data, SLIDES) == kind


def test_exe_renamed_pdf_is_refused():
    with pytest.raises(UploadRejected, match=re.escape(
            "report.pdf is not a PDF document (its content is a Windows executable).")):
        check_upload("report.pdf", EXE, uploads.DOCUMENTS)


def test_zip_renamed_pdf_is_refused():
    with pytest.raises(UploadRejected, match=re.escape(
            "report.pdf is not a PDF document (its content is a ZIP archive).")):
        check_upload("report.pdf", _zip({"evil.exe": EXE}), uploads.DOCUMENTS)


def test_text_renamed_pptx_is_refused():
    with pytest.raises(UploadRejected, match=re.escape(
            "slides.pptx is not a PowerPoint file (its content is plain text).")):
        check_upload("slides.pptx", b"just some notes\n", SLIDES)


def test_exe_renamed_pptx_and_word_renamed_pptx():
    with pytest.raises(UploadRejected, match=re.escape(
            "slides.pptx is not a PowerPoint file (its content is a Windows executable).")):
        check_upload("slides.pptx", EXE, SLIDES)
    with pytest.raises(UploadRejected, match=re.escape("(its content is a Word document)")):
        check_upload("slides.pptx", DOCX, SLIDES)
    with pytest.raises(UploadRejected, match=re.escape("(its content is a legacy Office (97-2003) file)")):
        check_upload("slides.pptx", OLE, SLIDES)


def test_extension_not_allowed_for_this_field():
    with pytest.raises(UploadRejected, match=re.escape(
            "setup.exe: only .odp, .pdf or .pptx files are accepted here.")):
        check_upload("setup.exe", EXE, SLIDES)
    with pytest.raises(UploadRejected, match="only .odp, .pdf or .pptx"):
        check_upload("plan.docx", DOCX, SLIDES)
    with pytest.raises(UploadRejected, match="only .odp, .pdf or .pptx"):
        check_upload("noextension", PDF, SLIDES)


def test_oversized_file():
    big = PDF + b"\x00" * (int(25.3 * uploads.MiB) - len(PDF))
    with pytest.raises(UploadRejected, match=re.escape("deck.pdf is 25.3 MB; the limit is 20 MB.")):
        check_upload("deck.pdf", big, SLIDES)
    limit = 1000
    exact = PDF + b" " * (limit - len(PDF))
    assert check_upload("deck.pdf", exact, SLIDES, max_bytes=limit) == "pdf"
    with pytest.raises(UploadRejected, match="the limit is"):
        check_upload("deck.pdf", exact + b" ", SLIDES, max_bytes=limit)


def test_empty_file():
    with pytest.raises(UploadRejected, match="slides.pdf is empty"):
        check_upload("slides.pdf", b"", SLIDES)


def test_text_allowed_only_when_asked():
    assert check_upload("notes.txt", b"hello\n", {"text"}) == "text"
    with pytest.raises(UploadRejected, match=re.escape("notes.txt is not a plain text file (its content is a PNG image)")):
        check_upload("notes.txt", PNG, {"text"})


def test_unknown_allowed_kind_is_a_programming_error():
    with pytest.raises(ValueError, match="exe"):
        check_upload("a.exe", EXE, {"exe"})


def test_storage_name_is_random_and_ignores_user_input():
    a, b = uploads.storage_name("pptx"), uploads.storage_name("pptx")
    assert a != b
    assert re.fullmatch(r"[0-9a-f]{32}\.pptx", a)
    assert uploads.storage_name("jpeg").endswith(".jpg")
    assert uploads.storage_name("exe").endswith(".bin")


@pytest.mark.parametrize("raw,shown", [
    ("../../etc/passwd", "passwd"),
    ("C:\\Users\\siti\\Laporan akhir.pdf", "Laporan akhir.pdf"),
    ("  ..hidden.pdf", "hidden.pdf"),
    ("a\x00b\r\nc.pdf", "abc.pdf"),
    ('what?<script>.pdf', "what__script_.pdf"),
    ("광주 발표.pptx", "광주 발표.pptx"),
    ("", "file"),
    ("../", "file"),
])
def test_safe_display_name(raw, shown):
    assert uploads.safe_display_name(raw) == shown


def test_safe_display_name_truncates_keeping_extension():
    shown = uploads.safe_display_name("x" * 300 + ".pptx")
    assert len(shown) == 120 and shown.endswith(".pptx")


def test_rejection_message_uses_safe_name():
    with pytest.raises(UploadRejected, match=re.escape("slides.pptx is not a PowerPoint file")):
        check_upload("../../tmp/slides.pptx", EXE, SLIDES)


def _bomb(part: str, size: int, *, extra: dict | None = None) -> bytes:
    """A valid-looking Office/ODF container whose one part is `size` zero bytes, deflated."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        if part.startswith("content"):
            z.writestr("mimetype", b"application/vnd.oasis.opendocument.text", zipfile.ZIP_STORED)
        else:
            z.writestr("[Content_Types].xml", b"<Types/>")
        with z.open(part, "w", force_zip64=True) as fh:
            chunk = b"\x00" * MiB
            for _ in range(size // MiB):
                fh.write(chunk)
        for name, data in (extra or {}).items():
            z.writestr(name, data)
    return buf.getvalue()


MiB = 1024 * 1024


@pytest.mark.parametrize("name,part,size,why", [
    ("plan.docx", "word/document.xml", 300 * MiB, "unpacks to 300 MB"),  # over the total, whatever the ratio
    ("slides.pptx", "ppt/slides/slide1.xml", 40 * MiB, "times its size"),  # 40 MB of zeros from ~40 KB
    ("report.odt", "content.xml", 20 * MiB, "times its size"),
])
def test_zip_bombs_in_office_and_odf_files_are_refused(name, part, size, why):
    data = _bomb(part, size)
    assert len(data) < 1 * MiB
    with pytest.raises(UploadRejected, match=why):
        check_upload(name, io.BytesIO(data), allowed_kinds=("docx", "pptx", "odt"))


def test_archive_with_too_many_parts_is_refused():
    data = _zip({"[Content_Types].xml": b"<Types/>", **{f"word/p{i}.xml": b"" for i in range(5001)}})
    with pytest.raises(UploadRejected, match="5,002 parts"):
        check_upload("plan.docx", data, allowed_kinds=("docx",))


def test_ordinary_office_files_with_compressible_xml_and_images_pass():
    """A real document: a few MB of repetitive XML (ratio well under 100) and stored images."""
    xml = b"".join(b'<w:p><w:r><w:t>Paragraph %d about water points</w:t></w:r></w:p>' % i for i in range(60000))
    data = _zip({"[Content_Types].xml": b"<Types/>", "word/document.xml": xml, "word/media/a.png": PNG * 1000})
    assert check_upload("plan.docx", data, allowed_kinds=("docx",)) == "docx"
