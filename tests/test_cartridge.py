"""The built course cartridge: structure Moodle's importer needs, schema validity, tests and LTI links."""

import tomllib
import zipfile
from pathlib import Path

import pytest
from lxml import etree

import content_packages
from content_packages import ContentError, build_cartridge, validate_cartridge
from content_packages.content import DEFAULT_CONTENT_DIR
from content_packages.schemas import SCHEMA_DIR

TOOL = "https://tool.example.org/bridge"
NS = {
    "cp": "http://www.imsglobal.org/xsd/imsccv1p1/imscp_v1p1",
    "lom": "http://ltsc.ieee.org/xsd/imsccv1p1/LOM/manifest",
    "q": "http://www.imsglobal.org/xsd/ims_qtiasiv1p2",
    "cc": "http://www.imsglobal.org/xsd/imslticc_v1p0",
    "blti": "http://www.imsglobal.org/xsd/imsbasiclti_v1p0",
    "lticp": "http://www.imsglobal.org/xsd/imslticp_v1p0",
    "dt": "http://www.imsglobal.org/xsd/imsccv1p1/imsdt_v1p1",
}
QTI = "imsqti_xmlv1p2/imscc_xmlv1p1/assessment"
LTI = "imsbasiclti_xmlv1p0"
FILE_SCHEMAS = {QTI: "ccv1p1_qtiasiv1p2p1_v1p0.xsd", LTI: "imslticc_v1p0p1.xsd", "imsdt_xmlv1p1": "ccv1p1_imsdt_v1p1.xsd"}


@pytest.fixture(scope="module")
def cartridge(tmp_path_factory):
    return build_cartridge(tmp_path_factory.mktemp("cc") / "course.imscc", tool_url=TOOL + "/")


@pytest.fixture(scope="module")
def archive(cartridge):
    with zipfile.ZipFile(cartridge) as zf:
        yield zf


@pytest.fixture(scope="module")
def manifest(archive):
    return etree.fromstring(archive.read("imsmanifest.xml"))


def resources(manifest, kind=None):
    found = manifest.findall(".//cp:resource", NS)
    return [r for r in found if kind is None or r.get("type") == kind]


def resource_doc(archive, resource):
    return etree.fromstring(archive.read(resource.find("cp:file", NS).get("href")))


def test_cartridge_is_a_zip_with_the_manifest_at_its_root(archive):
    assert archive.testzip() is None
    assert archive.namelist()[0] == "imsmanifest.xml"
    assert b'xmlns="http://www.imsglobal.org/xsd/imsccv1p1/imscp_v1p1"' in archive.read("imsmanifest.xml")[:1024]


def test_every_referenced_file_exists_and_every_file_is_referenced(archive, manifest):
    names = set(archive.namelist())
    referenced = {"imsmanifest.xml"}
    resource_ids = {r.get("identifier") for r in resources(manifest)}
    for item in manifest.iterfind(".//cp:item[@identifierref]", NS):
        assert item.get("identifierref") in resource_ids
    for resource in resources(manifest):
        hrefs = [f.get("href") for f in resource.findall("cp:file", NS)] + [h for h in [resource.get("href")] if h]
        assert hrefs
        referenced.update(hrefs)
    assert referenced <= names
    assert names == referenced


def test_identifiers_are_unique(manifest):
    ids = [node.get("identifier") for node in manifest.iter() if node.get("identifier")]
    assert len(ids) == len(set(ids)) > 40


def test_manifest_has_course_title_and_sections_from_the_outline(manifest):
    title = manifest.findtext("cp:metadata/lom:lom/lom:general/lom:title/lom:string", namespaces=NS)
    assert title == "Blended Learning Course: Localizing Human Rights and the SDGs"
    assert manifest.findtext("cp:metadata/cp:schemaversion", namespaces=NS) == "1.1.0"
    organizations = manifest.findall("cp:organizations/cp:organization", NS)
    assert len(organizations) == 1 and organizations[0].get("structure") == "rooted-hierarchy"
    sections = organizations[0].findall("cp:item/cp:item", NS)
    titles = [s.findtext("cp:title", namespaces=NS) for s in sections]
    assert titles[0] == "Launching seminar" and titles[-1] == "Closing workshop"
    assert [t.split(":")[0] for t in titles[1:6]] == [f"Module {n}" for n in range(1, 6)]
    assert "Mechanisms" in titles[2].title() and "SDGs" in titles[3] and "climate" in titles[5]
    assert "Online discussion sessions" in titles and "Course project" in titles


def test_each_module_has_outcomes_reading_case_study_and_discussion(manifest):
    kinds = {r.get("identifier"): r.get("type") for r in resources(manifest)}
    for number in range(1, 6):
        section = manifest.find(f".//cp:item[@identifier='sec_m{number}']", NS)
        refs = [i.get("identifierref") for i in section.findall("cp:item", NS)]
        assert refs == [f"res_m{number}-{part}" for part in ("outcomes", "reading", "case", "discussion")]
        assert [kinds[r] for r in refs] == ["webcontent"] * 3 + ["imsdt_xmlv1p1"]


def test_case_studies_named_in_the_issue_are_embedded(archive):
    licensing = archive.read("m3-case/page.html").decode()
    assert "Thakurgaon" in licensing and "trade licence" in licensing
    assert "human rights city" in archive.read("m1-case/page.html").decode()


def test_manifest_and_resource_files_validate_against_cc11_schemas(cartridge, archive, manifest):
    assert SCHEMA_DIR.is_dir(), f"IMS CC 1.1 schemas expected in {SCHEMA_DIR}"
    entry = etree.XMLSchema(etree.parse(str(SCHEMA_DIR / "cc11libxml2validator.xsd")))
    entry.assertValid(etree.ElementTree(manifest))
    checked = 0
    for kind, schema_file in FILE_SCHEMAS.items():
        schema = etree.XMLSchema(etree.parse(str(SCHEMA_DIR / schema_file)))
        for resource in resources(manifest, kind):
            schema.assertValid(etree.ElementTree(resource_doc(archive, resource)))
            checked += 1
    assert checked == 2 + 4 + 6
    assert len(validate_cartridge(cartridge, SCHEMA_DIR)) == 1 + checked


def test_pre_and_post_test_share_a_pool_of_at_least_15_questions(archive, manifest):
    tests = {r.get("identifier"): resource_doc(archive, r) for r in resources(manifest, QTI)}
    assert set(tests) == {"res_pre-test", "res_post-test"}
    texts = {key: [i.findtext("q:presentation/q:material/q:mattext", namespaces=NS)
                   for i in doc.iterfind(".//q:item", NS)] for key, doc in tests.items()}
    assert texts["res_pre-test"] == texts["res_post-test"]
    assert len(texts["res_pre-test"]) >= 15
    profiles = {f.text for f in tests["res_pre-test"].xpath(
        "//q:item//q:qtimetadatafield[q:fieldlabel='cc_profile']/q:fieldentry", namespaces=NS)}
    assert profiles == {"cc.multiple_choice.v0p1", "cc.multiple_response.v0p1", "cc.true_false.v0p1"}


def test_correct_answers_match_the_question_pool(archive):
    pool = tomllib.loads((DEFAULT_CONTENT_DIR / "questions.toml").read_text(encoding="utf-8"))["questions"]
    doc = etree.fromstring(archive.read("post-test/assessment.xml"))
    for question in pool:
        item = doc.find(f".//q:item[@ident='post-test_{question['id']}']", NS)
        labels = [label.get("ident") for label in item.iterfind(".//q:response_label", NS)]
        scoring = item.xpath("q:resprocessing/q:respcondition[q:setvar='100']", namespaces=NS)
        assert len(scoring) == 1
        correct = {v.text for v in scoring[0].xpath("q:conditionvar//q:varequal[not(parent::q:not)]", namespaces=NS)}
        if question["type"] == "true_false":
            assert labels == ["true", "false"]
            assert correct == {"true" if question["answer"] else "false"}
        else:
            assert labels == [c["id"] for c in question["choices"]]
            assert correct == {c["id"] for c in question["choices"] if c.get("correct")}
            assert correct <= set(labels)
        if question["type"] == "multiple_response":
            wrong = {v.text for v in scoring[0].xpath("q:conditionvar//q:not/q:varequal", namespaces=NS)}
            assert wrong == set(labels) - correct


def test_lti_links_point_at_the_tool_and_name_the_activity(archive, manifest):
    links = [resource_doc(archive, r) for r in resources(manifest, LTI)]
    urls = sorted(link.findtext("blti:launch_url", namespaces=NS) for link in links)
    assert urls == sorted(f"{TOOL}/lti/launch?activity={a}"
                          for a in ("project_plan", "project_report", "final_presentation", "consultations"))
    for link in links:
        assert link.find("blti:custom", NS) is None
        assert link.findtext("blti:secure_launch_url", namespaces=NS) == link.findtext("blti:launch_url", namespaces=NS)
        assert link.findtext("blti:vendor/lticp:code", namespaces=NS) == "lms_bridge"
        assert link.findtext("blti:title", namespaces=NS)


def test_default_tool_url_is_plain_http_without_secure_url(tmp_path):
    with zipfile.ZipFile(build_cartridge(tmp_path / "c.imscc")) as zf:
        link = etree.fromstring(zf.read("project-plan/link.xml"))
    assert link.findtext("blti:launch_url", namespaces=NS) == "http://127.0.0.1:5000/lti/launch?activity=project_plan"
    assert link.find("blti:secure_launch_url", NS) is None


@pytest.mark.parametrize("bad", ["", "127.0.0.1:5000", "ftp://tool.example.org", "https://tool.example.org/?a=1", "/lti"])
def test_tool_url_must_be_absolute_http(tmp_path, bad):
    with pytest.raises(ContentError, match="tool URL"):
        build_cartridge(tmp_path / "c.imscc", tool_url=bad)
    assert not (tmp_path / "c.imscc").exists()


def test_same_content_builds_byte_identical_cartridges(tmp_path, cartridge):
    again = build_cartridge(tmp_path / "again.imscc", tool_url=TOOL)
    assert again.read_bytes() == Path(cartridge).read_bytes()
    with zipfile.ZipFile(again) as zf:
        infos = zf.infolist()
    assert all(i.date_time == (2020, 1, 1, 0, 0, 0) and i.compress_type == zipfile.ZIP_DEFLATED for i in infos)
    assert [i.filename for i in infos[1:]] == sorted(i.filename for i in infos[1:])


def test_package_exports_the_public_api():
    assert content_packages.build_cartridge is build_cartridge
    assert DEFAULT_CONTENT_DIR == Path(content_packages.__file__).resolve().parent / "course"
    assert issubclass(ContentError, ValueError)
