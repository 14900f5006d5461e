"""A real Moodle 4.5 on 127.0.0.1 for the harness: Debian packages, PostgreSQL 15, Apache with mod_php,
the unpacked source, a fresh install (or a cached copy of one), the loopback settings and the seeded site.

Everything it starts it stops again (`MoodleSite.down`), also after a failure.
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import requests

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
WWWROOT = "http://127.0.0.1"
PASSWORD = "Harness-pass-1"
ADMIN_PASSWORD = "Harness-admin-1"
DB_NAME = "lmsbridge_moodle"
DB_TEMPLATE = "lmsbridge_moodle_seeded"
DB_USER = "lmsbridge_moodle"
DB_PASS = "lmsbridge-moodle-test"
PG_VERSION = "15"
PACKAGES = ["apache2", "libapache2-mod-php8.2", "php8.2-cli", "php8.2-pgsql", "php8.2-xml", "php8.2-mbstring",
            "php8.2-curl", "php8.2-zip", "php8.2-gd", "php8.2-intl", "php8.2-soap", "postgresql"]
# Bump when what a cached install holds changes (settings below, setup_site.php is hashed anyway).
CACHE_VERSION = "2"
SETTINGS = {
    # Loopback: Moodle must fetch the tool's JWKS and registration endpoints on localhost:<port>.
    "curlsecurityblockedhosts": "",
    "curlsecurityallowedport": "",
    "enablewebservices": "1",
    "webserviceprotocols": "rest",
    "enablecompletion": "1",
    "debug": "0",
    "passwordpolicy": "0",
    "forcetimezone": "99",
}


def log(message: str) -> None:
    print(f"[moodle] {time.strftime('%H:%M:%S')} {message}", flush=True)


def run(cmd, *, check=True, capture=False, env=None, cwd=None, timeout=900, input=None):
    result = subprocess.run(cmd, check=False, text=True, env=env, cwd=cwd, timeout=timeout, input=input,
                            stdout=subprocess.PIPE if capture else None, stderr=subprocess.PIPE if capture else None)
    if check and result.returncode != 0:
        detail = (result.stderr or result.stdout or "")[-3000:] if capture else ""
        raise RuntimeError(f"{' '.join(map(str, cmd))} exited {result.returncode}\n{detail}")
    return result


def port_open(host: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


class MoodleSite:
    def __init__(self, tarball: Path, build: Path):
        self.tarball = Path(tarball).resolve()
        self.build = Path(build).resolve()
        self.apache_dir = self.build / "apache"
        self.dataroot = self.build / "moodledata"
        self.started_postgres = False
        self.started_apache = False
        self.installed_packages = False
        self.info: dict = {}
        self.timings: dict[str, float] = {}

    # ---- keys and paths -------------------------------------------------------------------------
    def source_key(self) -> str:
        h = hashlib.sha256()
        with open(self.tarball, "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        return h.hexdigest()[:16]

    @property
    def src(self) -> Path:
        return self.build / "src" / self.key / "moodle"

    def seed_key(self) -> str:
        h = hashlib.sha256((CACHE_VERSION + json.dumps(SETTINGS, sort_keys=True) + self.key + str(self.build)).encode())
        h.update((HERE / "setup_site.php").read_bytes())
        return h.hexdigest()[:16]

    # ---- pieces ---------------------------------------------------------------------------------
    def ensure_packages(self) -> None:
        missing = [p for p in PACKAGES if run(["dpkg-query", "-W", "-f=${Status}", p], check=False,
                                              capture=True).stdout.strip() != "install ok installed"]
        if not missing:
            return
        if os.geteuid() != 0:
            raise RuntimeError(f"missing Debian packages {missing} and not root: install them first")
        log(f"installing {' '.join(missing)}")
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        run(["apt-get", "update", "-qq"], env=env)
        run(["apt-get", "install", "-y", "-qq", *missing], env=env)
        self.installed_packages = True
        # Debian starts the services it installs; this harness runs its own Apache on 127.0.0.1 only.
        if "apache2" in missing:
            run(["apache2ctl", "stop"], check=False, capture=True)

    def ensure_postgres(self) -> None:
        clusters = run(["pg_lsclusters", "-h"], capture=True).stdout.split("\n")
        main = [line.split() for line in clusters if line.startswith(f"{PG_VERSION} main")]
        if not main:
            run(["pg_createcluster", PG_VERSION, "main"], capture=True)
            main = [[PG_VERSION, "main", "5432", "down"]]
        port = int(main[0][2])
        if main[0][3] != "online":
            log("starting PostgreSQL 15")
            run(["pg_ctlcluster", PG_VERSION, "main", "start"], capture=True)
            self.started_postgres = True
        self.pg_port = port
        self.psql_admin(f"DO $$BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{DB_USER}') THEN "
                        f"CREATE ROLE {DB_USER} LOGIN CREATEDB PASSWORD '{DB_PASS}'; END IF; END$$;")

    def psql_admin(self, sql: str, db: str = "postgres") -> str:
        return run(["runuser", "-u", "postgres", "--", "psql", "-p", str(self.pg_port), "-d", db, "-v",
                    "ON_ERROR_STOP=1", "-Atqc", sql], capture=True).stdout

    def sql(self, query: str, *params) -> list[tuple]:
        """Rows from Moodle's own database (the checks read Moodle, not the tool)."""
        for p in params:
            query = query.replace("%s", "'" + str(p).replace("'", "''") + "'", 1)
        out = run(["psql", "-h", "127.0.0.1", "-p", str(self.pg_port), "-U", DB_USER, "-d", DB_NAME, "-At",
                   "-F", "\t", "-v", "ON_ERROR_STOP=1", "-c", query], capture=True,
                  env=dict(os.environ, PGPASSWORD=DB_PASS)).stdout
        return [tuple(line.split("\t")) for line in out.splitlines() if line]

    def ensure_source(self) -> None:
        if (self.src / "version.php").is_file():
            return
        log(f"unpacking {self.tarball.name}")
        target = self.src.parent
        shutil.rmtree(target, ignore_errors=True)
        target.mkdir(parents=True)
        run(["tar", "-xJf", str(self.tarball), "-C", str(target)])
        if not (self.src / "version.php").is_file():
            raise RuntimeError(f"{self.tarball} did not unpack to a moodle/ folder")
        # install.php writes config.php as the web server user.
        shutil.chown(self.src, user="www-data")

    def php(self, *args, capture=True, check=True, timeout=900):
        return run(["runuser", "-u", "www-data", "--", "php", "-d", "max_input_vars=5000", *map(str, args)],
                   cwd=self.src, capture=capture, check=check, timeout=timeout)

    def database_exists(self, name: str) -> bool:
        return self.psql_admin(f"SELECT 1 FROM pg_database WHERE datname = '{name}'").strip() == "1"

    def template_matches(self) -> bool:
        if not self.database_exists(DB_TEMPLATE):
            return False
        comment = self.psql_admin(f"SELECT shobj_description(oid, 'pg_database') FROM pg_database "
                                  f"WHERE datname = '{DB_TEMPLATE}'").strip()
        return comment == self.seed and (self.cache_dir / "moodledata.tar").is_file()

    @property
    def cache_dir(self) -> Path:
        return self.build / "cache" / self.seed

    def fresh_database(self, template: str | None = None) -> None:
        self.psql_admin(f"DROP DATABASE IF EXISTS {DB_NAME} WITH (FORCE)")
        tpl = f" TEMPLATE {template}" if template else " TEMPLATE template0"
        self.psql_admin(f"CREATE DATABASE {DB_NAME} OWNER {DB_USER} ENCODING 'UTF8'{tpl}")

    def reset_dataroot(self, archive: Path | None) -> None:
        if self.dataroot.exists():
            shutil.rmtree(self.dataroot)
        self.dataroot.mkdir(parents=True)
        if archive:
            run(["tar", "-xf", str(archive), "-C", str(self.dataroot)])
        run(["chown", "-R", "www-data:www-data", str(self.dataroot)])

    def install(self) -> None:
        log("installing Moodle (install.php, about a minute)")
        (self.src / "config.php").unlink(missing_ok=True)
        self.fresh_database()
        self.reset_dataroot(None)
        self.php("admin/cli/install.php", "--non-interactive", "--agree-license", "--lang=en",
                 f"--wwwroot={WWWROOT}", f"--dataroot={self.dataroot}", "--dbtype=pgsql", "--dbhost=127.0.0.1",
                 f"--dbport={self.pg_port}", f"--dbname={DB_NAME}", f"--dbuser={DB_USER}", f"--dbpass={DB_PASS}",
                 "--prefix=mdl_", "--fullname=lms_bridge test Moodle", "--shortname=lmsbridge",
                 "--adminuser=admin", f"--adminpass={ADMIN_PASSWORD}", "--adminemail=admin@example.org",
                 "--supportemail=admin@example.org")
        for name, value in SETTINGS.items():
            self.php("admin/cli/cfg.php", f"--name={name}", f"--set={value}")
        for name in ("curlsecurityblockedhosts", "curlsecurityallowedport"):
            got = self.php("admin/cli/cfg.php", f"--name={name}").stdout.strip()
            assert got == "", f"{name} is {got!r}, should be empty"
        seeded = self.php(HERE / "setup_site.php", self.src, PASSWORD).stdout
        # A test site with no network: scheduled tasks would spend minutes on update checks and the like.
        # cron.php then runs the ad hoc tasks only (a course restore is one).
        self.sql("UPDATE mdl_task_scheduled SET disabled = 1")
        self.php("admin/cli/purge_caches.php")
        info = json.loads(seeded.strip().splitlines()[-1])
        # Keep the seeded state: as a template database (instant next time on this machine) and as
        # a dump plus the dataroot in the build folder.
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        (self.cache_dir / "site.json").write_text(json.dumps(info))
        run(["tar", "-cf", str(self.cache_dir / "moodledata.tar"), "-C", str(self.dataroot), "."])
        run(["runuser", "-u", "postgres", "--", "pg_dump", "-p", str(self.pg_port), "-Fc", "-f", "/tmp/lmsbridge_moodle.dump",
             DB_NAME])
        shutil.move("/tmp/lmsbridge_moodle.dump", self.cache_dir / "db.dump")
        self.make_template()
        self.info = info

    def make_template(self) -> None:
        self.psql_admin(f"DROP DATABASE IF EXISTS {DB_TEMPLATE} WITH (FORCE)")
        self.psql_admin(f"CREATE DATABASE {DB_TEMPLATE} OWNER {DB_USER} TEMPLATE {DB_NAME}")
        self.psql_admin(f"COMMENT ON DATABASE {DB_TEMPLATE} IS '{self.seed}'")

    def restore(self) -> None:
        if not self.template_matches():
            log("restoring the cached Moodle database dump")
            self.fresh_database()
            run(["runuser", "-u", "postgres", "--", "pg_restore", "-p", str(self.pg_port), "-d", DB_NAME,
                 "--no-owner", f"--role={DB_USER}", "-j", "2", str(self.cache_dir / "db.dump")], capture=True)
            self.make_template()
        self.fresh_database(DB_TEMPLATE)
        self.reset_dataroot(self.cache_dir / "moodledata.tar")
        self.info = json.loads((self.cache_dir / "site.json").read_text())

    def apache_conf(self) -> Path:
        d = self.apache_dir
        d.mkdir(parents=True, exist_ok=True)
        mods = "/usr/lib/apache2/modules"
        conf = f"""
ServerRoot /etc/apache2
DefaultRuntimeDir {d}
PidFile {d}/httpd.pid
Listen 127.0.0.1:80
ServerName 127.0.0.1
User www-data
Group www-data
LoadModule mpm_prefork_module {mods}/mod_mpm_prefork.so
LoadModule authz_core_module {mods}/mod_authz_core.so
LoadModule dir_module {mods}/mod_dir.so
LoadModule mime_module {mods}/mod_mime.so
LoadModule php_module {mods}/libphp8.2.so
StartServers 4
MinSpareServers 2
MaxSpareServers 8
MaxRequestWorkers 24
TypesConfig /etc/mime.types
ErrorLog {d}/error.log
LogFormat "%h %t \\"%r\\" %>s %b %D" timed
CustomLog {d}/access.log timed
DocumentRoot {self.src}
AcceptPathInfo On
<Directory />
  Require all denied
  AllowOverride None
</Directory>
<Directory {self.src}>
  Require all granted
  DirectoryIndex index.php index.html
</Directory>
<FilesMatch "\\.php$">
  SetHandler application/x-httpd-php
</FilesMatch>
php_value max_input_vars 5000
php_value post_max_size 64M
php_value upload_max_filesize 64M
php_value memory_limit 512M
"""
        path = d / "httpd.conf"
        path.write_text(conf)
        return path

    def start_apache(self) -> None:
        if port_open("127.0.0.1", 80):
            raise RuntimeError("something already listens on 127.0.0.1:80: stop it (this harness serves Moodle there)")
        conf = self.apache_conf()
        run(["/usr/sbin/apache2", "-f", str(conf), "-t"], capture=True)
        run(["/usr/sbin/apache2", "-f", str(conf), "-k", "start"], capture=True)
        self.started_apache = True
        for _ in range(100):
            if port_open("127.0.0.1", 80):
                break
            time.sleep(0.1)
        r = requests.get(WWWROOT + "/login/index.php", timeout=60)
        if r.status_code != 200 or "Log in" not in r.text:
            raise RuntimeError(f"Moodle does not answer on {WWWROOT}: {r.status_code} {r.text[:300]}")

    # ---- lifecycle ------------------------------------------------------------------------------
    def up(self) -> dict:
        started = time.monotonic()
        if not self.tarball.is_file():
            raise RuntimeError(f"Moodle tarball not found: {self.tarball} (set MOODLE_TARBALL)")
        self.ensure_packages()
        self.key = self.source_key()
        self.ensure_postgres()
        self.ensure_source()
        self.seed = self.seed_key()
        if (self.src / "config.php").is_file() and (self.cache_dir / "db.dump").is_file():
            self.restore()
        else:
            self.install()
        zone = os.environ.get("MOODLE_USERS_TZ")
        if zone:
            # Diagnostic knob: everybody on a named zone instead of Moodle's default ("99").
            self.sql("UPDATE mdl_user SET timezone = %s WHERE username IN "
                     "('learner1', 'learner2', 'facilitator1', 'expert1')", zone)
            log(f"MOODLE_USERS_TZ: the harness users are on {zone}, not Moodle's default zone")
        self.timings["moodle_up"] = time.monotonic() - started
        self.start_apache()
        log(f"Moodle 4.5 up at {WWWROOT} in {time.monotonic() - started:.0f} s")
        return self.info

    def cron(self) -> str:
        # Moodle 4.5's cron keeps waiting for new ad hoc tasks for 3 minutes unless told not to.
        return self.php("admin/cli/cron.php", "--keep-alive=0", timeout=600).stdout

    def down(self) -> None:
        if self.started_apache:
            conf = self.apache_dir / "httpd.conf"
            run(["/usr/sbin/apache2", "-f", str(conf), "-k", "stop"], check=False, capture=True)
            for _ in range(100):
                if not port_open("127.0.0.1", 80):
                    break
                time.sleep(0.1)
            self.started_apache = False
        if self.started_postgres:
            run(["pg_ctlcluster", PG_VERSION, "main", "stop"], check=False, capture=True)
            self.started_postgres = False
