"""Catalogue tooling around pybabel: extraction with the project's keywords, and the pseudo-locale.

`python -m lms_bridge.i18n_tools extract` writes `translations/messages.pot` from the marked strings;
`python -m lms_bridge.i18n_tools pseudo` writes `translations/en_XA` from it: every message accented,
lengthened by a third and bracketed, placeholders and markup kept, so a page shown in `en_XA` reveals any
string that was never marked (it stays plain English). Both files are generated, never committed.
"""
from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po, write_po

from .i18n import PSEUDO_LOCALE, TRANSLATIONS_DIR

POT = TRANSLATIONS_DIR / "messages.pot"
PACKAGE = Path(__file__).resolve().parent
KEYWORDS = ["_", "gettext", "N_", "lazy_gettext", "ngettext:1,2"]


def extract(out: Path = POT) -> Path:
    """Every marked string of the package into a .pot (no source locations: stable across edits)."""
    cmd = [sys.executable, "-m", "babel.messages.frontend", "-q", "extract", "-F", str(PACKAGE.parent / "babel.cfg"),
           "--no-location", "--no-wrap", "--sort-output", "--project", "lms_bridge", "-o", str(out)]
    for keyword in KEYWORDS:
        cmd += ["-k", keyword]
    subprocess.run(cmd + [str(PACKAGE)], check=True)
    return out
_KEEP = re.compile(r"(%\([a-z_0-9]+\)[sdif]|%[sdif]|<[^>]*>|&[a-z#0-9]+;|\{[^}]*\})")
_ACCENTS = str.maketrans("aceinousyACEINOUSY", "áçéîñöûšýÁÇÉÎÑÖÛŠÝ")


def pseudo(text: str) -> str:
    """'Save draft' -> '[Šávé ðráft ~~~~]': accented, a third longer, bracketed; `%(x)s` and tags kept."""
    if not text:
        return text
    parts = _KEEP.split(text)
    out = "".join(p if _KEEP.fullmatch(p) else p.translate(_ACCENTS) for p in parts)
    return "[" + out + " " + "~" * max(1, len(text) // 3) + "]"


def pseudo_catalog(template: Catalog) -> Catalog:
    catalog = Catalog(locale="en", domain="messages", project="lms_bridge")
    for message in template:
        if not message.id:
            continue
        if isinstance(message.id, (list, tuple)):
            catalog.add(message.id, [pseudo(message.id[0]), pseudo(message.id[1])], context=message.context)
        else:
            catalog.add(message.id, pseudo(message.id), context=message.context)
    return catalog


def write_pseudo() -> None:
    with open(POT, "rb") as f:
        template = read_po(f)
    catalog = pseudo_catalog(template)
    folder = TRANSLATIONS_DIR / PSEUDO_LOCALE / "LC_MESSAGES"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / "messages.po", "wb") as f:
        write_po(f, catalog, omit_header=True, sort_output=True)
    with open(folder / "messages.mo", "wb") as f:
        write_mo(f, catalog)


_PLACEHOLDER = re.compile(r"%\([a-z_0-9]+\)[sdif]|%[sdif]")


def problems(locale: str, template: Path = POT) -> list[str]:
    """What keeps a language's catalogue from being complete: messages missing, untranslated or fuzzy,
    and translations whose placeholders differ from the source's."""
    with open(template, "rb") as f:
        wanted = {m.id if isinstance(m.id, str) else m.id[0]: m for m in read_po(f) if m.id}
    with open(TRANSLATIONS_DIR / locale / "LC_MESSAGES" / "messages.po", "rb") as f:
        catalog = read_po(f)
    have = {m.id if isinstance(m.id, str) else m.id[0]: m for m in catalog if m.id}
    out = [f"missing: {k!r}" for k in wanted if k not in have]
    for key, message in have.items():
        if key not in wanted:
            continue
        strings = list(message.string) if isinstance(message.string, (list, tuple)) else [message.string]
        ids = list(message.id) if isinstance(message.id, (list, tuple)) else [message.id]
        if message.fuzzy:
            out.append(f"fuzzy: {key!r}")
        if not all(strings):
            out.append(f"untranslated: {key!r}")
            continue
        expected = sorted(set(_PLACEHOLDER.findall(" ".join(ids))))
        for text in strings:
            found = sorted(set(_PLACEHOLDER.findall(text)))
            # a plural form may leave out %(num)s (languages without plural forms say the number once)
            if found != expected and sorted(set(expected) - {"%(num)s", "%(num)d"}) != sorted(set(found) - {"%(num)s", "%(num)d"}):
                out.append(f"placeholders {found} differ from {expected}: {key!r}")
    return out


def main(argv: list[str]) -> int:
    if argv[:1] == ["check"] and len(argv) == 2:
        found = problems(argv[1])
        for line in found:
            print(line)
        print(f"{argv[1]}: {len(found)} problems")
        return 1 if found else 0
    if argv[:1] == ["extract"]:
        extract()
        return 0
    if argv[:1] == ["pseudo"]:
        write_pseudo()
        return 0
    print("usage: python -m lms_bridge.i18n_tools extract|pseudo|check LOCALE", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
