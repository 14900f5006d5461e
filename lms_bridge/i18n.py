"""Translations: gettext for Python and Jinja, Babel for dates and numbers in the viewer's locale.

The request's locale lives on `g.locale` (set from the launch, `?lang=` or Accept-Language); outside a
request, and for strings built for someone else (a Moodle message to a learner), pass `locale=` explicitly.
"""
from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.support import NullTranslations, Translations
from flask import g, has_request_context

TRANSLATIONS_DIR = Path(__file__).parent / "translations"
DEFAULT_LOCALE = "en"


@lru_cache(maxsize=None)
def translations(locale: str) -> NullTranslations:
    """Compiled catalogue for `locale` (messages.mo), or the source strings when there is none."""
    if locale == DEFAULT_LOCALE:
        return NullTranslations()
    return Translations.load(str(TRANSLATIONS_DIR), [locale], domain="messages")


def current_locale() -> str:
    if has_request_context():
        return getattr(g, "locale", None) or DEFAULT_LOCALE
    return DEFAULT_LOCALE


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


def babel_locale(locale: str | None = None) -> Locale:
    """Babel's Locale for formatting; falls back to English for a code Babel does not know."""
    try:
        return Locale.parse((locale or current_locale()).replace("-", "_"))
    except (UnknownLocaleError, ValueError):
        return Locale.parse(DEFAULT_LOCALE)


def init_app(app) -> None:
    """Jinja's i18n extension with our gettext: `{{ _('Text %(n)s', n=1) }}` and `{% trans %}` work."""
    app.jinja_env.add_extension("jinja2.ext.i18n")
    app.jinja_env.install_gettext_callables(
        lambda message, **kw: gettext(message, **kw),
        lambda s, p, n, **kw: ngettext(s, p, n, **kw),
        newstyle=True,
    )
