"""The interface language a person chose, remembered with their launch."""
from . import execute_write as _write, migration_set, one, ts

migrations = migration_set("i18n")


@migrations()
def m001_launch_locale(db):
    db.execute("ALTER TABLE launches ADD COLUMN locale TEXT")


@migrations()
def m002_person_locales(db):
    # Launches expire within hours; a message sent weeks later still needs the person's language.
    db.execute("CREATE TABLE person_locales (platform_id INTEGER NOT NULL REFERENCES platforms(id) ON DELETE CASCADE,"
               " user_id TEXT NOT NULL, locale TEXT NOT NULL, updated_at TEXT NOT NULL,"
               " PRIMARY KEY (platform_id, user_id))")


def set_launch_locale(db, launch_id: str, locale: str) -> None:
    _write(db, "UPDATE launches SET locale = ? WHERE id = ?", [locale, launch_id])


def remember_person_locale(db, platform_id: int, user_id: str, locale: str) -> None:
    _write(db, "INSERT INTO person_locales (platform_id, user_id, locale, updated_at) VALUES (?,?,?,?)"
               " ON CONFLICT (platform_id, user_id) DO UPDATE SET locale = excluded.locale,"
               " updated_at = excluded.updated_at WHERE person_locales.locale != excluded.locale", [platform_id, user_id, locale, ts()])


def person_locale(db, platform_id: int, user_id: str) -> str | None:
    row = one(db, "SELECT locale FROM person_locales WHERE platform_id = ? AND user_id = ?", [platform_id, user_id])
    return row["locale"] if row else None
