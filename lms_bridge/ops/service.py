"""Service files for the current install: systemd units for `serve` and `worker`, the environment file
they read, and HTTPS reverse-proxy examples (Caddy, nginx) that pass the headers the tool trusts."""
from __future__ import annotations

import os
import pwd
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ..config import SETTINGS, database_path, is_postgres


@dataclass
class Install:
    """What the files are written for: taken from the running configuration and the command line."""

    executable: str
    user: str
    group: str
    data_dir: str
    database_dir: str | None  # the SQLite file's directory; None on PostgreSQL (nothing local to grant)
    tool_url: str
    host: str = "127.0.0.1"
    port: int = 5000
    workers: int = 2
    max_upload_mb: int = 20
    environment: tuple[tuple[str, str], ...] = ()

    @property
    def server_name(self) -> str:
        return urlsplit(self.tool_url).hostname or "tool.example.org"

    @property
    def writable(self) -> list[str]:
        return sorted({self.data_dir, *([self.database_dir] if self.database_dir else [])})


def current_install(config: dict, *, user: str | None = None, host="127.0.0.1", port=5000, workers=2,
                    environ=os.environ) -> Install:
    beside = Path(sys.executable).with_name("lms-bridge")  # the script of the environment running this
    executable = str(beside) if beside.exists() else (shutil.which("lms-bridge") or str(beside))
    user = user or pwd.getpwuid(os.geteuid()).pw_name
    try:
        group = _group_of(user)
    except KeyError:
        group = user
    env = {"LMS_BRIDGE_URL": config["TOOL_URL"], "LMS_BRIDGE_DATA": config["DATA_DIR"]}
    for s in SETTINGS:  # every other setting the admin set for this install, as set
        if s.env and s.env in environ and s.env not in env:
            env[s.env] = environ[s.env]
    if host in ("127.0.0.1", "::1", "localhost"):
        # Only a proxy on this host can reach a loopback bind: trust the one in the examples.
        env.setdefault("LMS_BRIDGE_TRUSTED_PROXIES", "1")
    if is_postgres(config["DATABASE_URL"]):
        db_dir = None
        env.setdefault("LMS_BRIDGE_DATABASE_URL", config["DATABASE_URL"])  # the services must find the same store
    else:
        db_dir = str(Path(database_path(config["DATABASE_URL"])).resolve().parent)
    return Install(executable=executable, user=user, group=group, data_dir=config["DATA_DIR"], database_dir=db_dir,
                   tool_url=config["TOOL_URL"], host=host, port=port, workers=workers,
                   max_upload_mb=int(config.get("MAX_UPLOAD_MB", 20)), environment=tuple(sorted(env.items())))


def _group_of(user: str) -> str:
    import grp

    return grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name


ENV_FILE = "/etc/lms-bridge/lms-bridge.env"
UNIT_DIR = "/etc/systemd/system"


def _hardening(install: Install) -> str:
    """Read-only system, private /tmp, no privilege gain; only the data directory is writable.

    ProtectHome hides /home and /root entirely unless the install lives there (then read-only)."""
    homes = ("/home/", "/root/", "/run/user/")
    under_home = any(p.startswith(homes) for p in (install.executable, *install.writable))
    return "\n".join([
        "NoNewPrivileges=true",
        "ProtectSystem=strict",
        f"ProtectHome={'read-only' if under_home else 'true'}",
        f"ReadWritePaths={' '.join(install.writable)}",
        # A data directory under /tmp (a trial install) must stay visible: no private /tmp then.
        f"PrivateTmp={'false' if any(p.startswith(('/tmp/', '/var/tmp/')) for p in install.writable) else 'true'}",
        "PrivateDevices=true",
        "ProtectKernelTunables=true",
        "ProtectKernelModules=true",
        "ProtectKernelLogs=true",
        "ProtectControlGroups=true",
        "ProtectClock=true",
        "ProtectHostname=true",
        "RestrictSUIDSGID=true",
        "RestrictRealtime=true",
        "RestrictNamespaces=true",
        "LockPersonality=true",
        "RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6",
        "SystemCallArchitectures=native",
        "CapabilityBoundingSet=",
        "UMask=0077",
    ])


def _unit(install: Install, description: str, command: str, extra: str = "") -> str:
    return f"""[Unit]
Description={description}
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
User={install.user}
Group={install.group}
EnvironmentFile={ENV_FILE}
WorkingDirectory={install.data_dir}
ExecStart={install.executable} {command}
Restart=on-failure
RestartSec=5
TimeoutStopSec=30
{extra}{_hardening(install)}

[Install]
WantedBy=multi-user.target
"""


def serve_unit(install: Install) -> str:
    return _unit(install, "lms_bridge LTI tool (web)",
                 f"serve --host {install.host} --port {install.port} --workers {install.workers}")


def worker_unit(install: Install) -> str:
    return _unit(install, "lms_bridge outbox worker (grades, completion, calendar, messages)", "worker")


def env_file(install: Install) -> str:
    lines = ["# LMS_BRIDGE_* settings for lms-bridge.service and lms-bridge-worker.service (see the README).",
             "# Keep this file mode 0600: it may hold a database password."]
    lines += [f"{key}={_quote(value)}" for key, value in install.environment]
    return "\n".join(lines) + "\n"


def _quote(value: str) -> str:
    return value if value and all(c.isalnum() or c in "/:._-@+=," for c in value) else \
        '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def caddyfile(install: Install) -> str:
    return f"""# Caddy: HTTPS with automatic certificates for {install.server_name}.
# Caddy sends X-Forwarded-For/-Proto/-Host itself; set LMS_BRIDGE_TRUSTED_PROXIES=1 so the tool trusts them.
{install.server_name} {{
	request_body {{
		max_size {install.max_upload_mb + 1}MB
	}}
	reverse_proxy {install.host}:{install.port} {{
		header_up X-Request-ID {{http.request.uuid}}
	}}
}}
"""


def nginx_conf(install: Install) -> str:
    name = install.server_name
    return f"""# nginx: HTTPS in front of lms-bridge serve. Set LMS_BRIDGE_TRUSTED_PROXIES=1 so the tool trusts the
# X-Forwarded-* headers below. Certificates e.g. from certbot.
server {{
    listen 80;
    server_name {name};
    return 301 https://$host$request_uri;
}}

server {{
    listen 443 ssl;
    http2 on;
    server_name {name};
    ssl_certificate /etc/letsencrypt/live/{name}/fullchain.pem;
    ssl_certificate_key /etc/letsencrypt/live/{name}/privkey.pem;

    client_max_body_size {install.max_upload_mb + 1}m;
    # No access log of query strings: launch pages carry a token in `lt`.
    access_log off;

    location / {{
        proxy_pass http://{install.host}:{install.port};
        proxy_set_header Host $host;
        proxy_set_header X-Forwarded-Proto $scheme;
        proxy_set_header X-Forwarded-Host $host;
        proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
        proxy_set_header X-Request-ID $request_id;
        proxy_read_timeout 60s;
    }}
}}
"""


def files(install: Install) -> dict[str, tuple[str, int]]:
    """Absolute path -> (content, mode) of every file `install-service` writes."""
    return {
        f"{UNIT_DIR}/lms-bridge.service": (serve_unit(install), 0o644),
        f"{UNIT_DIR}/lms-bridge-worker.service": (worker_unit(install), 0o644),
        ENV_FILE: (env_file(install), 0o600),
        "/etc/lms-bridge/Caddyfile.example": (caddyfile(install), 0o644),
        "/etc/lms-bridge/nginx.conf.example": (nginx_conf(install), 0o644),
    }


def write(install: Install, root: str = "/") -> list[Path]:
    """Write under `root` (a staging directory in tests and packaging; `/` for the real thing)."""
    written = []
    for path, (content, mode) in files(install).items():
        target = Path(root) / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w") as fh:
            fh.write(content)
        os.chmod(tmp, mode)
        os.replace(tmp, target)
        written.append(target)
    return written


NEXT_STEPS = """next:
  systemctl daemon-reload
  systemctl enable --now lms-bridge lms-bridge-worker
  then put Caddy or nginx in front (examples in /etc/lms-bridge/) and run `lms-bridge doctor`"""
