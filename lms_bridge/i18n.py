"""Translations: gettext for Python and Jinja, Babel for dates and numbers in the viewer's locale.

The locale of a request comes from `?lang=` (the switcher, remembered with the launch), then the
launch (what the person chose before, else the LTI `launch_presentation.locale` the LMS sent), then
`Accept-Language`, then English. Strings built for someone else (a Moodle message to a learner) pass
`locale=` explicitly.
"""
from __future__ import annotations

import threading
from contextlib import contextmanager
from functools import lru_cache
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.numbers import format_decimal
from babel.support import NullTranslations, Translations
from flask import g, has_request_context, request

TRANSLATIONS_DIR = Path(__file__).parent / "translations"
DEFAULT_LOCALE = "en"
# The interface languages, each named in itself for the switcher; `en_XA` is the test pseudo-locale.
LANGUAGES = {
    "en": "English",
    "id": "Bahasa Indonesia",
    "fil": "Filipino",
    "ms": "Bahasa Melayu",
    "ne": "नेपाली",
    "bn": "বাংলা",
    "si": "සිංහල",
    "ta": "தமிழ்",
    "dv": "ދިވެހި",
    "ko": "한국어",
}
PSEUDO_LOCALE = "en_XA"
RTL = frozenset({"dv"})
LAUNCH_LOCALE_CLAIM = "https://purl.imsglobal.org/spec/lti/claim/launch_presentation"


@lru_cache(maxsize=None)
def translations(locale: str) -> NullTranslations:
    """Compiled catalogue for `locale` (messages.mo), or the source strings when there is none."""
    if locale == DEFAULT_LOCALE:
        return NullTranslations()
    return Translations.load(str(TRANSLATIONS_DIR), [locale], domain="messages")


def normalize(code: object, *, allow_pseudo: bool = True) -> str | None:
    """Map what an LMS or browser sends ('id', 'en-US', 'ko_KR', 'fil_PH', 'EN') to a supported locale."""
    if not isinstance(code, str) or not code or len(code) > 35:
        return None
    code = code.strip().replace("-", "_")
    if allow_pseudo and code.lower() == PSEUDO_LOCALE.lower():
        return PSEUDO_LOCALE
    lang = code.split("_")[0].lower()
    if lang == "tl":  # Moodle's and browsers' older code for Filipino
        lang = "fil"
    return lang if lang in LANGUAGES else None


def launch_locale(launch) -> str | None:
    """The locale remembered with a launch: the person's own choice, else the LMS's language claim."""
    chosen = normalize(getattr(launch, "locale", None))
    if chosen:
        return chosen
    presentation = (getattr(launch, "claims", None) or {}).get(LAUNCH_LOCALE_CLAIM)
    return normalize(presentation.get("locale")) if isinstance(presentation, dict) else None


def negotiate() -> str:
    """Locale for the current request (see the module docstring for the order)."""
    asked = normalize(request.args.get("lang"))
    if asked:
        return asked
    launch = g.get("launch")
    if launch is not None:
        chosen = launch_locale(launch)
        if chosen:
            return chosen
    header = request.accept_languages.best_match(
        [c.replace("_", "-") for c in LANGUAGES] + ["tl", "en-US", "en-GB"])
    return normalize(header, allow_pseudo=False) or DEFAULT_LOCALE


_for_reader = threading.local()


@contextmanager
def using_locale(locale: str | None):
    """Build text for someone else (a Moodle message to a learner) in their language, then switch back."""
    previous = getattr(_for_reader, "locale", None)
    _for_reader.locale = normalize(locale) or DEFAULT_LOCALE
    try:
        yield
    finally:
        _for_reader.locale = previous


def current_locale() -> str:
    forced = getattr(_for_reader, "locale", None)
    if forced:
        return forced
    if not has_request_context():
        return DEFAULT_LOCALE
    # Cached per launch: a page decided before its launch was loaded is decided again once it is.
    key = id(g.get("launch"))
    cached = g.get("_locale")
    if cached and cached[0] == key:
        return cached[1]
    locale = negotiate()
    g._locale = (key, locale)
    return locale


def gettext(message: str, locale: str | None = None, **variables) -> str:
    """Translate `message` and fill `%(name)s` placeholders from `variables`."""
    text = translations(locale or current_locale()).gettext(message)
    return text % variables if variables else text


def ngettext(singular: str, plural: str, num: int, locale: str | None = None, **variables) -> str:
    variables.setdefault("num", num)
    text = translations(locale or current_locale()).ngettext(singular, plural, num)
    return text % variables


def lazy_gettext(message: str) -> str:
    """Mark a module-level string for extraction; translate it where it is shown with `gettext(value)`."""
    return message


_ = gettext
N_ = lazy_gettext


class _Dhivehi(Locale):
    """CLDR has no Dhivehi month or weekday names (Babel prints 'M12' and 'Mon'): the names used in the
    Maldives for the Gregorian calendar, for every width and context."""

    _MONTHS = ("ޖަނަވަރީ", "ފެބްރުއަރީ", "މާރިޗު", "އޭޕްރީލު", "މެއި", "ޖޫން", "ޖުލައި", "އޯގަސްޓު",
               "ސެޕްޓެމްބަރު", "އޮކްޓޯބަރު", "ނޮވެމްބަރު", "ޑިސެމްބަރު")
    _DAYS = ("ހޯމަ", "އަންގާރަ", "ބުދަ", "ބުރާސްފަތި", "ހުކުރު", "ހޮނިހިރު", "އާދިއްތަ")  # Monday first, as Babel

    @property
    def months(self):
        names = {i + 1: n for i, n in enumerate(self._MONTHS)}
        return {c: {w: names for w in ("wide", "abbreviated", "narrow")} for c in ("format", "stand-alone")}

    @property
    def days(self):
        names = dict(enumerate(self._DAYS))
        return {c: {w: names for w in ("wide", "abbreviated", "short", "narrow")} for c in ("format", "stand-alone")}


@lru_cache(maxsize=32)
def _parsed(code: str) -> Locale:
    if code == "dv":
        return _Dhivehi("dv")
    try:
        return Locale.parse(code.replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return Locale.parse(DEFAULT_LOCALE)


def babel_locale(locale: str | None = None) -> Locale:
    """Babel's Locale for formatting; English for the pseudo-locale or a code Babel does not know."""
    code = locale or current_locale()
    return _parsed(DEFAULT_LOCALE if code == PSEUDO_LOCALE else code)


def text_direction(locale: str | None = None) -> str:
    return "rtl" if (locale or current_locale()) in RTL else "ltr"


def html_lang(locale: str | None = None) -> str:
    return (locale or current_locale()).replace("_", "-")


def number(value, locale: str | None = None) -> str:
    """A number with the locale's digits grouping and decimal sign ('1.234,5' in Indonesian)."""
    return format_decimal(value, locale=babel_locale(locale))


def switcher_items() -> list[tuple[str, str, str]]:
    """(code, name in itself, URL of this page in that language) for the language switcher."""
    launch = g.get("launch")
    if request.method == "GET":
        path, args = request.path, request.args.to_dict()
    else:  # a page answering a form post: offer the languages on the home page instead
        path, args = "/app/home", {}
    if launch is not None and launch.token:
        args["lt"] = launch.token  # the renewed token or the cookie reference, never the one presented
    items = []
    for code, name in LANGUAGES.items():
        args["lang"] = code
        query = "&".join(f"{k}={_quote(v)}" for k, v in args.items())
        items.append((code, name, f"{path}?{query}"))
    return items


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")


def init_app(app) -> None:
    """Jinja's i18n extension with our gettext, locale helpers for templates, and `?lang=` remembered."""
    app.jinja_env.add_extension("jinja2.ext.i18n")
    app.jinja_env.install_gettext_callables(
        lambda message, **kw: gettext(message, **kw),
        lambda s, p, n, **kw: ngettext(s, p, n, **kw),
        newstyle=True,
    )
    app.jinja_env.filters.setdefault("number", number)

    @app.context_processor
    def _locale_context():
        return {"locale": current_locale, "html_lang": html_lang, "text_direction": text_direction,
                "language_switcher": switcher_items, "LANGUAGES": LANGUAGES}

    @app.after_request
    def _remember_choice(resp):
        # `?lang=` from the switcher sticks to the launch, so the next page keeps the language.
        launch = g.get("launch")
        if launch is None or resp.status_code >= 400:
            return resp
        asked = normalize(request.args.get("lang"), allow_pseudo=False) if "lang" in request.args else None
        landing = request.endpoint == "main.landing"
        if asked or landing:
            from .db import get_db
            from .db import i18n as q

            db = get_db()
            if asked and asked != getattr(launch, "locale", None):
                q.set_launch_locale(db, launch.id, asked)
            # the person's language for messages sent later, when no launch of theirs is alive
            chosen = asked or launch_locale(launch)
            if chosen:
                q.remember_person_locale(db, launch.platform_id, launch.user_id, chosen)
        return resp
