"""QTI 1.2 assessments in the shape Moodle's Common Cartridge importer turns into quiz questions."""

from __future__ import annotations

from lxml import etree

from content_packages.content import Item, Question

QTI_NS = "http://www.imsglobal.org/xsd/ims_qtiasiv1p2"
XSI_NS = "http://www.w3.org/2001/XMLSchema-instance"
QTI_LOCATION = f"{QTI_NS} http://www.imsglobal.org/profile/cc/ccv1p1/ccv1p1_qtiasiv1p2p1_v1p0.xsd"
CC_PROFILE = {
    "multiple_choice": "cc.multiple_choice.v0p1",
    "multiple_response": "cc.multiple_response.v0p1",
    "true_false": "cc.true_false.v0p1",
}


def _el(parent, tag: str, text: str | None = None, **attrs) -> etree._Element:
    node = etree.SubElement(parent, f"{{{QTI_NS}}}{tag}", {k: v for k, v in attrs.items()})
    if text is not None:
        node.text = text
    return node


def _metadata(parent, fields: list[tuple[str, str]]) -> None:
    qtimetadata = _el(parent, "qtimetadata")
    for label, entry in fields:
        field = _el(qtimetadata, "qtimetadatafield")
        _el(field, "fieldlabel", label)
        _el(field, "fieldentry", entry)


def _material(parent, text: str) -> None:
    _el(_el(parent, "material"), "mattext", text, texttype="text/html")


def assessment_xml(item: Item) -> bytes:
    """One assessment per quiz item; question idents are prefixed with the item id so two tests never clash."""
    root = etree.Element(f"{{{QTI_NS}}}questestinterop", nsmap={None: QTI_NS, "xsi": XSI_NS})
    root.set(f"{{{XSI_NS}}}schemaLocation", QTI_LOCATION)
    assessment = _el(root, "assessment", ident=f"{item.id}_assessment", title=item.title)
    _metadata(assessment, [("cc_profile", "cc.exam.v0p1"), ("qmd_assessmenttype", "Examination"),
                           ("qmd_scoretype", "Percentage"), ("cc_maxattempts", "1")])
    if item.body:
        _el(_el(assessment, "rubric"), "material").append(_mattext(item.body))
    section = _el(assessment, "section", ident=f"{item.id}_section")
    for question in item.questions:
        _question(section, question, f"{item.id}_{question.id}")
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


def _mattext(text: str) -> etree._Element:
    node = etree.Element(f"{{{QTI_NS}}}mattext", texttype="text/html")
    node.text = text
    return node


def _question(section, question: Question, ident: str) -> None:
    item = _el(section, "item", ident=ident, title=question.id)
    _metadata(_el(item, "itemmetadata"), [("cc_profile", CC_PROFILE[question.kind]),
                                          ("cc_weighting", "1")])
    presentation = _el(item, "presentation")
    _material(presentation, question.text)
    cardinality = "Multiple" if question.kind == "multiple_response" else "Single"
    response = _el(presentation, "response_lid", ident=f"{ident}_response", rcardinality=cardinality)
    render = _el(response, "render_choice", shuffle="No")
    for choice in question.choices:
        _material(_el(render, "response_label", ident=choice.id), choice.text)

    processing = _el(item, "resprocessing")
    _el(_el(processing, "outcomes"), "decvar", maxvalue="100", minvalue="0", varname="SCORE", vartype="Decimal")
    if question.feedback:
        general = _el(processing, "respcondition", **{"continue": "Yes"})
        _el(_el(general, "conditionvar"), "other")
        _el(general, "displayfeedback", feedbacktype="Response", linkrefid="general_fb")
    correct = _el(processing, "respcondition", **{"continue": "No"})
    condition = _el(correct, "conditionvar")
    if question.kind == "multiple_response":
        both = _el(condition, "and")
        for choice in question.choices:
            target = both if choice.correct else _el(both, "not")
            _el(target, "varequal", choice.id, respident=f"{ident}_response", case="Yes")
    else:
        _el(condition, "varequal", question.correct_ids[0], respident=f"{ident}_response")
    _el(correct, "setvar", "100", action="Set", varname="SCORE")
    if question.feedback:
        fb = _el(item, "itemfeedback", ident="general_fb")
        _material(_el(fb, "flow_mat"), question.feedback)
