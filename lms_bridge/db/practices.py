"""The library of promising practices: consent per project and person, curated entries, tags, full text.

Entries belong to an LMS site (the issuer): every course of the site sees its published entries. Search
uses SQLite FTS5 over published entries only, and filters through `practice_tags` (kind, value) indexes.
"""
from __future__ import annotations

import hashlib
import json
import re
import uuid

from . import dialect, migration_set, one, returning_id, ts
from . import projects as _projects  # noqa: F401  (its tables come first: entries reference projects)
from .schema import ddl

migrations = migration_set("practices")

TAG_KINDS = ("sdg", "target", "hrba", "theme", "country", "city", "year", "org")
ENTRY_TEXT = ("title", "summary", "problem", "approach", "results", "lessons", "challenges", "what_next")
TEXT_COLUMNS = "{" + " ".join(ENTRY_TEXT + ("place",)) + "}"


def tag_token(kind: str, value: str) -> str:
    """A filter value as one opaque alphanumeric FTS token, so every filter is part of the MATCH."""
    return "t" + kind + hashlib.sha1(value.encode()).hexdigest()[:12]


def site_token(issuer: str) -> str:
    return tag_token("site", issuer)


# PostgreSQL's form of the FTS5 index: the same columns in a table keyed by `rowid` (the entry's id), a weighted
# tsvector of the words (title A; summary and place B; problem, approach, results, lessons C; challenges and
# what_next D; tags never) and the site and filter tokens in a tsvector of their own, both under GIN.
# Words are tokenised as FTS5's unicode61 does: every ASCII punctuation character (underscore included) separates
# words (PostgreSQL's parser would otherwise keep 'e-mail', 'www.x.org' or '3.5' whole), case is folded, and the
# `unaccent` dictionary removes diacritics (a trusted contrib extension, like booking's btree_gist). A filler
# lexeme that no query can name sits between columns, so a phrase never spans two columns (as in FTS5).
# practices_site ends with the id, as SQLite's index does implicitly: newest first without a sort.
PG_PUNCTUATION = r"""!"#$%&'()*+,-./:;<=>?@[\]^_`{|}~"""
PG_COLUMNS = (("title", "A"), ("summary", "B"), ("place", "B"), ("problem", "C"), ("approach", "C"),
              ("results", "C"), ("lessons", "C"), ("challenges", "D"), ("what_next", "D"))
PG_WORDS = " || '''|'':1'::tsvector || ".join(
    f"setweight(to_tsvector('lb_words', lb_fts_text({column})), '{weight}')" for column, weight in PG_COLUMNS)
PG_FTS = f"""
CREATE EXTENSION IF NOT EXISTS unaccent;
CREATE TEXT SEARCH CONFIGURATION lb_words (COPY = simple);
ALTER TEXT SEARCH CONFIGURATION lb_words ALTER MAPPING FOR asciiword, word, numword, asciihword, hword, numhword,
    hword_asciipart, hword_part, hword_numpart WITH unaccent, simple;
CREATE FUNCTION lb_fts_text(t text) RETURNS text LANGUAGE sql IMMUTABLE STRICT PARALLEL SAFE AS $$
    SELECT translate(t, '{PG_PUNCTUATION.replace("'", "''")}', '{" " * len(PG_PUNCTUATION)}')
$$;
CREATE TABLE practices_fts (
    rowid BIGINT PRIMARY KEY,
    title TEXT NOT NULL DEFAULT '', summary TEXT NOT NULL DEFAULT '', problem TEXT NOT NULL DEFAULT '',
    approach TEXT NOT NULL DEFAULT '', results TEXT NOT NULL DEFAULT '', lessons TEXT NOT NULL DEFAULT '',
    challenges TEXT NOT NULL DEFAULT '', what_next TEXT NOT NULL DEFAULT '', place TEXT NOT NULL DEFAULT '',
    tags TEXT NOT NULL DEFAULT '',
    words tsvector GENERATED ALWAYS AS ({PG_WORDS}) STORED,
    tokens tsvector GENERATED ALWAYS AS (to_tsvector('simple', tags)) STORED
);
CREATE INDEX practices_fts_words ON practices_fts USING gin (words);
CREATE INDEX practices_fts_tokens ON practices_fts USING gin (tokens);
DROP INDEX practices_site;
CREATE INDEX practices_site ON practices (issuer, state, published_at, id);
"""


@migrations()
def m001_practices(db):
    ddl(db, """
    CREATE TABLE practice_consents (
        project_id INTEGER NOT NULL REFERENCES projects(id) ON DELETE CASCADE,
        user_id TEXT NOT NULL,
        platform_id INTEGER NOT NULL, deployment_id TEXT NOT NULL, context_id TEXT NOT NULL,
        choice TEXT NOT NULL CHECK (choice IN ('named', 'anonymous', 'none')),
        wording TEXT NOT NULL, locale TEXT NOT NULL DEFAULT 'en', decided_at TEXT NOT NULL,
        PRIMARY KEY (project_id, user_id)
    );
    CREATE TABLE practices (
        id INTEGER PRIMARY KEY,
        public_id TEXT NOT NULL UNIQUE,
        issuer TEXT NOT NULL,
        platform_id INTEGER NOT NULL, deployment_id TEXT NOT NULL, context_id TEXT NOT NULL,
        project_id INTEGER NOT NULL UNIQUE REFERENCES projects(id) ON DELETE CASCADE,
        state TEXT NOT NULL CHECK (state IN ('draft', 'in_review', 'changes_requested', 'approved', 'published')),
        title TEXT NOT NULL DEFAULT '', summary TEXT NOT NULL DEFAULT '', problem TEXT NOT NULL DEFAULT '',
        approach TEXT NOT NULL DEFAULT '', results TEXT NOT NULL DEFAULT '', lessons TEXT NOT NULL DEFAULT '',
        challenges TEXT NOT NULL DEFAULT '', what_next TEXT NOT NULL DEFAULT '',
        hrba TEXT NOT NULL DEFAULT '[]', sdgs TEXT NOT NULL DEFAULT '[]', targets TEXT NOT NULL DEFAULT '[]',
        themes TEXT NOT NULL DEFAULT '[]', attachments TEXT NOT NULL DEFAULT '[]',
        country TEXT NOT NULL DEFAULT '', city TEXT NOT NULL DEFAULT '', cohort_year INTEGER,
        org_type TEXT NOT NULL DEFAULT '', change_request TEXT NOT NULL DEFAULT '',
        created_by TEXT NOT NULL, created_at TEXT NOT NULL, updated_at TEXT NOT NULL, published_at TEXT
    );
    CREATE INDEX practices_site ON practices(issuer, state, published_at);
    CREATE INDEX practices_course ON practices(platform_id, deployment_id, context_id, state);
    CREATE TABLE practice_tags (
        practice_id INTEGER NOT NULL REFERENCES practices(id) ON DELETE CASCADE,
        kind TEXT NOT NULL, value TEXT NOT NULL,
        PRIMARY KEY (kind, value, practice_id)
    ) WITHOUT ROWID;
    CREATE INDEX practice_tags_entry ON practice_tags(practice_id);
    CREATE VIRTUAL TABLE practices_fts USING fts5(
        title, summary, problem, approach, results, lessons, challenges, what_next, place, tags,
        tokenize = 'unicode61 remove_diacritics 2'
    );
    INSERT INTO practices_fts (practices_fts, rank) VALUES ('rank', 'bm25(10.0, 6.0, 2.0, 2.0, 2.0, 2.0, 1.0, 1.0, 4.0, 0.0)');
    """, postgresql=PG_FTS)


@migrations()
def m002_retained(db):
    # Set when retention removed the entry's course: the published text stays, anonymised.
    db.execute("ALTER TABLE practices ADD COLUMN retained_at TEXT")


def _entry(row) -> dict | None:
    if row is None:
        return None
    row = dict(row)
    for key in ("hrba", "sdgs", "targets", "themes", "attachments"):
        row[key] = json.loads(row[key])
    return row


# --- consent ---------------------------------------------------------------------------------

def set_consent(db, scope, project_id: int, user_id: str, choice: str, wording: str, locale: str) -> None:
    db.execute("INSERT INTO practice_consents (project_id, user_id, platform_id, deployment_id, context_id, choice,"
               " wording, locale, decided_at) VALUES (?,?,?,?,?,?,?,?,?) ON CONFLICT (project_id, user_id) DO UPDATE"
               " SET choice = excluded.choice, wording = excluded.wording, locale = excluded.locale,"
               " decided_at = excluded.decided_at", [project_id, user_id, *scope, choice, wording, locale, ts()])


def consents(db, project_id: int) -> dict[str, dict]:
    """Each member's current choice for the project, by user id."""
    return {r["user_id"]: dict(r) for r in
            db.query("SELECT * FROM practice_consents WHERE project_id = ?", [project_id])}


# --- entries ---------------------------------------------------------------------------------

def create_entry(db, issuer: str, scope, project_id: int, fields: dict, actor: str) -> int:
    now = ts()
    cur = db.execute(
        "INSERT INTO practices (public_id, issuer, platform_id, deployment_id, context_id, project_id, state,"
        " created_by, created_at, updated_at) VALUES (?,?,?,?,?,?, 'draft', ?,?,?)" + returning_id(db),
        [uuid.uuid4().hex, issuer, *scope, project_id, actor, now, now])
    entry_id = cur.lastrowid
    update_entry(db, entry_id, fields)
    return entry_id


def update_entry(db, entry_id: int, fields: dict) -> None:
    values = {k: fields[k] for k in ENTRY_TEXT + ("country", "city", "org_type", "cohort_year") if k in fields}
    for key in ("hrba", "sdgs", "targets", "themes", "attachments"):
        if key in fields:
            values[key] = json.dumps(list(fields[key]))
    values["updated_at"] = ts()
    assignments = ", ".join(f"{k} = ?" for k in values)
    db.execute(f"UPDATE practices SET {assignments} WHERE id = ?", [*values.values(), entry_id])


def set_state(db, entry_id: int, state: str, *, change_request: str | None = None) -> None:
    extra, params = "", [state, ts()]
    if change_request is not None:
        extra, params = ", change_request = ?", params + [change_request]
    if state == "published":
        extra += ", published_at = COALESCE(published_at, ?)"
        params.append(ts())
    db.execute(f"UPDATE practices SET state = ?, updated_at = ?{extra} WHERE id = ?", params + [entry_id])


def entry(db, entry_id: int) -> dict | None:
    return _entry(one(db, "SELECT * FROM practices WHERE id = ?", [entry_id]))


def entry_by_public_id(db, public_id: str) -> dict | None:
    return _entry(one(db, "SELECT * FROM practices WHERE public_id = ?", [public_id]))


def entry_for_project(db, project_id: int) -> dict | None:
    return _entry(one(db, "SELECT * FROM practices WHERE project_id = ?", [project_id]))


def course_entries(db, scope) -> list[dict]:
    return [_entry(r) for r in db.query(
        "SELECT * FROM practices WHERE platform_id = ? AND deployment_id = ? AND context_id = ? ORDER BY id", scope)]


def delete_entry(db, entry_id: int) -> None:
    """Gone at once: from the index, the tags and the table (a withdrawn consent)."""
    db.execute("DELETE FROM practices_fts WHERE rowid = ?", [entry_id])
    db.execute("DELETE FROM practice_tags WHERE practice_id = ?", [entry_id])
    db.execute("DELETE FROM practices WHERE id = ?", [entry_id])


def index_entry(db, e: dict, tags: list[tuple[str, str]], place: str) -> None:
    """(Re)write the published entry's search row (its text, and its site and filters as tokens) and tags."""
    unindex_entry(db, e["id"])
    tokens = " ".join([site_token(e["issuer"])] + [tag_token(k, v) for k, v in tags])
    db.execute("INSERT INTO practices_fts (rowid, title, summary, problem, approach, results, lessons, challenges,"
               " what_next, place, tags) VALUES (?,?,?,?,?,?,?,?,?,?,?)",
               [e["id"], *(e[k] for k in ENTRY_TEXT), place, tokens])
    db.conn.executemany("INSERT INTO practice_tags (practice_id, kind, value) VALUES (?,?,?) ON CONFLICT DO NOTHING",
                        [(e["id"], k, v) for k, v in tags])


def unindex_entry(db, entry_id: int) -> None:
    db.execute("DELETE FROM practices_fts WHERE rowid = ?", [entry_id])
    db.execute("DELETE FROM practice_tags WHERE practice_id = ?", [entry_id])


def search(db, issuer: str | None, *, query: str = "", filters: dict[str, str] | None = None,
           limit: int = 20, offset: int = 0) -> tuple[list[dict], int]:
    """Published entries of a site (every site when `issuer` is None): one FTS5 MATCH over the words (`query`,
    already an FTS expression) and the site and filter tokens, ranked by bm25 with words, newest first without.
    The index holds published entries only. Returns (page, total).

    On PostgreSQL the same expression becomes a tsquery on `words` (see `pg_tsquery`), the tokens one on `tokens`,
    and ts_rank_cd (weights as bm25's, by column class) ranks, the newest entry first among equal ranks."""
    tokens = [tag_token(k, v) for k, v in sorted((filters or {}).items())]
    if not tokens and not query:  # no criteria: newest first, straight from the (issuer, state, published_at) index
        site, params = ("issuer = ? AND ", [issuer]) if issuer is not None else ("", [])
        total = db.execute(f"SELECT count(*) FROM practices WHERE {site}state = 'published'", params).fetchone()[0]
        rows = db.query(f"SELECT * FROM practices WHERE {site}state = 'published'"
                        " ORDER BY published_at DESC, id DESC LIMIT ? OFFSET ?", params + [limit, offset])
        return [_entry(r) for r in rows], total
    if issuer is not None:
        tokens.insert(0, site_token(issuer))
    if dialect(db) == "postgresql":
        return _search_pg(db, tokens, query, limit, offset)
    terms = [f'tags : "{t}"' for t in tokens]
    if query:
        terms.append(f"{TEXT_COLUMNS} : ({query})")
    match = " AND ".join(terms)
    total = db.execute("SELECT count(*) FROM practices_fts WHERE practices_fts MATCH ?", [match]).fetchone()[0]
    if query:
        ids = [r[0] for r in db.execute("SELECT rowid FROM practices_fts WHERE practices_fts MATCH ?"
                                        " ORDER BY rank LIMIT ? OFFSET ?", [match, limit, offset])]
        by_id = {r["id"]: r for r in db.query(
            f"SELECT * FROM practices WHERE id IN ({','.join('?' * len(ids))})", ids)} if ids else {}
        return [_entry(by_id[i]) for i in ids if i in by_id], total
    rows = db.query("SELECT * FROM practices WHERE id IN (SELECT rowid FROM practices_fts WHERE practices_fts MATCH ?)"
                    " ORDER BY published_at DESC, id DESC LIMIT ? OFFSET ?", [match, limit, offset])
    return [_entry(r) for r in rows], total


# bm25's column weights (title 10, summary 6, place 4, the body 2, challenges and what next 1) as ts_rank_cd's
# weights of the classes D, C, B, A; normalisation 1 divides by the log of the entry's length, as bm25 does.
PG_RANK = "ts_rank_cd('{0.1, 0.2, 0.5, 1.0}', f.words, to_tsquery('lb_words', ?), 1)"


def _search_pg(db, tokens: list[str], query: str, limit: int, offset: int) -> tuple[list[dict], int]:
    where, params = [], []
    if tokens:
        where.append("f.tokens @@ to_tsquery('simple', ?)")
        params.append(" & ".join(tokens))
    if query:
        words = pg_tsquery(query)
        if not words:  # only words without letters or digits: FTS5 finds nothing for them either
            return [], 0
        where.append("f.words @@ to_tsquery('lb_words', ?)")
        params.append(words)
    condition = " AND ".join(where)
    # One pass over the matches gives the page and the total (count(*) OVER): each match's words are read once.
    if query:
        rows = list(db.query(
            f"WITH page AS (SELECT f.rowid, {PG_RANK} AS rank, count(*) OVER () AS lb_total FROM practices_fts f"
            f" WHERE {condition} ORDER BY rank DESC, f.rowid DESC LIMIT ? OFFSET ?)"
            " SELECT p.*, page.lb_total FROM page JOIN practices p ON p.id = page.rowid ORDER BY page.rank DESC, p.id DESC",
            [words, *params, limit, offset]))
    else:
        rows = list(db.query(
            "SELECT p.*, count(*) OVER () AS lb_total FROM practices p WHERE p.id IN"
            f" (SELECT f.rowid FROM practices_fts f WHERE {condition})"
            " ORDER BY p.published_at DESC, p.id DESC LIMIT ? OFFSET ?", [*params, limit, offset]))
    if rows:
        total = rows[0]["lb_total"]
    else:  # past the last page (or nothing found): the total on its own
        total = db.execute(f"SELECT count(*) FROM practices_fts f WHERE {condition}", params).fetchone()[0] if offset else 0
    return [_entry({k: v for k, v in r.items() if k != "lb_total"}) for r in rows], total


_FTS_PART = re.compile(r'"((?:[^"]|"")*)"(\*?)|([()])|([^\s"()*]+)(\*?)')
_FTS_OPERATORS = {"AND": "&", "OR": "|", "NOT": "& !"}


def pg_tsquery(expression: str) -> str:
    """An FTS5 query expression (rules.fts_query's: quoted words, the last a prefix) as to_tsquery's text, with
    FTS5's meaning: each string is a phrase of its letter-and-digit runs (unicode61's tokens: "co-op" and
    "child_labour" are two-word phrases), a trailing `*` makes the phrase's last word a prefix, strings side
    by side must all appear, AND/OR/NOT and parentheses as in FTS5 (NOT binds tighter than AND, AND than OR,
    as in tsquery). Words go quoted to to_tsquery('lb_words'), which folds case and removes diacritics as the
    index did. Phrases without a letter or digit are dropped (FTS5 ignores them); "" when nothing is left."""
    out: list[str] = []
    operators = set(_FTS_OPERATORS.values())

    def after_operand() -> bool:
        return bool(out) and out[-1] not in operators and out[-1] != "("

    for m in _FTS_PART.finditer(expression):
        quoted, quoted_star, paren, bare, bare_star = m.groups()
        if bare in _FTS_OPERATORS:
            if after_operand():
                out.append(_FTS_OPERATORS[bare])
            continue
        if paren == ")":
            while out and out[-1] in operators:
                out.pop()
            if out and out[-1] == "(":
                out.pop()
            elif out.count("(") > out.count(")"):
                out.append(")")
            continue
        if paren == "(":
            phrase = "("
        else:
            words = re.findall(r"[^\W_]+", quoted.replace('""', '"') if quoted is not None else bare)
            if not words:
                continue
            lexemes = [f"'{w}'" for w in words]
            if quoted_star or bare_star:
                lexemes[-1] += ":*"
            phrase = lexemes[0] if len(lexemes) == 1 else "(" + " <-> ".join(lexemes) + ")"
        if after_operand():
            out.append("&")  # side by side: every one must appear
        out.append(phrase)
    while out and (out[-1] in operators or out[-1] == "("):
        out.pop()
    opened = out.count("(") - out.count(")")
    return " ".join(out + [")"] * opened)


def facet_values(db, issuer: str | None, kind: str) -> list[str]:
    """The values of one filter that published entries of the site carry (for the filter menus)."""
    sql = ("SELECT DISTINCT t.value FROM practice_tags t JOIN practices p ON p.id = t.practice_id"
           " WHERE t.kind = ? AND p.state = 'published'" + (" AND p.issuer = ?" if issuer is not None else "")
           + " ORDER BY t.value")
    return [r[0] for r in db.execute(sql, [kind] + ([issuer] if issuer is not None else [])).fetchall()]


def issuer_of(db, platform_id: int) -> str | None:
    row = one(db, "SELECT issuer FROM platforms WHERE id = ?", [platform_id])
    return row["issuer"] if row else None



def course_projects(db, scope) -> list[dict]:
    """Every project of the course, for the curation list."""
    return [dict(r) for r in db.query(
        "SELECT id, title, country, owner_id FROM projects WHERE platform_id = ? AND deployment_id = ?"
        " AND context_id = ? ORDER BY title, id", list(scope))]
