"""The one registry of settings: name, environment variable, default and help text.

The README documents every entry (a test keeps it honest); `create_app` reads them.
"""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Setting:
    name: str
    env: str | None
    default: object
    help: str
    kind: type = str


SETTINGS: tuple[Setting, ...] = (
    Setting("TOOL_URL", "LMS_BRIDGE_URL", "http://127.0.0.1:5000",
            "The tool's public base URL, used in every absolute URL handed to a platform."),
    Setting("DATA_DIR", "LMS_BRIDGE_DATA", "./instance",
            "Data directory: SQLite database, signing keys, uploaded files, secret key."),
    Setting("DATABASE_URL", "LMS_BRIDGE_DATABASE_URL", None,
            "Where the store lives: `sqlite:///path` (or a file path) or `postgresql://USER:PASS@HOST:PORT/DB`; "
            "default `DATA_DIR/lms_bridge.sqlite3`."),
    Setting("SECRET_KEY", "LMS_BRIDGE_SECRET_KEY", None,
            "Session and launch-token signing secret, which also seals the private signing keys kept in a PostgreSQL "
            "store; generated once into `DATA_DIR/secret_key`. Several servers: the same value on every one."),
    Setting("DB_POOL_SIZE", "LMS_BRIDGE_DB_POOL_SIZE", 5,
            "PostgreSQL: connections each server process keeps open (plus up to twice as many more at peaks).", int),
    Setting("DB_CONNECT_TIMEOUT", "LMS_BRIDGE_DB_CONNECT_TIMEOUT", 10,
            "PostgreSQL: seconds to wait for a connection (a new one, or a free one from the pool) before the "
            "request answers 503 and a command says the server is unreachable.", int),
    Setting("DB_STATEMENT_TIMEOUT", "LMS_BRIDGE_DB_STATEMENT_TIMEOUT", 30,
            "PostgreSQL: seconds one statement may run before the server cancels it.", int),
    Setting("SANDBOX_ENABLED", None, False,
            "Mount the sandbox LMS (a test double). Set by `lms-bridge demo` and the tests only.", bool),
    Setting("LAUNCH_TOKEN_TTL", "LMS_BRIDGE_LAUNCH_TOKEN_TTL", 3600,
            "Idle lifetime of a launch, in seconds: renewed while the person is active; after this long without "
            "a request they open the activity again from the LMS.", int),
    Setting("LAUNCH_MAX_AGE", "LMS_BRIDGE_LAUNCH_MAX_AGE", 12 * 3600,
            "Seconds a launch is usable at most, however active; then a new launch from the LMS is needed.", int),
    Setting("STATE_TTL", "LMS_BRIDGE_STATE_TTL", 600,
            "Seconds between OIDC login and launch before the login state expires.", int),
    Setting("KEY_GRACE_DAYS", "LMS_BRIDGE_KEY_GRACE_DAYS", 14,
            "Days a rotated-out public key stays in the JWKS so tokens signed before rotation verify.", int),
    Setting("PLATFORM_KEYS_TTL", "LMS_BRIDGE_PLATFORM_KEYS_TTL", 86400,
            "Seconds a platform's key set is cached before it is fetched again.", int),
    Setting("HTTP_TIMEOUT", "LMS_BRIDGE_HTTP_TIMEOUT", 15,
            "Seconds before an outbound call to a platform is abandoned (and retried by the outbox).", int),
    Setting("MAX_UPLOAD_MB", "LMS_BRIDGE_MAX_UPLOAD_MB", 20,
            "Largest attachment a learner may upload, in MiB.", int),
    Setting("OUTBOX_CONCURRENCY", "LMS_BRIDGE_OUTBOX_CONCURRENCY", 8,
            "Deliveries one `lms-bridge worker` runs at once; several workers may run side by side.", int),
    Setting("OUTBOX_MAX_ATTEMPTS", "LMS_BRIDGE_OUTBOX_MAX_ATTEMPTS", 10,
            "Tries before a job with transient failures is marked failed (see `lms-bridge outbox --failed`).", int),
    Setting("OUTBOX_LEASE_SECONDS", "LMS_BRIDGE_OUTBOX_LEASE_SECONDS", 120,
            "Seconds a worker holds a claimed job; a job whose worker died is retried after this.", int),
    Setting("OUTBOX_BACKOFF_SECONDS", "LMS_BRIDGE_OUTBOX_BACKOFF_SECONDS", 2.0,
            "First retry delay; doubles per try, with jitter, never sooner than Retry-After.", float),
    Setting("OUTBOX_BACKOFF_MAX_SECONDS", "LMS_BRIDGE_OUTBOX_BACKOFF_MAX_SECONDS", 3600,
            "Longest delay between tries, in seconds.", int),
    Setting("OUTBOX_POLL_SECONDS", "LMS_BRIDGE_OUTBOX_POLL_SECONDS", 2.0,
            "How often an idle worker looks for due jobs, in seconds.", float),
    Setting("ALLOW_INSECURE_PLATFORMS", "LMS_BRIDGE_ALLOW_INSECURE", False,
            "Accept plain-HTTP platforms that are not on loopback during dynamic registration (never in production).",
            bool),
    Setting("TEST_PLATFORM", "LMS_BRIDGE_TEST_PLATFORM", "",
            "Origins (comma-separated, e.g. `http://127.0.0.1`) of a test LMS on a loopback or private address that "
            "dynamic registration may call; every other loopback, private or link-local address is refused."),
    Setting("RETENTION_DAYS", "LMS_BRIDGE_RETENTION_DAYS", 730,
            "Days after a course's last activity before the worker removes its personal data (library entries "
            "published with consent stay, anonymised).", int),
    Setting("LIBRARY_PUBLIC", "LMS_BRIDGE_LIBRARY_PUBLIC", False,
            "Also publish the library of promising practices read-only at /library/public/ (no names of anonymised entries).",
            bool),
    Setting("LIBRARY_INDEXABLE", "LMS_BRIDGE_LIBRARY_INDEXABLE", False,
            "Let search engines index the library's pages (otherwise they carry noindex).", bool),
    Setting("LIBRARY_LICENCE", "LMS_BRIDGE_LIBRARY_LICENCE", "CC BY 4.0",
            "Licence stated on library entries and in their CSV/JSON exports.", str),
    Setting("LOG_FORMAT", "LMS_BRIDGE_LOG_FORMAT", "kv",
            "Log line format on stderr: `kv` (key=value) or `json`; lines carry a request id, never tokens or names."),
    Setting("LOG_LEVEL", "LMS_BRIDGE_LOG_LEVEL", "INFO",
            "Application log level (`DEBUG`, `INFO`, `WARNING`, `ERROR`)."),
    Setting("ACCESS_LOG", "LMS_BRIDGE_ACCESS_LOG", False,
            "Also log one line per request (method, route pattern, status, time); never query strings.", bool),
    Setting("TRUSTED_PROXIES", "LMS_BRIDGE_TRUSTED_PROXIES", 0,
            "Reverse proxies in front of the tool whose X-Forwarded-Proto/Host/For headers are trusted (0: none).",
            int),
)


class ConfigError(Exception):
    """A setting has a value the tool cannot use."""


def _coerce(setting: Setting, raw: str):
    if setting.kind is bool:
        return raw.strip().lower() in ("1", "true", "yes", "on")
    if setting.kind in (int, float):
        try:
            return setting.kind(raw)
        except ValueError:
            raise ConfigError(f"{setting.env} must be a number, not {raw!r}") from None
    return raw


def load(overrides: dict | None = None, environ=os.environ) -> dict:
    """Defaults, then the environment, then explicit overrides (tests and `demo`)."""
    values = {s.name: s.default for s in SETTINGS}
    for s in SETTINGS:
        if s.env and s.env in environ:
            values[s.name] = _coerce(s, environ[s.env])
    values.update(overrides or {})
    values["TOOL_URL"] = str(values["TOOL_URL"]).rstrip("/")
    data_dir = Path(values["DATA_DIR"]).resolve()
    values["DATA_DIR"] = str(data_dir)
    if not values["DATABASE_URL"]:
        values["DATABASE_URL"] = str(data_dir / "lms_bridge.sqlite3")
    return values


def is_postgres(url: str) -> bool:
    return str(url).split("://", 1)[0].split("+", 1)[0] in ("postgresql", "postgres")


def database_path(url: str) -> str:
    """The SQLite file of `sqlite:///path` or a bare path; anything but SQLite or PostgreSQL is a configuration error."""
    if url.startswith("sqlite:///"):
        return url[len("sqlite:///"):]
    if is_postgres(url):
        raise ConfigError("the store is PostgreSQL, not a SQLite file")
    if "://" in url:
        raise ConfigError("LMS_BRIDGE_DATABASE_URL must be sqlite:///PATH or postgresql://USER:PASS@HOST:PORT/DB, "
                          f"not {url.split('://')[0]}://")
    return url


def secret_key(data_dir: str) -> str:
    """Generate the secret once into the data directory so every worker shares it."""
    path = Path(data_dir) / "secret_key"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".secret_key.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(secrets.token_hex(32))
        try:
            os.link(tmp, path)  # atomic: the first worker's secret wins, complete
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return path.read_text().strip()
