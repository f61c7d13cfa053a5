"""Signed statements: what an approval, a denial, a review decision, a close and the job's own
`applied` event say, bound to the content they are about, with a key the warehouse never holds.

A statement is canonical JSON (sorted keys, no spaces, UTF-8) and its HMAC-SHA256 under a key of
the key file (`HALO_SIGNING_KEY_FILE`, made by `halo-pipeline key init`). Anyone who can write
the warehouse but cannot read the key file cannot make a statement verify: not by copying one
(each names its own event and warehouse), not by changing the request it is about (the content
is compared), not by replaying one (an approval is used once; the ledger of used approvals lives
beside the key). Whoever holds the key can; and `--by` itself is only as true as the person
typing it, which approvals in HaloITSM fix.

The key file is checked as ssh checks a private key: a regular file, mode 0600, owned by the
user running the command, in a folder nobody else can write. Plain Python, no Dagster.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import os
import secrets
import stat
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from halo_pipeline.environment import FromEnvironment

FORMAT = 1
"""The statement format: part of every statement, so a later format is never read as this one."""
KEY_FILE_NAME = "halo-signing.key"


class SigningSettings(FromEnvironment):
    signing_key_file: Path | None = None
    """HALO_SIGNING_KEY_FILE: the key file; unset, `halo-signing.key` beside the Dagster home."""


class SigningKeyError(ValueError):
    """The key file is missing or cannot be trusted; the message says what to run or fix."""


class Unverified(ValueError):
    """A statement that does not verify; the message says why, in words."""


def key_path() -> Path:
    """HALO_SIGNING_KEY_FILE, else beside the Dagster home (`$DAGSTER_HOME`, or the project's
    `.dagster_home`): not inside it, so `make clean` or a new instance never deletes it."""
    chosen = SigningSettings.load().signing_key_file
    if chosen is not None:
        return chosen
    home = Path(os.environ.get("DAGSTER_HOME") or ".dagster_home").resolve()
    return home.parent / KEY_FILE_NAME


@dataclass(frozen=True)
class Key:
    key_id: str
    secret: bytes
    created_at: str
    retired_at: str | None = None
    """A retired key verifies what it signed; it signs nothing new."""


@dataclass(frozen=True)
class KeyRing:
    path: Path
    warehouse_id: str
    keys: tuple[Key, ...]

    @property
    def active(self) -> Key:
        return next(key for key in reversed(self.keys) if key.retired_at is None)

    def sign(self, payload: Mapping[str, Any]) -> tuple[str, str]:
        """The statement (canonical JSON, stamped with the format, this warehouse and the key)
        and its signature."""
        stamped = {**payload, "v": FORMAT, "warehouse": self.warehouse_id,
                   "key_id": self.active.key_id}  # fmt: skip
        text = canonical(stamped)
        return text, _mac(self.active.secret, text)

    def verify(self, statement: str | None, signature: str | None) -> dict[str, Any]:
        """What a signed statement says, or `Unverified` saying why it cannot be believed."""
        if not statement or not signature:
            raise Unverified("it is not signed (recorded before statements were signed, or "
                             "written into the warehouse by hand)")  # fmt: skip
        try:
            payload = json.loads(statement)
        except ValueError:
            raise Unverified("its statement is not JSON") from None
        if not isinstance(payload, dict):
            raise Unverified("its statement is not a JSON object")
        key = next((k for k in self.keys if k.key_id == payload.get("key_id")), None)
        if key is None:
            raise Unverified(
                f"it is signed with key {str(payload.get('key_id'))[:40]!r}, which "
                f"{self.path} does not hold (lost or from elsewhere): unverifiable"
            )
        if not hmac.compare_digest(_mac(key.secret, statement), signature):
            raise Unverified("its signature does not match its statement")
        if payload.get("v") != FORMAT:
            raise Unverified(f"its statement is of format {payload.get('v')!r}, not {FORMAT}")
        if payload.get("warehouse") != self.warehouse_id:
            raise Unverified("it was signed for another warehouse")
        return payload

    @property
    def ledger(self) -> Path:
        """The approvals used, one `<signature> used|done` a line, beside the key and as
        private: `used` before the change an approval allows is written, `done` once its
        request is final. An approval `done` never counts again, whatever the warehouse says."""
        return self.path.with_name(self.path.name + ".used")

    def used(self) -> dict[str, str]:
        """Each approval's signature and its state, the latest line winning."""
        try:
            lines = self.ledger.read_text(encoding="ascii").splitlines()
        except FileNotFoundError:
            return {}
        return dict(line.split()[:2] for line in lines if len(line.split()) >= 2)

    def mark(self, signature: str, state: str) -> None:
        """Record, durably and once, that an approval is `used` or `done`."""
        if self.used().get(signature) in (state, "done"):
            return
        fd = os.open(self.ledger, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, f"{signature} {state}\n".encode("ascii"))
            os.fsync(fd)
        finally:
            os.close(fd)


def canonical(payload: Mapping[str, Any]) -> str:
    """One text for one content: keys sorted, no spaces, non-ASCII kept as UTF-8."""
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      default=_plain)  # fmt: skip


def _plain(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if hasattr(value, "total_seconds"):
        return int(value.total_seconds())
    raise TypeError(f"{type(value).__name__} cannot be part of a statement")


def _mac(secret: bytes, statement: str) -> str:
    return hmac.new(secret, statement.encode("utf-8"), hashlib.sha256).hexdigest()


def load_keyring(path: Path | None = None) -> KeyRing:
    """The key file, refused in one line when it is missing or cannot be trusted."""
    path = path or key_path()
    try:
        info = path.lstat()
    except FileNotFoundError:
        raise SigningKeyError(
            f"No signing key at {path}: run `halo-pipeline key init` (approvals and review "
            "decisions wait for it; syncs and revokes go on)."
        ) from None
    _trusted(path, info)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        keys = tuple(
            Key(k["key_id"], base64.b64decode(k["secret"]), k["created_at"], k.get("retired_at"))
            for k in data["keys"]
        )
        ring = KeyRing(path, str(data["warehouse_id"]), keys)
        ring.active  # noqa: B018 - one key must sign
    except (ValueError, KeyError, TypeError, StopIteration):
        raise SigningKeyError(
            f"{path} is not a halo-pipeline key file: restore it from your backup, or move it "
            "away and run `halo-pipeline key init` (what it signed then reads as unverifiable)."
        ) from None
    return ring


def keyring_or_none(log: Any = None) -> KeyRing | None:
    """The key for a job or a sensor: without one (or with one that cannot be trusted, said in
    the log), approvals and decisions wait while syncs and revokes go on."""
    try:
        return load_keyring()
    except SigningKeyError as error:
        (log or logging.getLogger(__name__)).warning(str(error))
        return None


def _trusted(path: Path, info: os.stat_result) -> None:
    """The checks ssh makes of a private key, each refusal saying what to run."""
    if not stat.S_ISREG(info.st_mode):
        raise SigningKeyError(f"{path} is not a regular file; the signing key must be one.")
    if info.st_uid != os.geteuid():
        raise SigningKeyError(
            f"{path} belongs to uid {info.st_uid}, not to this user ({os.geteuid()}): the "
            "signing key must be yours."
        )
    if stat.S_IMODE(info.st_mode) != 0o600:
        raise SigningKeyError(
            f"{path} is mode {stat.S_IMODE(info.st_mode):04o}; a signing key must be 0600 "
            f"(readable by you alone): chmod 600 {path}"
        )
    folder = path.parent.stat()
    if stat.S_IMODE(folder.st_mode) & 0o022 or folder.st_uid not in (0, os.geteuid()):
        raise SigningKeyError(
            f"{path.parent} can be written by others, who could replace the signing key: "
            f"chmod go-w {path.parent}"
        )


def init_keyring(warehouse_id: str, path: Path | None = None, *, rotate: bool = False) -> KeyRing:
    """Make the key file for this warehouse, or with `rotate` add a new key to it (the old ones
    then only verify). Never overwrites a key."""
    path = path or key_path()
    now = datetime.now(UTC).isoformat()
    new = Key(f"k{now[:10].replace('-', '')}-{secrets.token_hex(4)}", secrets.token_bytes(32), now)
    if rotate:
        ring = load_keyring(path)
        if ring.warehouse_id != warehouse_id:
            raise SigningKeyError(
                f"{path} belongs to warehouse {ring.warehouse_id}, not to this one "
                f"({warehouse_id})."
            )
        keys = tuple(k if k.retired_at else Key(k.key_id, k.secret, k.created_at, now)
                     for k in ring.keys) + (new,)  # fmt: skip
        _write(path, warehouse_id, keys, replace=True)
        return KeyRing(path, warehouse_id, keys)
    if path.exists():
        raise SigningKeyError(
            f"{path} exists already: a key is never overwritten (what it signed could no longer "
            "be verified). `halo-pipeline key init --rotate` adds a new one."
        )
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    _write(path, warehouse_id, (new,), replace=False)
    return KeyRing(path, warehouse_id, (new,))


def _write(path: Path, warehouse_id: str, keys: tuple[Key, ...], *, replace: bool) -> None:
    text = json.dumps(
        {
            "warehouse_id": warehouse_id,
            "keys": [
                {"key_id": k.key_id, "secret": base64.b64encode(k.secret).decode("ascii"),
                 "created_at": k.created_at, "retired_at": k.retired_at}
                for k in keys
            ],
        },
        indent=2,
    )  # fmt: skip
    target = path.with_name(path.name + ".new") if replace else path
    # Created 0600 from the start: never readable by others, not even for a moment.
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(fd, text.encode("utf-8"))
        os.fsync(fd)
    finally:
        os.close(fd)
    if replace:
        os.replace(target, path)
