"""Demo content for the library of promising practices: alumni projects of earlier cohorts of the same site.

The stories follow the course's own documents (the 2023 collection of alumni practices from Indonesia, Nepal,
Bangladesh and the Philippines; the Thakurgaon trade-licence pledge against child labour); names are invented.
"""
from __future__ import annotations

from ..db import practices as lq
from ..db import projects as pq
from ..db import write_transaction
from ..practices import rules
from ..projects.forms import COUNTRIES
from . import DEPLOYMENT_ID, issuer
from .demo import DemoCourse, seed

ALUMNI = (
    {"cohort": "2021", "author": "Rahima Akter", "consent": "named", "city": "Thakurgaon", "country": "BD",
     "title": "A child-labour-free pledge for every trade licence",
     "summary": "Two CSO alumni persuaded the municipality to make a pledge against child labour a condition of "
                "every new or renewed trade licence.",
     "problem": "Children worked in workshops and tea stalls in the town centre; the municipality had no lever.",
     "approach": "Mapped workplaces with the labour office, met traders' associations, drafted the pledge with "
                 "the municipal council and trained licence clerks.",
     "results": "The pledge is obligatory since 2022; licence clerks refer cases to child protection.",
     "lessons": "Start from a power the municipality already has: licences reach every employer.",
     "challenges": "Informal workplaces without licences stay outside the rule.",
     "what_next": "The district plans to extend the pledge to neighbouring municipalities.",
     "sdgs": ["8", "16"], "targets": ["8.7"], "hrba": ["participation_inclusion", "transparency_accountability"],
     "themes": ["child_labour", "youth"], "org": "cso"},
    {"cohort": "2022", "author": "Dewi Lestari", "consent": "anonymous", "city": "Bojonegoro", "country": "ID",
     "title": "Disability data in the village budget cycle",
     "summary": "Village heads added disaggregated disability data to the annual planning meetings so that "
                "accessible facilities enter the budget.",
     "problem": "People with disabilities were invisible in village data and so in the budget.",
     "approach": "A short census with organisations of persons with disabilities, then a seat for them in the "
                 "planning meeting (musrenbang).",
     "results": "Eleven villages budgeted ramps and accessible toilets for the first time.",
     "lessons": "Data collected with the people concerned convinced the budget committee.",
     "challenges": "Budget politics: in a lean year not every councillor keeps HRBA priorities.",
     "what_next": "", "sdgs": ["10", "11"], "targets": ["10.2", "11.7"],
     "hrba": ["participation_inclusion", "equality_non_discrimination"], "themes": ["disability", "participation"],
     "org": "local_government"},
    {"cohort": "2023", "author": "Sita Thapa", "consent": "named", "city": "Dhulikhel", "country": "NP",
     "title": "Ward citizen charters people can hold to account",
     "summary": "Ward offices publish service standards and a complaint route in Nepali and two local languages.",
     "problem": "Residents did not know what a ward owed them or where to complain.",
     "approach": "Charters drafted with residents, posted at every ward office, reviewed in public hearings.",
     "results": "Complaints answered within 15 days rose from about a third to most.",
     "lessons": "Public hearings twice a year keep the charter alive.",
     "challenges": "Staff turnover after local elections.", "what_next": "",
     "sdgs": ["16"], "targets": ["16.6", "16.7"], "hrba": ["transparency_accountability"],
     "themes": ["transparency", "participation"], "org": "local_government"},
    {"cohort": "2023", "author": "Maria Santos", "consent": "anonymous", "city": "Iloilo City", "country": "PH",
     "title": "Flood-ready barangays that count everyone",
     "summary": "Evacuation plans now list older persons and people with disabilities by name, with a buddy each.",
     "problem": "In past floods, people who could not walk were left behind.",
     "approach": "Barangay volunteers mapped households at risk and paired each person with a neighbour.",
     "results": "In the 2024 floods every listed person was evacuated in time.",
     "lessons": "A name and a neighbour work better than a general warning.",
     "challenges": "Keeping the list current as people move.", "what_next": "",
     "sdgs": ["11", "13"], "targets": ["11.5", "13.1"], "hrba": ["equality_non_discrimination"],
     "themes": ["climate", "disaster", "elderly"], "org": "local_government"},
)


@seed("library")
def _library(course: DemoCourse) -> None:
    """Published alumni entries of earlier cohorts on the same site, so the library has something to find."""
    with write_transaction(course.db):
        for i, a in enumerate(ALUMNI):
            _alumnus(course, issuer(course.tool_url), i, a)


def _alumnus(course: DemoCourse, site: str, i: int, a: dict) -> None:
    scope = (course.platform_id, DEPLOYMENT_ID, f"alumni-{a['cohort']}")
    user = f"alumni-{i + 1}"
    pq.upsert_member(course.db, scope, user, a["author"], "", "learner", from_launch=False)
    pid = pq.create_project(course.db, scope, user)
    pq.update_project(course.db, pid, a["title"], a["country"])
    lq.set_consent(course.db, scope, pid, user, a["consent"], rules.CONSENT_WORDING, "en")
    fields = {k: a[k] for k in ("title", "summary", "problem", "approach", "results", "lessons", "challenges",
                                "what_next", "city", "country", "sdgs", "targets", "hrba", "themes")}
    fields.update(cohort_year=int(a["cohort"]), org_type=a["org"])
    entry_id = lq.create_entry(course.db, site, scope, pid, fields, "3")
    lq.set_state(course.db, entry_id, rules.PUBLISHED)
    entry = lq.entry(course.db, entry_id)
    lq.index_entry(course.db, entry, rules.tags(entry), f"{a['city']} {COUNTRIES[a['country']]}")
