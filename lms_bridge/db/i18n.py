"""The interface language a person chose, remembered with their launch."""
from . import execute_write as _write, migration_set

migrations = migration_set("i18n")


@migrations()
def m001_launch_locale(db):
    db.execute("ALTER TABLE launches ADD COLUMN locale TEXT")


def set_launch_locale(db, launch_id: str, locale: str) -> None:
    _write(db, "UPDATE launches SET locale = ? WHERE id = ?", [locale, launch_id])
