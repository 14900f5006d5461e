"""The XML and HTML files of a cartridge other than QTI: manifest, LTI links, discussion topics, pages."""

from __future__ import annotations

from html import escape

from lxml import etree

from content_packages.content import Course, Item

CP_NS = "http://www.imsglobal.org/xsd/imsccv1p1/imscp_v1p1"
LOM_NS = "http://ltsc.ieee.org/xsd/imsccv1p1/LOM/manifest"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
LTICC_NS = "http://www.imsglobal.org/xsd/imslticc_v1p0"
BLTI_NS = "http://www.imsglobal.org/xsd/imsbasiclti_v1p0"
LTICM_NS = "http://www.imsglobal.org/xsd/imslticm_v1p0"
LTICP_NS = "http://www.imsglobal.org/xsd/imslticp_v1p0"
DT_NS = "http://www.imsglobal.org/xsd/imsccv1p1/imsdt_v1p1"
RESOURCE_TYPES = {
    "page": "webcontent",
    "discussion": "imsdt_xmlv1p1",
    "lti": "imsbasiclti_xmlv1p0",
    "quiz": "imsqti_xmlv1p2/imscc_xmlv1p1/assessment",
}
_PROFILE = "http://www.imsglobal.org/profile/cc/ccv1p1"
_CP_LOCATION = (f"{CP_NS} {_PROFILE}/ccv1p1_imscp_v1p2_v1p0.xsd "
                f"{LOM_NS} {_PROFILE}/LOM/ccv1p1_lommanifest_v1p0.xsd")
_LTI_LOCATION = (f"{LTICC_NS} http://www.imsglobal.org/xsd/lti/ltiv1p0/imslticc_v1p0.xsd "
                 f"{BLTI_NS} http://www.imsglobal.org/xsd/lti/ltiv1p0/imsbasiclti_v1p0p1.xsd "
                 f"{LTICM_NS} http://www.imsglobal.org/xsd/lti/ltiv1p0/imslticm_v1p0.xsd "
                 f"{LTICP_NS} http://www.imsglobal.org/xsd/lti/ltiv1p0/imslticp_v1p0.xsd")
_DT_LOCATION = f"{DT_NS} {_PROFILE}/ccv1p1_imsdt_v1p1.xsd"


def item_file(item: Item) -> str:
    """Where an item's own file lives in the cartridge; one folder per resource, as CC exporters do."""
    name = {"page": "page.html", "discussion": "topic.xml", "lti": "link.xml", "quiz": "assessment.xml"}[item.kind]
    return f"{item.id}/{name}"


def _xml(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _sub(parent, ns: str, tag: str, text: str | None = None, **attrs) -> etree._Element:
    node = etree.SubElement(parent, f"{{{ns}}}{tag}", attrs)
    if text is not None:
        node.text = text
    return node


def manifest_xml(course: Course) -> bytes:
    """imsmanifest.xml: LOM title, one rooted organization whose first-level items are the sections."""
    root = etree.Element(f"{{{CP_NS}}}manifest", nsmap={None: CP_NS, "lomimscc": LOM_NS, "xsi": XSI_NS},
                         identifier=f"{course.id}_manifest")
    root.set(f"{{{XSI_NS}}}schemaLocation", _CP_LOCATION)
    metadata = _sub(root, CP_NS, "metadata")
    _sub(metadata, CP_NS, "schema", "IMS Common Cartridge")
    _sub(metadata, CP_NS, "schemaversion", "1.1.0")
    general = _sub(_sub(metadata, LOM_NS, "lom"), LOM_NS, "general")
    _sub(_sub(general, LOM_NS, "title"), LOM_NS, "string", course.title, language=course.language)
    if course.description:
        _sub(_sub(general, LOM_NS, "description"), LOM_NS, "string", course.description, language=course.language)

    organization = _sub(_sub(root, CP_NS, "organizations"), CP_NS, "organization",
                        identifier=f"{course.id}_org", structure="rooted-hierarchy")
    top = _sub(organization, CP_NS, "item", identifier=f"{course.id}_root")
    for section in course.sections:
        node = _sub(top, CP_NS, "item", identifier=f"sec_{section.id}")
        _sub(node, CP_NS, "title", section.title)
        for item in section.items:
            leaf = _sub(node, CP_NS, "item", identifier=f"itm_{item.id}", identifierref=f"res_{item.id}")
            _sub(leaf, CP_NS, "title", item.title)

    resources = _sub(root, CP_NS, "resources")
    for item in course.items():
        attrs = {"identifier": f"res_{item.id}", "type": RESOURCE_TYPES[item.kind]}
        if item.kind == "page":
            attrs["href"] = item_file(item)
        resource = _sub(resources, CP_NS, "resource", **attrs)
        _sub(resource, CP_NS, "file", href=item_file(item))
    return _xml(root)


def launch_url(tool_url: str, activity: str) -> str:
    return f"{tool_url}/lti/launch?activity={activity}"


def lti_link_xml(item: Item, tool_url: str) -> bytes:
    """A basic LTI link whose launch URL alone names the activity: Moodle drops custom parameters on import."""
    root = etree.Element(f"{{{LTICC_NS}}}cartridge_basiclti_link", nsmap={
        None: LTICC_NS, "blti": BLTI_NS, "lticm": LTICM_NS, "lticp": LTICP_NS, "xsi": XSI_NS})
    root.set(f"{{{XSI_NS}}}schemaLocation", _LTI_LOCATION)
    _sub(root, BLTI_NS, "title", item.title)
    if item.body:
        _sub(root, BLTI_NS, "description", item.body)
    url = launch_url(tool_url, item.activity)
    _sub(root, BLTI_NS, "launch_url", url)
    if url.startswith("https://"):
        _sub(root, BLTI_NS, "secure_launch_url", url)
    vendor = _sub(root, BLTI_NS, "vendor")
    _sub(vendor, LTICP_NS, "code", "lms_bridge")
    _sub(vendor, LTICP_NS, "name", "lms_bridge")
    _sub(vendor, LTICP_NS, "description", "Course project, presentations and expert consultations for the Blended Learning Course.")
    _sub(vendor, LTICP_NS, "url", tool_url)
    return _xml(root)


def discussion_xml(item: Item) -> bytes:
    """A discussion topic, which Moodle imports as a forum whose introduction is the prompt."""
    root = etree.Element(f"{{{DT_NS}}}topic", nsmap={None: DT_NS, "xsi": XSI_NS})
    root.set(f"{{{XSI_NS}}}schemaLocation", _DT_LOCATION)
    _sub(root, DT_NS, "title", item.title)
    _sub(root, DT_NS, "text", item.body, texttype="text/html")
    return _xml(root)


def page_html(item: Item, language: str) -> bytes:
    """A complete HTML document around the page's fragment; Moodle keeps what is inside body."""
    return (
        "<!DOCTYPE html>\n"
        f'<html lang="{escape(language)}">\n<head>\n<meta charset="utf-8"/>\n'
        f"<title>{escape(item.title)}</title>\n</head>\n<body>\n"
        f"<h1>{escape(item.title)}</h1>\n{item.body}\n</body>\n</html>\n"
    ).encode("utf-8")
