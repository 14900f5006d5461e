"""A corrupted content folder or cartridge is refused with an error that names the offending file."""

import shutil
import zipfile
from pathlib import Path

import pytest

from content_packages import CartridgeInvalid, ContentError, build_cartridge, load_course, validate_cartridge
from content_packages.content import DEFAULT_CONTENT_DIR
from content_packages.schemas import SCHEMA_DIR


@pytest.fixture
def content(tmp_path):
    return Path(shutil.copytree(DEFAULT_CONTENT_DIR, tmp_path / "course"))


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


def test_shipped_content_loads():
    course = load_course()
    assert len(course.sections) == 9
    assert [i.activity for i in course.items() if i.kind == "lti"] == [
        "project_plan", "consultations", "project_report", "final_presentation"]


def test_missing_page_is_named(content, tmp_path):
    (content / "pages" / "m2_reading.html").unlink()
    with pytest.raises(ContentError, match=r"pages/m2_reading\.html: file not found"):
        build_cartridge(tmp_path / "out.imscc", content_dir=content)
    assert not (tmp_path / "out.imscc").exists()


def test_missing_metadata_file_is_named(content):
    (content / "course.toml").unlink()
    with pytest.raises(ContentError, match=r"course\.toml: file not found"):
        load_course(content)


def test_missing_question_pool_is_named(content):
    (content / "questions.toml").unlink()
    with pytest.raises(ContentError, match=r"questions\.toml: file not found"):
        load_course(content)


def test_duplicate_identifier_is_named(content):
    edit(content / "course.toml", 'id = "m2-case"', 'id = "m1-case"')
    with pytest.raises(ContentError, match=r"course\.toml .*duplicate identifier 'm1-case'"):
        load_course(content)


def test_duplicate_question_identifier_is_named(content):
    edit(content / "questions.toml", 'id = "q05"', 'id = "q04"')
    with pytest.raises(ContentError, match=r"questions\.toml .*duplicate question identifier 'q04'"):
        load_course(content)


def test_question_without_correct_answer_is_named(content):
    edit(content / "questions.toml", '{ id = "a", text = "Treaty bodies", correct = true }',
         '{ id = "a", text = "Treaty bodies" }')
    edit(content / "questions.toml", '{ id = "b", text = "Special procedures such as Special Rapporteurs", correct = true }',
         '{ id = "b", text = "Special procedures such as Special Rapporteurs" }')
    edit(content / "questions.toml", '{ id = "c", text = "The Universal Periodic Review", correct = true }',
         '{ id = "c", text = "The Universal Periodic Review" }')
    with pytest.raises(ContentError, match=r"questions\.toml .*'q06' has no correct answer"):
        load_course(content)


def test_true_false_without_answer_is_named(content):
    edit(content / "questions.toml", "answer = true\nfeedback = \"Human rights", "feedback = \"Human rights")
    with pytest.raises(ContentError, match=r"questions\.toml .*'q02' has no correct answer"):
        load_course(content)


def test_multiple_choice_with_two_correct_answers_is_refused(content):
    edit(content / "questions.toml", '{ id = "b", text = "Only the national government\'s foreign ministry" }',
         '{ id = "b", text = "Only the national government\'s foreign ministry", correct = true }')
    with pytest.raises(ContentError, match=r"questions\.toml .*'q01' must have exactly one correct answer"):
        load_course(content)


def test_invalid_toml_is_named(content):
    (content / "questions.toml").write_text("[[questions]\nid = ", encoding="utf-8")
    with pytest.raises(ContentError, match=r"questions\.toml: invalid TOML"):
        load_course(content)


def test_malformed_html_fragment_is_named(content):
    (content / "discussions" / "m4.html").write_text("<p>Unclosed <b>tag</p>", encoding="utf-8")
    with pytest.raises(ContentError, match=r"discussions/m4\.html: not a well-formed HTML fragment"):
        load_course(content)


def test_unknown_activity_is_refused(content):
    edit(content / "course.toml", 'activity = "consultations"', 'activity = "booking"')
    with pytest.raises(ContentError, match=r"course\.toml .*unknown activity 'booking'"):
        load_course(content)


def rewrite(cartridge: Path, name: str, data: bytes | None) -> None:
    with zipfile.ZipFile(cartridge) as zf:
        files = {n: zf.read(n) for n in zf.namelist()}
    if data is None:
        del files[name]
    else:
        files[name] = data
    with zipfile.ZipFile(cartridge, "w") as zf:
        for n, d in files.items():
            zf.writestr(n, d)


def test_validator_names_a_schema_invalid_qti_file(tmp_path):
    cartridge = build_cartridge(tmp_path / "c.imscc")
    with zipfile.ZipFile(cartridge) as zf:
        qti = zf.read("pre-test/assessment.xml")
    rewrite(cartridge, "pre-test/assessment.xml", qti.replace(b"<presentation>", b"<presentation><bogus/>", 1))
    with pytest.raises(CartridgeInvalid, match=r"pre-test/assessment\.xml: fails ccv1p1_qtiasiv1p2p1_v1p0\.xsd"):
        validate_cartridge(cartridge, SCHEMA_DIR)


def test_validator_names_a_missing_file(tmp_path):
    cartridge = build_cartridge(tmp_path / "c.imscc")
    rewrite(cartridge, "final-presentation/link.xml", None)
    with pytest.raises(CartridgeInvalid, match=r"missing file final-presentation/link\.xml"):
        validate_cartridge(cartridge, SCHEMA_DIR)


def test_validator_refuses_a_manifest_without_the_cc11_namespace(tmp_path):
    cartridge = build_cartridge(tmp_path / "c.imscc")
    with zipfile.ZipFile(cartridge) as zf:
        manifest = zf.read("imsmanifest.xml")
    rewrite(cartridge, "imsmanifest.xml", manifest.replace(b"imsccv1p1/imscp_v1p1", b"imsccv1p3/imscp_v1p1"))
    with pytest.raises(CartridgeInvalid, match=r"imsmanifest\.xml: default namespace"):
        validate_cartridge(cartridge, SCHEMA_DIR)
