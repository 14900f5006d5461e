"""`lms-bridge install-service`: systemd units that `systemd-analyze verify` accepts without a warning,
hardened, for the current install; reverse-proxy examples with the headers the tool trusts."""
from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import lms_bridge.cli as cli
from lms_bridge.ops import service

BIN = Path(sys.executable).with_name("lms-bridge")


def verify(*units: Path) -> subprocess.CompletedProcess:
    if shutil.which("systemd-analyze") is None:
        pytest.skip("systemd-analyze is not installed (Debian: apt-get install systemd)")
    return subprocess.run(["systemd-analyze", "verify", *map(str, units)], capture_output=True, text=True,
                          timeout=60)


def test_install_service_writes_units_that_systemd_accepts(app, tmp_path, monkeypatch):
    monkeypatch.setattr(cli, "_app", lambda **_: app)
    monkeypatch.setenv("LMS_BRIDGE_OUTBOX_CONCURRENCY", "4")
    root = tmp_path / "root"
    result = CliRunner().invoke(cli.main, ["install-service", "--root", str(root), "--port", "5050"])
    assert result.exit_code == 0, result.output
    units = root / "etc/systemd/system"
    serve, worker = units / "lms-bridge.service", units / "lms-bridge-worker.service"
    checked = verify(serve, worker)
    assert checked.returncode == 0 and checked.stderr == "", checked.stderr
    text = serve.read_text()
    assert f"ExecStart={service.current_install(app.config).executable} serve --host 127.0.0.1 --port 5050" in text
    assert "worker" in worker.read_text().split("ExecStart=")[1].splitlines()[0]
    env = root / "etc/lms-bridge/lms-bridge.env"
    assert env.stat().st_mode & 0o777 == 0o600
    assert f"LMS_BRIDGE_DATA={app.config['DATA_DIR']}" in env.read_text()
    assert "LMS_BRIDGE_OUTBOX_CONCURRENCY=4" in env.read_text()
    assert "LMS_BRIDGE_TRUSTED_PROXIES=1" in env.read_text()  # serve on loopback: only a local proxy reaches it
    public = service.current_install(app.config, host="0.0.0.0")
    assert "LMS_BRIDGE_TRUSTED_PROXIES" not in service.env_file(public)
    assert "PrivateTmp=false" in text  # the test's data directory lives under /tmp


def test_a_broken_unit_is_caught_by_the_verification(tmp_path):
    install = service.Install(executable=str(BIN), user="root", group="root", data_dir="/var/lib/lms-bridge",
                              database_dir="/var/lib/lms-bridge", tool_url="https://tool.example.org")
    unit = tmp_path / "lms-bridge.service"
    unit.write_text(service.serve_unit(install).replace("Restart=on-failure", "Restart=sometimes"))
    assert "restart specifier" in verify(unit).stderr
    unit.write_text(service.serve_unit(install).replace(str(BIN), "/nowhere/lms-bridge"))
    assert verify(unit).returncode != 0


def test_units_are_hardened_and_restart_on_failure(tmp_path):
    install = service.Install(executable=str(BIN), user="lmsbridge", group="lmsbridge",
                              data_dir="/var/lib/lms-bridge", database_dir="/srv/db", tool_url="https://tool.example.org",
                              port=5001, workers=3)
    for unit in (service.serve_unit(install), service.worker_unit(install)):
        lines = set(unit.splitlines())
        assert {"Restart=on-failure", "User=lmsbridge", "EnvironmentFile=/etc/lms-bridge/lms-bridge.env",
                "ProtectSystem=strict", "NoNewPrivileges=true", "PrivateTmp=true", "ProtectHome=true",
                "ReadWritePaths=/srv/db /var/lib/lms-bridge", "CapabilityBoundingSet=", "UMask=0077"} <= lines
    (tmp_path / "u.service").write_text(service.serve_unit(install).replace("User=lmsbridge", "User=root")
                                        .replace("Group=lmsbridge", "Group=root"))
    checked = verify(tmp_path / "u.service")
    assert checked.returncode == 0 and checked.stderr == "", checked.stderr
    home = service.Install(executable="/home/admin/venv/bin/lms-bridge", user="admin", group="admin",
                           data_dir="/home/admin/data", database_dir="/home/admin/data", tool_url="https://t.example")
    assert "ProtectHome=read-only" in service.serve_unit(home)


def test_proxy_examples_pass_the_forwarded_headers_and_never_log_query_strings(app):
    install = service.current_install(dict(app.config, TOOL_URL="https://tool.example.org"))
    nginx, caddy = service.nginx_conf(install), service.caddyfile(install)
    for header in ("X-Forwarded-Proto $scheme", "X-Forwarded-Host $host", "X-Forwarded-For", "X-Request-ID"):
        assert header in nginx
    assert "server_name tool.example.org;" in nginx and "access_log off;" in nginx
    assert "client_max_body_size 21m;" in nginx
    assert caddy.startswith("# Caddy") and "tool.example.org {" in caddy and "reverse_proxy 127.0.0.1:5000" in caddy


def test_print_shows_every_file_and_writing_to_etc_needs_root(app, monkeypatch):
    monkeypatch.setattr(cli, "_app", lambda **_: app)
    out = CliRunner().invoke(cli.main, ["install-service", "--print"])
    assert out.exit_code == 0
    for path in service.files(service.current_install(app.config)):
        assert f"# ---- {path}" in out.output
    monkeypatch.setattr("os.geteuid", lambda: 1000)
    refused = CliRunner().invoke(cli.main, ["install-service"])
    assert refused.exit_code == 1 and "needs root" in refused.output


def test_forwarded_headers_are_trusted_only_when_configured(tmp_path):
    from conftest import make_app

    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "tool.example.org"}
    plain = make_app(tmp_path / "a").test_client().get("/healthz", headers=headers).get_json()
    trusted = make_app(tmp_path / "b", TRUSTED_PROXIES=1).test_client().get("/healthz", headers=headers).get_json()
    assert (plain["scheme"], trusted["scheme"]) == ("http", "https")


def test_on_postgresql_only_the_data_directory_is_granted_and_the_env_file_names_the_database(tmp_path, monkeypatch):
    from lms_bridge.config import load

    monkeypatch.delenv("LMS_BRIDGE_DATABASE_URL", raising=False)
    url = "postgresql://lmsbridge:s3cret@db.example.org:5432/lms_bridge"
    config = load({"DATA_DIR": str(tmp_path / "data"), "DATABASE_URL": url, "TOOL_URL": "https://tool.example.org"})
    install = service.current_install(config, user="root")
    assert install.database_dir is None and install.writable == [config["DATA_DIR"]]
    assert f"ReadWritePaths={config['DATA_DIR']}\n" in service.serve_unit(install)
    assert f'LMS_BRIDGE_DATABASE_URL={url}' in service.env_file(install)
    assert dict(service.files(install))[service.ENV_FILE][1] == 0o600  # it holds the database password
