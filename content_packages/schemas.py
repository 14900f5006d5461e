"""Check a built cartridge against the IMS CC 1.1 schemas Moodle's importer uses, file by file."""

from __future__ import annotations

import zipfile
from pathlib import Path

from lxml import etree

# The IMS CC 1.1 schemas as Moodle 4.5 ships them for its importer (see xsd/README.md).
SCHEMA_DIR = Path(__file__).resolve().parent / "xsd" / "cc11"
MANIFEST = "imsmanifest.xml"
CP_NS = "http://www.imsglobal.org/xsd/imsccv1p1/imscp_v1p1"
ENTRY_SCHEMAS = {
    "manifest": "cc11libxml2validator.xsd",
    "imsqti_xmlv1p2/imscc_xmlv1p1/assessment": "ccv1p1_qtiasiv1p2p1_v1p0.xsd",
    "imsbasiclti_xmlv1p0": "imslticc_v1p0p1.xsd",
    "imsdt_xmlv1p1": "ccv1p1_imsdt_v1p1.xsd",
}


class CartridgeInvalid(ValueError):
    """A cartridge file breaks the CC 1.1 schemas or the package structure; the message names the file."""


def _schema(schema_dir: Path, name: str) -> etree.XMLSchema:
    path = Path(schema_dir) / name
    if not path.is_file():
        raise CartridgeInvalid(f"{path}: schema file not found")
    return etree.XMLSchema(etree.parse(str(path)))


def validate_cartridge(path: Path | str, schema_dir: Path | str = SCHEMA_DIR) -> list[str]:
    """Validate the manifest and every QTI, LTI and discussion file; return the checked names or raise."""
    schemas: dict[str, etree.XMLSchema] = {}

    def check(name: str, data: bytes, kind: str) -> etree._ElementTree:
        if kind not in schemas:
            schemas[kind] = _schema(Path(schema_dir), ENTRY_SCHEMAS[kind])
        try:
            doc = etree.ElementTree(etree.fromstring(data))
        except etree.XMLSyntaxError as exc:
            raise CartridgeInvalid(f"{name}: not well-formed XML: {exc}") from None
        if not schemas[kind].validate(doc):
            errors = "; ".join(f"line {e.line}: {e.message}" for e in schemas[kind].error_log)
            raise CartridgeInvalid(f"{name}: fails {ENTRY_SCHEMAS[kind]}: {errors}")
        return doc

    try:
        archive = zipfile.ZipFile(path)
    except zipfile.BadZipFile as exc:
        raise CartridgeInvalid(f"{path}: not a zip archive: {exc}") from None
    with archive:
        names = set(archive.namelist())
        if MANIFEST not in names:
            raise CartridgeInvalid(f"{path}: no {MANIFEST} at the archive root")
        data = archive.read(MANIFEST)
        if f'xmlns="{CP_NS}"'.encode() not in data[:1024]:
            raise CartridgeInvalid(f"{MANIFEST}: default namespace {CP_NS} not within the first 1024 bytes")
        manifest = check(MANIFEST, data, "manifest")
        checked = [MANIFEST]
        ns = {"cp": CP_NS}
        ids = [n.get("identifier") for n in manifest.iter() if n.get("identifier") is not None]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise CartridgeInvalid(f"{MANIFEST}: duplicate identifiers {', '.join(duplicates)}")
        resource_ids = {r.get("identifier") for r in manifest.iterfind(".//cp:resource", namespaces=ns)}
        for ref in manifest.xpath("//cp:item/@identifierref", namespaces=ns):
            if ref not in resource_ids:
                raise CartridgeInvalid(f"{MANIFEST}: item refers to missing resource {ref}")
        for resource in manifest.iterfind(".//cp:resource", namespaces=ns):
            files = [f.get("href") for f in resource.iterfind("cp:file", namespaces=ns)]
            for href in files + ([resource.get("href")] if resource.get("href") else []):
                if href not in names:
                    raise CartridgeInvalid(f"{MANIFEST}: resource {resource.get('identifier')} names missing file {href}")
            kind = resource.get("type")
            if kind in ENTRY_SCHEMAS and files:
                check(files[0], archive.read(files[0]), kind)
                checked.append(files[0])
    return checked
