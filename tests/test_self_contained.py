"""A clone of this repository alone runs its tests: no code or test reads the project's ../shared folder."""
import re
from pathlib import Path

from content_packages.schemas import ENTRY_SCHEMAS, SCHEMA_DIR
from conftest import FIXTURES

ROOT = Path(__file__).resolve().parents[1]
OUTSIDE = re.compile(r"""\.\./shared|parents\[2\]|["']shared["']\s*/|moodle-fixtures|cc-schemas""")


def test_no_code_or_test_reaches_outside_the_repository():
    offenders = []
    for folder in ("lms_bridge", "content_packages", "lti_config", "tests", "benchmarks"):
        for path in (ROOT / folder).rglob("*.py"):
            for number, line in enumerate(path.read_text().splitlines(), 1):
                if OUTSIDE.search(line) and path.name != "test_self_contained.py":
                    offenders.append(f"{path.relative_to(ROOT)}:{number}: {line.strip()}")
    assert offenders == []


def test_recorded_moodle_payloads_and_cc11_schemas_live_in_the_repository():
    assert FIXTURES.is_relative_to(ROOT) and SCHEMA_DIR.is_relative_to(ROOT)
    assert len(list((FIXTURES / "lti").glob("*.json"))) > 50 and len(list((FIXTURES / "ws").glob("*.json"))) > 20
    assert all((SCHEMA_DIR / name).is_file() for name in ENTRY_SCHEMAS.values())
