"""The query index: ``<git-common-dir>/gitml/index.sqlite``, a cache of the runs ref.

It records the runs-ref tip it reflects. Every query first brings it up to date by diffing the
``runs/`` trees of the indexed tip and the current tip, reading only changed shards and runs.
It is never trusted over the ref: a missing, unreadable or foreign-schema index file, or an
indexed tip that no longer exists, is rebuilt from scratch.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path

from gitml.core import runsref
from gitml.core.errors import CorruptRunError
from gitml.core.formats import RUN_FILES, Run, parse_run
from gitml.core.gitrepo import GitRepo

INDEX_FILE = "index.sqlite"
INDEX_SCHEMA = "3"
BULK_THRESHOLD = 200  # past this many changed runs, read them with git cat-file --batch
log = logging.getLogger(__name__)

_TABLES = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS runs(id TEXT PRIMARY KEY, name TEXT, experiment TEXT, status TEXT,
    start_time TEXT, end_time TEXT, user TEXT, source_commit TEXT, branch TEXT, dirty INTEGER,
    doc TEXT, artifacts INTEGER);
CREATE TABLE IF NOT EXISTS params(run_id TEXT, key TEXT, value TEXT, num REAL);
CREATE TABLE IF NOT EXISTS metrics(run_id TEXT, key TEXT, value REAL, step INTEGER, timestamp TEXT);
CREATE TABLE IF NOT EXISTS tags(run_id TEXT, key TEXT, value TEXT);
CREATE TABLE IF NOT EXISTS corrupt(run_id TEXT PRIMARY KEY, message TEXT);
"""
_INDEX_COLUMNS = {
    "runs_start": "runs(start_time)",
    "runs_commit": "runs(source_commit)",
    "params_key": "params(key, run_id)",
    # (run_id, key) first: a filter's EXISTS on one run must be a point lookup, not a scan of
    # every run's values for that key (which made search quadratic in the number of runs).
    "params_run": "params(run_id, key)",
    "metrics_key": "metrics(key, value)",
    "metrics_run": "metrics(run_id, key)",
    "tags_key": "tags(key, run_id)",
    "tags_run": "tags(run_id, key)",
}
_INDEX_NAMES = tuple(_INDEX_COLUMNS)
_INDEXES = tuple(f"CREATE INDEX IF NOT EXISTS {n} ON {c}" for n, c in _INDEX_COLUMNS.items())


def index_path(repo: GitRepo) -> Path:
    return repo.gitml_dir / INDEX_FILE


def _connect(path: Path) -> sqlite3.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=60, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(_TABLES + ";".join(_INDEXES))
    return conn


def _meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def open_index(repo: GitRepo) -> sqlite3.Connection:
    """Open the index, brought up to date with the runs ref (rebuilt if it cannot be trusted)."""
    path = index_path(repo)
    try:
        conn = _connect(path)
        if _meta(conn, "schema") not in (None, INDEX_SCHEMA):
            raise sqlite3.DatabaseError("index schema changed")
    except sqlite3.DatabaseError:
        _remove(path)
        conn = _connect(path)
    for _ in range(10):
        if _sync(repo, conn):
            return conn
    return conn


def rebuild(repo: GitRepo) -> int:
    """Throw the index away and rebuild it from the runs ref; return the number of runs indexed."""
    _remove(index_path(repo))
    conn = open_index(repo)
    try:
        return conn.execute("SELECT count(*) FROM runs").fetchone()[0]
    finally:
        conn.close()


def _remove(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        try:
            os.unlink(str(path) + suffix)
        except FileNotFoundError:
            pass


def _sync(repo: GitRepo, conn: sqlite3.Connection) -> bool:
    """Apply the ref's changes since the indexed tip; False when another process raced us."""
    tip = repo.ref(runsref.RUNS_REF)
    indexed = _meta(conn, "tip")
    if indexed == (tip or ""):
        return True
    base = indexed if indexed and repo.has_object(indexed) else None
    changed, removed = runsref.diff_runs(repo, base, tip)
    bad = {key: tree for key, tree in changed.items() if isinstance(tree, runsref.BadEntry)}
    good = {key: tree for key, tree in changed.items() if key not in bad}
    rows: list[Run | tuple[str, str]] = [(runsref.display_key(key), tree.problem) for key, tree in bad.items()]
    if len(good) > BULK_THRESHOLD:
        contents = runsref.bulk_read_runs(repo, tip, None if base is None else set(good), RUN_FILES)
        rows += [_parse(run_id, contents.get(run_id, {})) for run_id in good]
    else:
        rows += _read_and_parse(repo, good)
    conn.execute("BEGIN IMMEDIATE")
    try:
        if _meta(conn, "tip") != indexed:
            conn.execute("ROLLBACK")
            return False
        if base is None:
            for table in ("runs", "params", "metrics", "tags", "corrupt"):
                conn.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
            # A bulk load is cheaper into bare tables, with the indexes built once afterwards.
            for name in _INDEX_NAMES:
                conn.execute(f"DROP INDEX IF EXISTS {name}")
            _insert(conn, rows)
            for statement in _INDEXES:
                conn.execute(statement)
        else:
            _delete(conn, [runsref.display_key(k) for k in (*changed, *removed)])
            _insert(conn, rows)
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('tip', ?)", (tip or "",))
        conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema', ?)", (INDEX_SCHEMA,))
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    return True


def _read_and_parse(repo: GitRepo, trees: dict[str, str]) -> list[Run | tuple[str, str]]:
    return [(run_id, files.message) if isinstance(files, CorruptRunError) else _parse(run_id, files)
            for run_id, files in runsref.read_runs_or_errors(repo, trees, RUN_FILES).items()]


def _parse(run_id: str, files: dict[str, bytes]) -> Run | tuple[str, str]:
    try:
        return parse_run(run_id, files)
    except CorruptRunError as exc:
        log.warning("%s", exc)
        return run_id, exc.message


def _delete(conn: sqlite3.Connection, ids: list[str]) -> None:
    for start in range(0, len(ids), 500):
        chunk = [(i,) for i in ids[start : start + 500]]
        for table, column in (("runs", "id"), ("params", "run_id"), ("metrics", "run_id"),
                              ("tags", "run_id"), ("corrupt", "run_id")):
            conn.executemany(f"DELETE FROM {table} WHERE {column} = ?", chunk)  # noqa: S608


def _number(value: object) -> float | None:
    if isinstance(value, bool) or value is None:
        return None
    try:
        return float(value)  # params imported as text ("0.01") still compare as numbers
    except (TypeError, ValueError, OverflowError):  # an int past 1e308 is searched as text
        return None


def _text(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


def _insert(conn: sqlite3.Connection, rows: list[Run | tuple[str, str]]) -> None:
    """Insert parsed runs (and corrupt-run notes); a run that cannot be indexed becomes a note.

    The whole batch goes in with one statement per table; only if that fails is it retried run
    by run, so one odd record never keeps the others out of the index.
    """
    conn.execute("SAVEPOINT batch")
    try:
        _insert_batch(conn, rows)
        conn.execute("RELEASE batch")
        return
    except (sqlite3.Error, ValueError, TypeError, OverflowError, UnicodeError):
        conn.execute("ROLLBACK TO batch")
        conn.execute("RELEASE batch")
    for row in rows:
        conn.execute("SAVEPOINT one")
        try:
            _insert_batch(conn, [row])
        except (sqlite3.Error, ValueError, TypeError, OverflowError, UnicodeError) as exc:
            conn.execute("ROLLBACK TO one")
            run_id = row[0] if isinstance(row, tuple) else row.id
            _insert_batch(conn, [(run_id, f"run {run_id} cannot be indexed: {type(exc).__name__}")])
        conn.execute("RELEASE one")


def _insert_batch(conn: sqlite3.Connection, rows: list[Run | tuple[str, str]]) -> None:
    """One statement per table for the whole batch."""
    runs, params, metrics, tags, corrupt = [], [], [], [], []
    for row in rows:
        if isinstance(row, tuple):
            corrupt.append(row)
            continue
        run, source = row, row.source
        runs.append((run.id, run.name, run.experiment, run.status, run.start_time, run.end_time,
                     run.user, source.get("commit") or "", source.get("branch"),
                     int(bool(source.get("dirty"))), json.dumps(run.to_dict(), sort_keys=True),
                     len(run.artifacts)))
        params.extend((run.id, k, _text(v), _number(v)) for k, v in run.params.items())
        for key, value in run.metrics.items():
            info = run.metric_info.get(key, {})
            metrics.append((run.id, key, value, info.get("step"), info.get("timestamp")))
        tags.extend((run.id, k, v) for k, v in run.tags.items())
    conn.executemany("INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", runs)
    conn.executemany("INSERT INTO params VALUES (?,?,?,?)", params)
    conn.executemany("INSERT INTO metrics VALUES (?,?,?,?,?)", metrics)
    conn.executemany("INSERT INTO tags VALUES (?,?,?)", tags)
    conn.executemany("INSERT OR REPLACE INTO corrupt VALUES (?, ?)", corrupt)


def run_from_doc(doc: str) -> Run:
    """A :class:`Run` from the JSON an index row keeps (no history, no patch text)."""
    data = json.loads(doc)
    data["patch"] = None
    data["metrics"] = {k: float(v) for k, v in data["metrics"].items()}
    return Run(**data)


def corrupt_runs(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    return conn.execute("SELECT run_id, message FROM corrupt ORDER BY run_id").fetchall()


def ids_with_prefix(conn: sqlite3.Connection, prefix: str, limit: int = 3) -> list[str]:
    upper = prefix + "g"  # every hex id starting with prefix sorts between prefix and prefix+'g'
    rows = conn.execute(
        "SELECT id FROM runs WHERE id >= ? AND id < ? UNION SELECT run_id FROM corrupt "
        "WHERE run_id >= ? AND run_id < ? LIMIT ?",
        (prefix, upper, prefix, upper, limit),
    ).fetchall()
    return [r[0] for r in rows]


def iter_docs(conn: sqlite3.Connection, sql: str, params: Iterable) -> list[Run]:
    return [run_from_doc(doc) for (doc,) in conn.execute(sql, list(params))]


class Index:
    """The query index of one repository, open and up to date with its runs ref.

    Every SQL statement gitml runs lives in this module: services ask the questions below (a
    :class:`gitml.core.filter.Query` for searches) and get runs or ids back. Open it through
    :attr:`gitml.core.workspace.Workspace.index`, which closes it with the workspace.
    """

    def __init__(self, repo: GitRepo) -> None:
        self.repo = repo
        self._conn = open_index(repo)

    @property
    def conn(self) -> sqlite3.Connection:
        """The connection, brought up to date with the runs ref first (one ref read when it is)."""
        for _ in range(10):
            if _sync(self.repo, self._conn):
                break
        return self._conn

    def close(self) -> None:
        """Close the SQLite connection."""
        self._conn.close()

    def count(self) -> int:
        """How many readable runs the index holds."""
        return self.conn.execute("SELECT count(*) FROM runs").fetchone()[0]

    def ids_with_prefix(self, prefix: str, limit: int = 3) -> list[str]:
        """Up to ``limit`` run ids (readable or corrupt) starting with hex ``prefix``."""
        return ids_with_prefix(self.conn, prefix, limit)

    def corrupt_runs(self) -> list[tuple[str, str]]:
        """``(run id or entry, problem)`` for every entry on the runs ref that cannot be read."""
        return corrupt_runs(self.conn)

    def run_ids_at(self, commits: list[str]) -> set[str]:
        """Ids of the runs (any status) whose source commit is one of ``commits``."""
        found: set[str] = set()
        for start in range(0, len(commits), 500):
            chunk = commits[start:start + 500]
            rows = self.conn.execute(
                f"SELECT id FROM runs WHERE source_commit IN ({','.join('?' * len(chunk))})", chunk)  # noqa: S608
            found.update(r[0] for r in rows)
        return found

    def runs_at(self, commits: list[str], status: str | None = "FINISHED") -> list[Run]:
        """Runs made from any of ``commits`` (with ``status``, unless None), newest end first."""
        runs: list[Run] = []
        for start in range(0, len(commits), 500):
            chunk = commits[start:start + 500]
            sql = f"SELECT doc FROM runs WHERE source_commit IN ({','.join('?' * len(chunk))})"  # noqa: S608
            params: list = list(chunk)
            if status is not None:
                sql += " AND status = ?"
                params.append(status)
            runs += iter_docs(self.conn, sql, params)
        return sorted(runs, key=lambda r: (r.end_time or "", r.id), reverse=True)

    def has_artifacts(self) -> bool:
        """Whether any indexed run records an artifact."""
        return self.conn.execute("SELECT 1 FROM runs WHERE artifacts > 0 LIMIT 1").fetchone() is not None
