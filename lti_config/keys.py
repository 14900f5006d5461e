"""The tool's RSA signing keys: generated once, rotated with a grace period, the same on every server.

The database records which kid is active and when older ones were retired, so every worker agrees.
Where the private keys live depends on the store:
- SQLite (one machine): PEM files under DATA_DIR/keys (mode 0600, never in the repo);
- PostgreSQL (possibly several servers, each with its own data directory): in the database, sealed with
  Fernet under a key derived from the install's secret (`LMS_BRIDGE_SECRET_KEY`, the same on every server),
  so a rotation on one server is what every other one signs with next, and a database dump alone signs
  nothing. A PEM file of a key the database does not hold yet (an install copied from SQLite with
  `lms-bridge db copy`) still signs, and `lms-bridge init` seals it into the database.
"""
from __future__ import annotations

import base64
import json
import os
import secrets
import time
from datetime import timedelta
from functools import lru_cache
from pathlib import Path

import jwt
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from lms_bridge.db import dialect, write_transaction
from lms_bridge.db import keystore as ks
from lms_bridge.db import lti as q

KEY_BITS = 2048


class NoSigningKey(Exception):
    """No active key: `lms-bridge init` has not been run for this data directory."""


def _b64(n: int) -> str:
    raw = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def public_jwk(private_key, kid: str) -> dict:
    nums = private_key.public_key().public_numbers()
    return {"kty": "RSA", "alg": "RS256", "use": "sig", "kid": kid, "n": _b64(nums.n), "e": _b64(nums.e)}


def key_dir(data_dir: str) -> Path:
    return Path(data_dir) / "keys"


def in_database(db) -> bool:
    """PostgreSQL installs keep their private keys in the store all servers share."""
    return dialect(db) == "postgresql"


def install_secret(data_dir: str) -> str:
    """The secret the app signs launch tokens with: LMS_BRIDGE_SECRET_KEY, else the data directory's file."""
    from lms_bridge.config import secret_key

    return os.environ.get("LMS_BRIDGE_SECRET_KEY") or secret_key(data_dir)


@lru_cache(maxsize=8)
def _fernet(secret: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"lms-bridge", info=b"tool signing keys").derive(
        secret.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def seal(pem: bytes, data_dir: str) -> str:
    return _fernet(install_secret(data_dir)).encrypt(pem).decode()


def _pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def generate(db, data_dir: str) -> str:
    """Create a new key, keep its private half, and make it the active signing key. Returns its kid."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    kid = time.strftime("%Y%m%d") + "-" + secrets.token_hex(6)
    if in_database(db):
        with write_transaction(db):  # the key and its private half arrive together on every server
            q.add_tool_key(db, kid, public_jwk(key, kid))
            ks.store(db, kid, seal(_pem(key), data_dir))
        return kid
    folder = key_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    fd = os.open(folder / f"{kid}.pem", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(_pem(key))
    q.add_tool_key(db, kid, public_jwk(key, kid))
    return kid


def seal_key_files(db, data_dir: str) -> list[str]:
    """Seal into the database the PEM files of recorded keys it lacks (an install copied from SQLite)."""
    if not in_database(db):
        return []
    have, done = ks.kids(db), []
    for row in q.all_tool_keys(db):
        path = key_dir(data_dir) / f"{row['kid']}.pem"
        if row["kid"] not in have and path.is_file():
            ks.store(db, row["kid"], seal(path.read_bytes(), data_dir))
            done.append(row["kid"])
    return done


def ensure_key(db, data_dir: str) -> str | None:
    """Idempotent first key for `init`: returns the new kid, or None when one is active already."""
    seal_key_files(db, data_dir)
    active = q.active_tool_key(db)
    if active and in_database(db) and ks.sealed(db, active["kid"]):
        return None
    if active and (key_dir(data_dir) / f"{active['kid']}.pem").exists():
        return None
    return generate(db, data_dir)


rotate = generate


def jwks(db, grace_days: int) -> dict:
    """Active key plus keys retired within the grace period, so earlier signatures still verify."""
    return {"keys": [json.loads(r["public_jwk"]) for r in q.published_tool_keys(db, timedelta(days=grace_days))]}


@lru_cache(maxsize=16)
def _load_key(path: str, mtime: float):
    """Parsing and checking an RSA key costs ~40 ms: do it once per key file and process."""
    return serialization.load_pem_private_key(Path(path).read_bytes(), password=None)


@lru_cache(maxsize=16)
def _unseal(token: str, secret: str):
    return serialization.load_pem_private_key(_fernet(secret).decrypt(token.encode()), password=None)


def active_signing_key(db, data_dir: str):
    row = q.active_tool_key(db)
    if not row:
        raise NoSigningKey("no active signing key: run `lms-bridge init`")
    kid = row["kid"]
    token = ks.sealed(db, kid) if in_database(db) else None
    if token is not None:
        try:
            return kid, _unseal(token, install_secret(data_dir))
        except InvalidToken:
            raise NoSigningKey(f"the private key of kid {kid} does not open with this server's secret: "
                               "LMS_BRIDGE_SECRET_KEY must be the same on every server") from None
    path = key_dir(data_dir) / f"{kid}.pem"
    if not path.exists():
        if in_database(db):
            raise NoSigningKey(f"the private key of kid {kid} is neither in the database nor in {path.parent}: "
                               "run `lms-bridge init` where its file is, or `lms-bridge keys rotate`")
        raise NoSigningKey(f"the private key file for kid {kid} is missing from {path.parent}")
    return kid, _load_key(str(path), path.stat().st_mtime)


def sign(db, data_dir: str, claims: dict, headers: dict | None = None) -> str:
    """Sign claims with the active key (RS256, kid in the header)."""
    kid, key = active_signing_key(db, data_dir)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid, **(headers or {})})


def signer(db, data_dir: str):
    """A `claims -> JWT` callable for clients that must not know about the database."""
    return lambda claims: sign(db, data_dir, claims)
