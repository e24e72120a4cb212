"""``loanops backup`` / ``loanops restore``: the whole database to one file and back, with a
sha256 checksum file next to it (``FILE.sha256``, in ``sha256sum`` format) checked on restore.

- SQLite: the sqlite3 online backup API (a consistent copy while the API and worker keep writing);
  the restore copies the backup into the target with the same API, after an integrity check.
- PostgreSQL: ``pg_dump -Fc`` / ``pg_restore --single-transaction --no-owner``. pg_dump must be
  at least the server's major version (it refuses newer servers): ``scripts/bootstrap.sh``
  installs Debian's ``postgresql-client`` (15 on Debian 12, the server's version there). Decision:
  no SQLAlchemy "logical dump" fallback — a dump that silently leaves out sequences, triggers,
  grants or types would be a backup that does not restore the same database; a client older than
  the server is refused, naming the package to install. Connection parameters go to the tools
  through the environment (PGHOST, PGPASSWORD...), never on the command line.

Restoring over a database that holds any row (a migrated database holds the seeded policy)
needs ``force``: SQLite's content is replaced whole; PostgreSQL's ``public`` schema is dropped
and recreated before the restore, in the same transaction as the restore itself — a failed
restore leaves the old database as it was.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import sqlite3
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import inspect, text
from sqlalchemy.engine import URL, make_url

from loanops.db import make_engine

SQLITE_MAGIC = b"SQLite format 3\x00"
PGDUMP_MAGIC = b"PGDMP"
APP_ROLE = "loanops_app"


class BackupError(Exception):
    """A backup or restore refused or failed; the message says why."""


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    checksum_path: Path
    sha256: str
    size: int
    kind: str  # "sqlite" or "postgresql"


def checksum_path(path: Path) -> Path:
    return path.with_name(path.name + ".sha256")


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _backend(url: URL) -> str:
    name = url.get_backend_name()
    if name not in ("sqlite", "postgresql"):
        raise BackupError(f"database_url: {name} databases are not supported")
    return name


def _sqlite_path(url: URL) -> Path:
    if not url.database or url.database == ":memory:":
        raise BackupError("database_url: an in-memory SQLite database cannot be backed up")
    return Path(url.database)


def backup(database_url: str, out: Path) -> BackupInfo:
    """Write the database to ``out`` and its checksum to ``out.sha256``."""
    url = make_url(database_url)
    kind = _backend(url)
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.unlink(missing_ok=True)
    try:
        if kind == "sqlite":
            _sqlite_backup(_sqlite_path(url), partial)
        else:
            _pg_dump(url, partial)
        partial.replace(out)
    finally:
        partial.unlink(missing_ok=True)
    digest = _sha256(out)
    checksum_path(out).write_text(f"{digest}  {out.name}\n", encoding="utf-8")
    return BackupInfo(out, checksum_path(out), digest, out.stat().st_size, kind)


def verify_backup(path: Path) -> str:
    """The backup's kind ("sqlite" / "postgresql") once its checksum file matches it; a missing
    file, a missing or malformed checksum file or a mismatch is refused."""
    if not path.is_file():
        raise BackupError(f"{path}: no such backup file")
    sums = checksum_path(path)
    if not sums.is_file():
        raise BackupError(f"{sums}: the checksum file is missing; the backup is not restored")
    match = re.fullmatch(r"([0-9a-f]{64}) [ *]?(.+)\n?", sums.read_text(encoding="utf-8"))
    if match is None:
        raise BackupError(f"{sums}: not a sha256 checksum line")
    if _sha256(path) != match.group(1):
        raise BackupError(
            f"{path}: the checksum does not match {sums.name}: the backup is corrupted "
            "and is not restored"
        )
    with path.open("rb") as f:
        head = f.read(len(SQLITE_MAGIC))
    if head.startswith(SQLITE_MAGIC):
        return "sqlite"
    if head.startswith(PGDUMP_MAGIC):
        return "postgresql"
    raise BackupError(f"{path}: neither a SQLite database nor a pg_dump custom-format archive")


def restore(database_url: str, path: Path, *, force: bool = False) -> str:
    """Restore ``path`` into the database; refused unless its checksum matches, its kind is the
    database's, and the database is empty or ``force`` is given. Returns the kind."""
    url = make_url(database_url)
    kind = _backend(url)
    found = verify_backup(path)
    if found != kind:
        raise BackupError(f"{path} is a {found} backup; the database is {kind}")
    if not force and not is_empty(database_url):
        raise BackupError(
            "the database is not empty: restoring replaces everything in it; pass --force to do so"
        )
    if kind == "sqlite":
        _sqlite_restore(path, _sqlite_path(url))
    else:
        _pg_restore(url, path)
    return kind


def is_empty(database_url: str) -> bool:
    """True when no table of the database holds a row (a new file, or a newly created
    PostgreSQL database)."""
    url = make_url(database_url)
    if url.get_backend_name() == "sqlite" and not _sqlite_path(url).exists():
        return True
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            for table in inspect(conn).get_table_names():
                if conn.execute(text(f'SELECT 1 FROM "{table}" LIMIT 1')).first():
                    return False
        return True
    finally:
        engine.dispose()


# --- SQLite -------------------------------------------------------------------------------


def _sqlite_backup(source: Path, out: Path) -> None:
    if not source.exists():
        raise BackupError(f"{source}: no such database file")
    src = sqlite3.connect(source, timeout=30)
    dst = sqlite3.connect(out)
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")  # one self-contained file, no -wal beside it
    finally:
        dst.close()
        src.close()


def _sqlite_restore(backup_file: Path, target: Path) -> None:
    src = sqlite3.connect(f"file:{backup_file}?mode=ro", uri=True)
    try:
        ok = src.execute("PRAGMA integrity_check").fetchone()
        if ok is None or ok[0] != "ok":
            raise BackupError(f"{backup_file}: the SQLite integrity check failed")
        target.parent.mkdir(parents=True, exist_ok=True)
        dst = sqlite3.connect(target, timeout=30)
        try:
            src.backup(dst)
        finally:
            dst.close()
    finally:
        src.close()


# --- PostgreSQL ---------------------------------------------------------------------------


def _pg_env(url: URL) -> dict[str, str]:
    env = dict(os.environ)
    parts = {
        "PGHOST": url.host,
        "PGPORT": str(url.port) if url.port else None,
        "PGUSER": url.username,
        "PGPASSWORD": url.password if isinstance(url.password, str) else None,
        "PGDATABASE": url.database,
    }
    env.update({k: v for k, v in parts.items() if v})
    return env


def _tool(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise BackupError(
            f"{name} is not installed: install Debian's postgresql-client "
            "(scripts/bootstrap.sh does)"
        )
    return found


def _major(version: str) -> int:
    match = re.search(r"(\d+)(?:\.\d+)?", version)
    if match is None:
        raise BackupError(f"cannot read a version from {version!r}")
    return int(match.group(1))


def _check_client_version(tool: str, url: URL) -> None:
    """pg_dump refuses a server newer than itself: say so before it does, naming versions."""
    client = _major(subprocess.run([tool, "--version"], capture_output=True, text=True).stdout)
    engine = make_engine(url.render_as_string(hide_password=False))
    try:
        with engine.connect() as conn:
            server = int(str(conn.execute(text("SHOW server_version_num")).scalar())) // 10000
    finally:
        engine.dispose()
    if client < server:
        raise BackupError(
            f"{Path(tool).name} {client} cannot dump a PostgreSQL {server} server: "
            f"install postgresql-client-{server}"
        )


def _run(args: list[str], url: URL) -> None:
    done = subprocess.run(args, env=_pg_env(url), capture_output=True, text=True)
    if done.returncode != 0:
        raise BackupError(f"{Path(args[0]).name} failed: {done.stderr.strip()}")


def _pg_dump(url: URL, out: Path) -> None:
    tool = _tool("pg_dump")
    _check_client_version(tool, url)
    _run([tool, "--format=custom", f"--file={out}"], url)


def _pg_restore(url: URL, backup_file: Path) -> None:
    tool = _tool("pg_restore")
    engine = make_engine(url.render_as_string(hide_password=False))
    try:
        with engine.begin() as conn:
            # The grants in the dump name the application role: it must exist (the cluster's).
            conn.execute(
                text(
                    f"DO $$ BEGIN CREATE ROLE {APP_ROLE} NOLOGIN; "
                    "EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL; END $$"
                )
            )
    finally:
        engine.dispose()
    # One transaction: the old schema goes and the backup comes in, or nothing changes.
    reset = (
        "DROP SCHEMA IF EXISTS public CASCADE;\n"
        "CREATE SCHEMA public AUTHORIZATION pg_database_owner;\n"
        "GRANT USAGE ON SCHEMA public TO PUBLIC;\n"
    )
    psql = _tool("psql")
    with tempfile.TemporaryDirectory(prefix="loanops-restore-") as tmp:
        reset_sql, script = Path(tmp) / "reset.sql", Path(tmp) / "restore.sql"
        reset_sql.write_text(reset, encoding="utf-8")
        _run([tool, "--no-owner", f"--file={script}", str(backup_file)], url)
        done = subprocess.run(
            [
                psql,
                "--no-psqlrc",
                "--quiet",
                "--single-transaction",
                "--set=ON_ERROR_STOP=1",
                f"--file={reset_sql}",
                f"--file={script}",
            ],
            env=_pg_env(url),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
    if done.returncode != 0:
        raise BackupError(f"the restore failed and changed nothing: {done.stderr.strip()}")
