"""The tool's RSA signing keys: generated into the data directory, rotated with a grace period.

Private keys live as PEM files under DATA_DIR/keys (mode 0600, never in the repo); the database
records which kid is active and when older ones were retired, so every worker agrees.
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
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

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


def generate(db, data_dir: str) -> str:
    """Create a new key, write its PEM, and make it the active signing key. Returns its kid."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)
    kid = time.strftime("%Y%m%d") + "-" + secrets.token_hex(6)
    folder = key_dir(data_dir)
    folder.mkdir(parents=True, exist_ok=True)
    os.chmod(folder, 0o700)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption())
    fd = os.open(folder / f"{kid}.pem", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(pem)
    q.add_tool_key(db, kid, public_jwk(key, kid))
    return kid


def ensure_key(db, data_dir: str) -> str | None:
    """Idempotent first key for `init`: returns the new kid, or None when one is active already."""
    active = q.active_tool_key(db)
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


def active_signing_key(db, data_dir: str):
    row = q.active_tool_key(db)
    if not row:
        raise NoSigningKey("no active signing key: run `lms-bridge init`")
    path = key_dir(data_dir) / f"{row['kid']}.pem"
    if not path.exists():
        raise NoSigningKey(f"the private key file for kid {row['kid']} is missing from {path.parent}")
    return row["kid"], _load_key(str(path), path.stat().st_mtime)


def sign(db, data_dir: str, claims: dict, headers: dict | None = None) -> str:
    """Sign claims with the active key (RS256, kid in the header)."""
    kid, key = active_signing_key(db, data_dir)
    return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid, **(headers or {})})


def signer(db, data_dir: str):
    """A `claims -> JWT` callable for clients that must not know about the database."""
    return lambda claims: sign(db, data_dir, claims)
