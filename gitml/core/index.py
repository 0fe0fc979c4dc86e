"""The query index: ``<git-common-dir>/gitml/index.sqlite``, a cache of the runs ref.

It records the runs-ref tip it reflects. Every query first brings it up to date by diffing the
``runs/`` trees of the indexed tip and the current tip, reading only changed shards and runs.
It is never trusted over the ref: a missing, unreadable or foreign-schema index file, or an
indexed tip that no longer exists, is rebuilt from scratch.

Every SQL statement gitml runs is in this module. Services ask :class:`Index` questions and get
runs or ids back; a search is a :class:`gitml.core.filter.Query` (parsed, checked data) that
:func:`search_statement` turns into one parameterised SELECT. That statement is assembled only
from fixed fragments chosen by the query's structure: every key name and literal a user typed
travels as a bound ``?`` parameter, so no input can change its shape. Within the filter bounds
of :mod:`gitml.core.filter` it also stays inside SQLite's own limits (expression depth 1000, a
parser stack of about 30 nested levels, 32766 bound variables, 1 MB of SQL text): long AND/OR
chains become balanced groups of at most ``_CHUNK`` operands, and a deeply nested filter is
spelled as a list of common table expressions rather than nested parentheses.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import logging
import math
import os
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import NamedTuple

from gitml.core import experiments, runsref
from gitml.core.errors import CorruptRunError, RunNotFoundError
from gitml.core.experiments import Experiment, Written
from gitml.core.filter import TIME_ATTRIBUTES, Condition, Group, Node, Query, SortKey, utc_text
from gitml.core.formats import RUN_FILES, Run, parse_run
from gitml.core.gitrepo import GitRepo
from gitml.core.ids import COMMIT_RE, RUN_ID_RE

INDEX_FILE = "index.sqlite"
INDEX_SCHEMA = "9"
BULK_THRESHOLD = 200  # past this many changed runs, read them with git cat-file --batch
log = logging.getLogger(__name__)

_TABLES = """
CREATE TABLE IF NOT EXISTS meta(key TEXT PRIMARY KEY, value TEXT);
CREATE TABLE IF NOT EXISTS runs(rid INTEGER PRIMARY KEY, id TEXT UNIQUE, name TEXT, experiment TEXT,
    status TEXT, start_time TEXT, end_time TEXT, user TEXT, source_commit TEXT, branch TEXT,
    dirty INTEGER, doc TEXT, artifacts INTEGER);
CREATE TABLE IF NOT EXISTS params(run INTEGER, key TEXT, value TEXT, num REAL);
CREATE TABLE IF NOT EXISTS metrics(run INTEGER, key TEXT, value REAL, step INTEGER, timestamp TEXT);
CREATE TABLE IF NOT EXISTS tags(run INTEGER, key TEXT, value TEXT, num REAL);
CREATE TABLE IF NOT EXISTS datasets(run INTEGER, context TEXT, name TEXT, digest TEXT);
CREATE TABLE IF NOT EXISTS corrupt(run_id TEXT PRIMARY KEY, message TEXT);
CREATE TABLE IF NOT EXISTS experiments(key TEXT PRIMARY KEY, tree TEXT, doc TEXT, problem TEXT);
"""
_INDEX_COLUMNS = {
    "runs_start": "runs(start_time)",
    # MLflow's order of runs (newest first, then id) read off an index, skipped rows included: a
    # page far down a listing reads index entries, not table rows (100,000 runs: 2.5 ms, not 115)
    "runs_start_id": "runs(start_time DESC, id)",
    "runs_commit": "runs(source_commit)",
    "runs_experiment": "runs(experiment)",
    # (key, value, run): a filter's rows of one key read in value order, and a sort by a param
    # or tag walks its values in order (100,000 runs: the first page in 1 ms, not a 70 ms sort)
    "params_value": "params(key, value, run)",
    # (run, key) first: a sort key's or IS NULL's lookup for one run must be a point lookup,
    # not a scan of every run's values for that key (which made search quadratic in the runs).
    "params_run": "params(run, key)",
    "metrics_key": "metrics(key, value)",
    "metrics_run": "metrics(run, key)",
    "tags_value": "tags(key, value, run)",
    "tags_run": "tags(run, key)",
}
_INDEX_NAMES = tuple(_INDEX_COLUMNS)
_OLD_INDEXES = ("params_key", "tags_key")  # replaced by params_value and tags_value; dropped at open
_INDEXES = tuple(f"CREATE INDEX IF NOT EXISTS {n} ON {c}" for n, c in _INDEX_COLUMNS.items())


def index_path(repo: GitRepo) -> Path:
    """Where the repository's index file is: ``<git common dir>/gitml/index.sqlite``."""
    return repo.gitml_dir / INDEX_FILE


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating) an index file at ``path`` with the index's tables; nothing is synced."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = sqlite3.connect(path, timeout=60, isolation_level=None)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.executescript(_TABLES + ";".join(_INDEXES) + "".join(f";DROP INDEX IF EXISTS {n}" for n in _OLD_INDEXES))
    return conn


def _meta(conn: sqlite3.Connection, key: str) -> str | None:
    row = conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
    return row[0] if row else None


def open_index(repo: GitRepo) -> sqlite3.Connection:
    """Open the repository's index file, brought up to date with the runs ref.

    Services use :class:`Index` (``ws.index``), which calls this on its first question.

    Args:
        repo: the open repository.

    Returns:
        The connection; an index file that is unreadable or of another schema is rebuilt.
    """
    path = index_path(repo)
    try:
        conn = connect(path)
        if _meta(conn, "schema") not in (None, INDEX_SCHEMA):
            raise sqlite3.DatabaseError("index schema changed")
    except sqlite3.DatabaseError:
        _remove(path)
        conn = connect(path)
    for _ in range(10):
        if _sync(repo, conn):
            return conn
    return conn


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
            for table in ("runs", "params", "metrics", "tags", "datasets", "corrupt", "experiments"):
                conn.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed table names
            conn.execute("DELETE FROM meta WHERE key = 'experiments_top'")
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


def _top_text(top: tuple[int, str] | None) -> str:
    """An ``experiments`` entry as the meta table keeps it: ``<mode in octal> <sha>``, or ``""``."""
    return "" if top is None else f"{top[0]:o} {top[1]}"


def _top_entry(text: str | None) -> tuple[int, str] | None:
    if not text:
        return None
    mode, _, sha = text.partition(" ")
    return int(mode, 8), sha


_EXPERIMENT_FIELDS = frozenset(Experiment.__dataclass_fields__)


def record_written(repo: GitRepo, parent: str | None, tip: str, runs: Sequence[Run],
                   removed: Sequence[str] = (), experiments: Written | None = None) -> bool:
    """The writer's step: bring an index that reflects ``parent`` to the commit ``tip`` just made.

    A process that commits runs calls this with the commit's parent, the new tip and the runs it
    wrote (as :func:`gitml.core.formats.parse_run` reads them back). When the repository's index
    file exists, has this schema and reflects exactly ``parent``, the runs go in and the index
    moves to ``tip`` in one transaction, so the next search starts from there instead of reading
    the runs again. Otherwise nothing happens: another writer got there first, or nobody has
    searched yet, and the next question catches up from the ref as always. The index stays a
    cache; this never fails the write.

    Args:
        repo: the open repository.
        parent: the runs ref's tip before the commit (None for the first commit).
        tip: the commit just made, whose tree is ``parent``'s plus ``runs`` minus ``removed``.
        runs: the runs the commit added or replaced.
        removed: ids of runs the commit removed.
        experiments: what :func:`gitml.core.experiments.commit_experiments` wrote in the
            commit, when it changed experiment records (they go in too, when the index's
            copy of the records reflects ``parent``'s).

    Returns:
        Whether the index moved to ``tip``.
    """
    path = index_path(repo)
    try:
        inode = path.stat().st_ino
    except OSError:
        return False
    with _writer_lock:
        conn = _writer_connection(path, inode)
        if conn is None:
            return False
        try:
            conn.execute("BEGIN IMMEDIATE")
            if _meta(conn, "schema") != INDEX_SCHEMA or _meta(conn, "tip") != (parent or ""):
                conn.execute("ROLLBACK")
                return False
            _delete(conn, [*[run.id for run in runs], *removed])
            _insert(conn, list(runs))
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('tip', ?)", (tip,))
            if experiments is not None and _meta(conn, "experiments_top") == _top_text(experiments.old_top):
                conn.executemany("INSERT OR REPLACE INTO experiments VALUES (?, ?, ?, NULL)",
                                 [(key, tree, json.dumps(exp.to_dict())) for key, (tree, exp)
                                  in experiments.records.items()])
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('experiments_top', ?)",
                             (_top_text(experiments.new_top),))
            conn.execute("COMMIT")
            return True
        except sqlite3.Error as exc:
            log.debug("index not updated by the writer (the next search catches up): %s", exc)
            _writer_conns.pop(str(path), None)
            try:
                conn.close()
            except sqlite3.Error:
                pass
            return False


# A writing process keeps one connection per index file: closing the last connection to a WAL
# database checkpoints it, which would cost every run a few milliseconds. The key holds the
# process id (a connection never crosses a fork) and the file's inode (a rebuilt index is a new
# file, and the old connection would write into the removed one).
_writer_conns: dict[str, tuple[int, int, sqlite3.Connection]] = {}
_writer_lock = threading.Lock()


def _writer_connection(path: Path, inode: int) -> sqlite3.Connection | None:
    held = _writer_conns.get(str(path))
    if held is not None and held[:2] == (os.getpid(), inode):
        return held[2]
    try:
        conn = sqlite3.connect(path, timeout=5, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA synchronous=NORMAL")  # a cache: no fsync per write, as connect() does
    except sqlite3.Error:
        return None
    _writer_conns[str(path)] = (os.getpid(), inode, conn)
    return conn


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
        for table in ("params", "metrics", "tags", "datasets"):
            conn.executemany(f"DELETE FROM {table} WHERE run = (SELECT rid FROM runs WHERE id = ?)", chunk)  # noqa: S608
        conn.executemany("DELETE FROM runs WHERE id = ?", chunk)
        conn.executemany("DELETE FROM corrupt WHERE run_id = ?", chunk)


# A value is "plainly a number" when its text is digits with an optional sign, point and exponent:
# no spaces, no 1_000, no 0x10, no inf or nan. Only those take part in numeric comparisons of
# params and tags, so text never matches a number by accident of Python's float().
_PLAIN_NUMBER = re.compile(r"[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")


def _number(text: str) -> float | None:
    """The number a param or tag value compares as, or None to compare it as text only.

    Args:
        text: the value as searches see it (:func:`search_text`).

    Returns:
        The float, when ``text`` is plainly a number (``200``, ``-0.5``, ``1e-3``, ``+7``); None
        for anything else (``' 3'``, ``1_000``, ``0x10``, ``inf``, ``True``), and for a number
        too large for a float.
    """
    if not _PLAIN_NUMBER.fullmatch(text):
        return None
    number = float(text)
    return number if math.isfinite(number) else None


def _search_number(value: float) -> float:
    """A metric as searches compare it: MLflow's database stores keep ±inf as ±1.7976931348623157e308.

    (NaN goes in as is and SQLite stores it as NULL, which every comparison but ``!=`` fails.)
    """
    return math.copysign(_FLOAT_MAX, value) if math.isinf(value) else value


_FLOAT_MAX = 1.7976931348623157e308


def search_text(value: object) -> str:
    """A param's value as searches compare it: the text MLflow stores, ``str()`` of what was logged.

    ``True`` is ``'True'``, ``None`` is ``'None'``, ``0.001`` is ``'0.001'`` and ``1e-05`` is
    ``'1e-05'`` (Python's ``str``, as ``mlflow.log_param`` stores them); ``gitml runs show`` may
    still show a value as YAML writes it (``true``, ``null``).
    """
    return str(value)


def _system_tags(run: Run, source: dict) -> dict[str, str]:
    """MLflow's system tags for a gitml run, as searches see them.

    MLflow keeps a run's name, user, source commit and description as the tags
    ``mlflow.runName``, ``mlflow.user``, ``mlflow.source.git.commit`` and ``mlflow.note.content``,
    and users filter and sort by them. A tag the run set itself wins.
    """
    tags = {"mlflow.runName": run.name, "mlflow.user": run.user,
            "mlflow.source.git.commit": source.get("commit") or None, "mlflow.note.content": run.description}
    return {k: v for k, v in tags.items() if v is not None and k not in run.tags}


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
    """One statement per table for the whole batch.

    Params, metrics and tags name their run by its ``rid``, the runs row's integer key, given
    here in sequence after the largest in use (the caller holds the write transaction).
    """
    runs, params, metrics, tags, datasets, corrupt = [], [], [], [], [], []
    rid = conn.execute("SELECT coalesce(max(rid), 0) FROM runs").fetchone()[0]
    for row in rows:
        if isinstance(row, tuple):
            corrupt.append(row)
            continue
        run, source = row, row.source
        rid += 1
        # As in MLflow, a run's mlflow.runName tag is its name (gitml takes it as the name when
        # it can; a record that keeps the tag is searched by it).
        runs.append((rid, run.id, run.tags.get("mlflow.runName", run.name), run.experiment, run.status,
                     run.start_time, run.end_time, run.user,
                     source.get("commit") or "", source.get("branch"),
                     int(bool(source.get("dirty"))), _doc(run),
                     len(run.artifacts)))
        for key, value in run.params.items():
            text = search_text(value)
            params.append((rid, key, text, _number(text)))
        for key, value in run.metrics.items():
            info = run.metric_info.get(key, {})
            metrics.append((rid, key, _search_number(value), info.get("step"), info.get("timestamp")))
        tags.extend((rid, k, v, _number(v)) for k, v in {**run.tags, **_system_tags(run, source)}.items())
        datasets.extend((rid, context, name, entry.get("digest")) for context, named in run.inputs.items()
                        for name, entry in named.items())
    conn.executemany("INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)", runs)
    conn.executemany("INSERT INTO params VALUES (?,?,?,?)", params)
    conn.executemany("INSERT INTO metrics VALUES (?,?,?,?,?)", metrics)
    conn.executemany("INSERT INTO tags VALUES (?,?,?,?)", tags)
    if datasets:
        conn.executemany("INSERT INTO datasets VALUES (?,?,?,?)", datasets)
    conn.executemany("INSERT OR REPLACE INTO corrupt VALUES (?, ?)", corrupt)


def _doc(run: Run) -> str:
    """The JSON an index row keeps: ``Run.to_dict``, with params as they are.

    A NaN or infinite float param is written as JSON's ``NaN``/``Infinity`` and comes back a
    float, not the text ``to_dict`` shows for it.
    """
    data = run.to_dict()
    data["params"] = run.params
    return json.dumps(data, sort_keys=True)


def _doc_fields(doc: str) -> dict:
    """The fields of a :class:`Run` from the JSON an index row keeps (no history, no patch text)."""
    data = json.loads(doc)
    data["patch"] = None
    data["metrics"] = {k: float(v) for k, v in data["metrics"].items()}
    return data


def run_from_doc(doc: str) -> Run:
    """A :class:`Run` from the JSON an index row keeps (no history, no patch text)."""
    return Run(**_doc_fields(doc))


# What a search reads is the ids it finds, in order; a run's fields come from its JSON document
# on first use, fetched in chunks of this many neighbours in the result.
_COMPARED = tuple(f.name for f in dataclasses.fields(Run) if f.compare)
_FIELDS = frozenset(f.name for f in dataclasses.fields(Run))
_DOC_CHUNK = 256


class _Documents:
    """Where the runs of one search result fetch their JSON documents, when first read.

    The search answered from the index at runs-ref tip ``tip``. A document is read from the
    index file in a chunk with its neighbours in the result, inside one read transaction that
    also checks the index is still at ``tip``; when it is not (another process moved it on, or
    rebuilt the file), the chunk's runs are read from the runs ref at ``tip`` instead. Either
    way a result shows the runs as they were when the search ran. A run whose source commit
    is not in the repository (rebased away, say) gets ``source["commit_missing"] = True``.
    """

    def __init__(self, index_file: Path, root: Path, tip: str, ids: list[str]) -> None:
        self.index_file, self.root, self.tip, self.ids = index_file, root, tip, ids
        self.position = {run_id: n for n, run_id in enumerate(ids)}
        self.fetched: dict[str, dict] = {}
        self.lock = threading.Lock()

    def fields(self, run_id: str) -> dict:
        """The decoded document of run ``run_id`` of this result (read once; kept by the run)."""
        with self.lock:
            if run_id not in self.fetched:
                first = self.position[run_id] // _DOC_CHUNK * _DOC_CHUNK
                self._fetch(self.ids[first:first + _DOC_CHUNK])
            return self.fetched.pop(run_id)

    def _fetch(self, ids: list[str]) -> None:
        wanted = set(ids) - set(self.fetched)
        self._read(wanted)
        sources = [fields["source"] for run_id in ids if (fields := self.fetched.get(run_id))]
        if any(_commit_of(source) for source in sources):
            present: dict[str, bool] = {}
            with GitRepo(self.root) as repo:
                for source in sources:
                    _mark_missing(repo, source, present)

    def _read(self, wanted: set[str]) -> None:
        try:
            conn = sqlite3.connect(f"file:{self.index_file}?mode=ro", uri=True, timeout=5, isolation_level=None)
            try:
                conn.execute("BEGIN")
                if _meta(conn, "tip") == self.tip:
                    rows = conn.execute(f"SELECT id, doc FROM runs WHERE id IN ({_marks(list(wanted))})",  # noqa: S608
                                        list(wanted)).fetchall()
                    self.fetched.update((run_id, _doc_fields(doc)) for run_id, doc in rows)
                    wanted -= {run_id for run_id, _ in rows}
                conn.execute("COMMIT")
            finally:
                conn.close()
        except sqlite3.Error as exc:
            log.debug("search result read from the runs ref: %s", exc)
        if wanted:
            self._from_ref(wanted)

    def _from_ref(self, ids: set[str]) -> None:
        with GitRepo(self.root) as repo:
            try:
                trees = runsref.run_trees(repo, self.tip or None, ids)
            except KeyError:  # the tip itself was pruned (the ref deleted, then gc)
                trees = {}
            for run_id, files in runsref.read_runs_or_errors(repo, trees, RUN_FILES).items():
                if not isinstance(files, CorruptRunError):
                    run = _parse(run_id, files)
                    if isinstance(run, Run):
                        self.fetched[run_id] = _doc_fields(_doc(run))
        for run_id in ids - set(self.fetched):  # gone from the ref's history: cannot happen in git
            raise RunNotFoundError(f"run {run_id} is no longer readable at {self.tip[:12]}")


def _commit_of(source: object) -> str | None:
    """A record's source commit when it names one (a full sha), else None."""
    commit = source.get("commit") if isinstance(source, dict) else None
    return commit if isinstance(commit, str) and COMMIT_RE.match(commit) else None


def _mark_missing(repo: GitRepo, source: dict, present: dict[str, bool]) -> None:
    """Set ``source["commit_missing"]`` when its commit is not in ``repo`` (``present`` caches)."""
    commit = _commit_of(source)
    if commit is None:
        return
    if commit not in present:
        present[commit] = repo.has_object(commit)
    if not present[commit]:
        source["commit_missing"] = True


class IndexedRun(Run):
    """A :class:`Run` found by a search of the query index, its document decoded on first use.

    A search that matches thousands of runs hands them back at the cost of its SQL: the id is
    set at once, and the first read of any other field fetches and decodes the run's document,
    with those of its neighbours in the result. It is a :class:`Run` in every other way, shows the run as it
    was when the search ran, and compares equal to a :class:`Run` with the same fields.
    """

    def __getattribute__(self, name: str):
        """A field not decoded yet is fetched, even one whose class default would answer (None)."""
        if name in _FIELDS:
            state = object.__getattribute__(self, "__dict__")
            if name not in state and "_documents" in state:
                return self.__getattr__(name)
        return object.__getattribute__(self, name)

    def __getattr__(self, name: str):
        """Fetch and decode the document on the first read of a field the row did not carry."""
        state = self.__dict__
        source = state.get("_documents")
        if source is None or name.startswith("__"):
            raise AttributeError(name)
        fields = source.fields(state["id"])  # may raise: the run stays readable for a retry
        del state["_documents"]
        for key, value in fields.items():
            state.setdefault(key, value)
        state.setdefault("history", None)
        state.setdefault("full_history", None)
        state.setdefault("warnings", [])
        return getattr(self, name)

    def __eq__(self, other: object) -> bool:
        """Field by field, as a dataclass compares, with any :class:`Run`."""
        if not isinstance(other, Run):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in _COMPARED)

    __hash__ = None  # mutable, like Run

    def __getstate__(self) -> dict:
        """Pickled (or deep-copied) whole: the document is read first."""
        if "_documents" in self.__dict__:
            self.__getattr__("params")
        return self.__dict__


def _docs(conn: sqlite3.Connection, sql: str, params: Iterable) -> list[Run]:
    return [run_from_doc(doc) for (doc,) in conn.execute(sql, list(params))]


def _lazy_runs(conn: sqlite3.Connection, find: Callable[[], list[str]], repo: GitRepo) -> list[Run]:
    """The runs whose ids ``find`` reads from the index, as :class:`IndexedRun` s of one result."""
    conn.execute("BEGIN")  # the ids and the tip they reflect, read together
    try:
        tip = _meta(conn, "tip") or ""
        ids = find()
    finally:
        conn.execute("COMMIT")
    documents = _Documents(index_path(repo), repo.root, tip, ids)
    runs: list[Run] = []
    new = object.__new__
    for run_id in ids:
        run = new(IndexedRun)
        run.__dict__.update(id=run_id, _documents=documents)
        runs.append(run)
    return runs


def corrupt_runs(conn: sqlite3.Connection) -> list[tuple[str, str]]:
    """``(run id or entry, problem)`` for every entry the index could not read, by id."""
    return conn.execute("SELECT run_id, message FROM corrupt ORDER BY run_id").fetchall()


def ids_with_prefix(conn: sqlite3.Connection, prefix: str, limit: int = 3) -> list[str]:
    """Up to ``limit`` run ids (readable or corrupt) starting with hex ``prefix``."""
    upper = prefix + "g"  # every hex id starting with prefix sorts between prefix and prefix+'g'
    rows = conn.execute(
        "SELECT id FROM runs WHERE id >= ? AND id < ? UNION SELECT run_id FROM corrupt "
        "WHERE run_id >= ? AND run_id < ? LIMIT ?",
        (prefix, upper, prefix, upper, limit),
    ).fetchall()
    return [r[0] for r in rows]


# -- searches: a filter.Query as SQL ---------------------------------------------------------------

# Operands per SQL AND/OR group: a left-deep chain of n operands is n deep in SQLite's expression
# tree, so longer chains are split into balanced groups.
_CHUNK = 64
# Filters whose SQL would nest parentheses deeper than this use common table expressions instead
# (SQLite 3.45 and older overflow their parser stack at about 30 levels).
_INLINE_NESTING = 4
# Most SELECTs joined by one UNION/INTERSECT in the SQL for a deeply nested filter.
_COMPOUND = 256
#: The ``runs`` column of each attribute a filter names (see gitml.core.filter.ATTRIBUTES).
_ATTRIBUTE_COLUMNS = {
    "id": "id", "name": "name", "experiment": "experiment", "status": "status",
    "start_time": "start_time", "end_time": "end_time", "user": "user", "branch": "branch",
    "commit": "source_commit", "dirty": "dirty", "artifact_uri": "'runs:/' || r.id",
}  # fmt: skip
# The table (and its alias) holding each kind of key.
_KEY_TABLES = {"metric": ("metrics", "m"), "param": ("params", "p"), "tag": ("tags", "t")}
# GLOB has no escape character; a bracket class holding one character matches it literally.
_GLOB_LITERAL = {"*": "[*]", "?": "[?]", "[": "[[]"}
# MLflow's order for runs that tie on every sort key (and with none): newest start first, then id.
_TIE_ORDER = "r.start_time DESC, r.id"
# A time already in the records' form (UTC, milliseconds, Z) compares as it is; any other ISO 8601
# text (a hand-made record, say) is first rewritten into it by the SQL function gitml_utc.
_RECORD_TIME = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]T[0-9][0-9]:[0-9][0-9]:[0-9][0-9].[0-9][0-9][0-9]Z"


def _utc_column(column: str) -> str:
    """SQL for a time column as record text (NULL when the stored text is not a time)."""
    return f"(CASE WHEN {column} GLOB '{_RECORD_TIME}' THEN {column} ELSE gitml_utc({column}) END)"


def add_functions(conn: sqlite3.Connection) -> None:
    """Give a connection the SQL functions search statements use (``gitml_utc``)."""
    conn.create_function("gitml_utc", 1, utc_text, deterministic=True)


class _Sql(NamedTuple):
    """A piece of SQL with ``?`` placeholders, and their values in order."""

    sql: str
    params: list


def _marks(values: list) -> str:
    return ", ".join("?" * len(values))


def _like_to_glob(pattern: str) -> str:
    """A LIKE pattern as a GLOB one: ``%`` any run of characters, ``_`` one, everything else itself.

    As in MLflow's stores, there is no escape character: a backslash is a backslash.
    """
    return "".join({"%": "*", "_": "?"}.get(c) or _GLOB_LITERAL.get(c, c) for c in pattern)


def _column(name: str) -> str:
    """SQL for an attribute's value (a ``runs`` column, ``r`` aliased)."""
    column = _ATTRIBUTE_COLUMNS[name]
    return column if column.startswith("'") else f"r.{column}"


def _presence(cond: Condition) -> _Sql:
    """``IS [NOT] NULL``: whether the run has the key (an attribute: whether it is set)."""
    if cond.field == "attr":
        return _Sql(f"{_column(cond.name)} IS {'NOT ' if cond.negate else ''}NULL", [])
    table, a = _KEY_TABLES[cond.field]
    exists = f"EXISTS (SELECT 1 FROM {table} {a} WHERE {a}.run = r.rid AND {a}.key = ?)"
    return _Sql(exists if cond.negate else "NOT " + exists, [cond.name])


def _dataset_condition(cond: Condition) -> _Sql:
    """``datasets.name|digest|context OP value``: the run read some dataset for which it holds.

    As in MLflow's stores, a run matches when any one of its datasets does (``!=`` and the
    ``NOT`` forms too: some dataset of the run differs); a run without datasets never matches.
    """
    column = {"name": "d.name", "digest": "d.digest", "context": "d.context"}[cond.name.lower()]
    values = [str(value.value) for value in cond.values]
    if cond.op == "IN":
        test = f"{column} IN ({_marks(values)})"
    elif cond.op == "LIKE":
        test, values = f"{column} GLOB ?", [_like_to_glob(values[0])]  # case-sensitive, as for tags
    elif cond.op == "ILIKE":
        test = f"lower({column}) LIKE lower(?)"
    else:
        test = f"{column} {cond.op} ?"
    if cond.negate:
        test = f"NOT ({test})"
    return _Sql(f"EXISTS (SELECT 1 FROM datasets d WHERE d.run = r.rid AND {test})", values)


def _condition(cond: Condition) -> _Sql:
    """The SQL for one comparison; a run lacking the key never matches (unless ``IS NULL``).

    Comparisons are MLflow's: params and tags compare as text (their ``value`` column holds the
    text MLflow stores), metrics as numbers, with a NaN metric (stored as NULL) matching ``!=``
    only, and LIKE is case-sensitive. gitml's extensions: a number compared with a param or a
    tag matches the values that are plainly that number (``num``) or spelled as typed.
    """
    if cond.op == "NULL":
        return _presence(cond)
    if cond.field == "dataset":
        return _dataset_condition(cond)
    kind, op, values, negate = cond.field, cond.op, cond.values, cond.negate
    is_dirty = kind == "attr" and cond.name == "dirty"
    table_alias = _KEY_TABLES.get(kind)
    numeric_text = kind in ("param", "tag")
    col = f"{table_alias[1]}.value" if table_alias else _column(cond.name)
    num = f"{table_alias[1]}.num" if numeric_text else None
    if kind == "attr" and cond.name in TIME_ATTRIBUTES and op not in ("LIKE", "ILIKE"):
        col = _utc_column(col)  # the literals are record text too (filter.Value kind "time")
    args: list = []

    def bind(lit) -> object:
        # Text keys match a number by the digits typed; dirty is stored as 0/1.
        if is_dirty or kind == "metric":
            return int(lit.value) if is_dirty else lit.value
        return lit.value if lit.kind in ("str", "time") else lit.text

    if op == "LIKE":
        args.append(_like_to_glob(values[0].value))
        pred = f"{col} GLOB ?"  # sqlite's LIKE ignores ASCII case; GLOB does not
    elif op == "ILIKE":
        args.append(values[0].value)
        pred = f"lower({col}) LIKE lower(?)"  # no ESCAPE: as in MLflow, a backslash is itself
    elif op in ("=", "!=", "IN"):
        negate = negate != (op == "!=")
        texts = [bind(lit) for lit in values]
        nums = [lit.value for lit in values if numeric_text and lit.kind == "num"]
        args.extend(texts)
        # One SQL IN per column keeps a long list one node deep.
        pred = f"{col} IN ({_marks(texts)})"
        if nums:
            # coalesce: a value that is not a number has no num, and NOT IN must still match it.
            args.extend(nums)
            pred = f"({pred} OR coalesce({num} IN ({_marks(nums)}), 0))"
        if kind == "metric":
            pred = f"coalesce({pred}, 0)"  # a NaN metric is none of the values, so != matches it
    elif numeric_text and values[0].kind == "num":
        args.append(values[0].value)
        pred = f"{num} {op} ?"
    else:
        args.append(bind(values[0]))
        pred = f"{col} {op} ?"
    if negate:
        pred = f"NOT ({pred})"
    if kind == "attr":
        # A NULL column makes the predicate NULL, which never matches: "missing never matches".
        return _Sql(f"({pred})", args)
    table, a = table_alias
    # Not correlated with r: SQLite makes the set of matching run ids once (reading that key's
    # rows through the (key, run_id) index) and probes it per run, so a selective filter costs
    # the rows of one key, not a lookup per run.
    return _Sql(f"r.rid IN (SELECT {a}.run FROM {table} {a} WHERE {a}.key = ? AND {pred})",
                [cond.name, *args])


def _matching_rows(cond: Condition) -> _Sql | None:
    """``SELECT <run> FROM …``: the runs one metric, param or tag comparison matches, read off its key's rows.

    None for a comparison of an attribute or a dataset, and for ``IS [NOT] NULL``.
    """
    if cond.field not in _KEY_TABLES or cond.op == "NULL":
        return None
    sql = _condition(cond)
    return _Sql(sql.sql.removeprefix("r.rid IN (").removesuffix(")"), sql.params)


def _join(parts: list[_Sql], joiner: str) -> _Sql:
    """Join operands with AND/OR, in balanced groups of at most :data:`_CHUNK`."""
    while len(parts) > _CHUNK:
        parts = [_join(parts[i : i + _CHUNK], joiner) for i in range(0, len(parts), _CHUNK)]
    sql = "(" + f" {joiner} ".join(p.sql for p in parts) + ")"
    return _Sql(sql, [value for p in parts for value in p.params])


def _nesting(node: Node) -> int:
    """How deep the inline SQL for ``node`` nests parentheses (conditions count as 0)."""
    if isinstance(node, Condition):
        return 0
    extra, n = 0, len(node.parts)
    while n > _CHUNK:
        extra, n = extra + 1, -(-n // _CHUNK)
    return 1 + extra + max(_nesting(p) for p in node.parts)


def _inline(node: Node) -> _Sql:
    if isinstance(node, Condition):
        return _condition(node)
    return _join([_inline(p) for p in node.parts], node.joiner)


def _hoisted(root: Group) -> _Sql:
    """SQL for a deeply nested filter, which nests no deeper than one group.

    Each group becomes a common table expression listing its runs: the runs its own conditions
    select, INTERSECT (for AND) or UNION (for OR) the tables of its inner groups. SQLite adds up
    the expression depth of subqueries nested in expressions, not of tables read in FROM, so the
    depth no longer grows with the nesting. (A group's runs are a set, without SQL's NULL; since
    the grammar has no NOT over a group, a NULL never matched anyway.)
    """
    ctes: list[_Sql] = []

    def define(select: _Sql) -> str:
        name = f"g{len(ctes) + 1}"
        ctes.append(_Sql(f"{name}(id) AS ({select.sql})", select.params))
        return name

    def compound(joiner: str, conditions: list[_Sql], names: list[str]) -> _Sql:
        selects = [_Sql(f"SELECT id FROM {name}", []) for name in names]
        if conditions:
            where = _join(conditions, joiner)
            selects.insert(0, _Sql(f"SELECT r.id FROM runs r WHERE {where.sql}", where.params))
        sql = (" INTERSECT " if joiner == "AND" else " UNION ").join(s.sql for s in selects)
        return _Sql(sql, [value for s in selects for value in s.params])

    def hoist(group: Group) -> str:
        conditions = [_condition(p) for p in group.parts if isinstance(p, Condition)]
        names = [hoist(p) for p in group.parts if isinstance(p, Group)]
        while len(names) > _COMPOUND:  # SQLite allows 500 SELECTs in one compound
            chunks = [names[i : i + _COMPOUND] for i in range(0, len(names), _COMPOUND)]
            names = [define(compound(group.joiner, [], chunk)) for chunk in chunks]
        return define(compound(group.joiner, conditions, names))

    top = hoist(root)
    sql = f"r.id IN (WITH {', '.join(c.sql for c in ctes)} SELECT id FROM {top})"
    return _Sql(sql, [value for c in ctes for value in c.params])


def filter_sql(where: Node | None) -> tuple[str, list]:
    """The SQL condition a search uses for a parsed filter.

    Args:
        where: a filter from :func:`gitml.core.filter.parse_filter` (None: every run).

    Returns:
        ``(sql, params)``: a boolean expression over the ``runs`` table aliased ``r`` (it may
        read ``runs`` again) and the values of its ``?`` placeholders; ``("1", [])`` for None.
        A comparison of ``start_time`` or ``end_time`` calls the SQL function ``gitml_utc``,
        which :func:`add_functions` gives a connection.
    """
    if where is None:
        return "1", []
    sql = _inline(where) if _nesting(where) <= _INLINE_NESTING else _hoisted(where)
    return sql.sql, sql.params


def _sort_terms(key: SortKey, alias: str | None) -> tuple[str, _Sql]:
    """The join and ORDER BY terms of one sort key, MLflow's way.

    Runs lacking the key come last in either direction, and a NaN metric just before them;
    params and tags sort as text (code point order), or with ``NUMERIC`` the plain numbers by
    value first, then the rest as text. A metric, param or tag key is read through one LEFT
    JOIN named ``alias`` (a run has at most one row per key): one index seek per run. With
    ``alias`` None (past SQLite's limit on joined tables) each term reads it with a correlated
    subquery instead.

    Returns:
        ``(join, terms)``: the join clause ("" for none) and the ORDER BY terms, whose
        ``params`` are the join's values followed by the terms' own.
    """
    direction = "DESC" if key.descending else "ASC"
    if key.field == "attr":
        column = _column(key.name)
        value = _utc_column(column) if key.name in TIME_ATTRIBUTES else column
        return "", _Sql(f"{value} IS NULL, {value} {direction}", [])
    table, a = _KEY_TABLES[key.field]
    if alias is not None:
        join = f" LEFT JOIN {table} {alias} ON {alias}.run = r.rid AND {alias}.key = ?"
        rank = f"CASE WHEN {alias}.run IS NULL THEN 2 WHEN {alias}.{{}} IS NULL THEN 1 ELSE 0 END"
        value, number, params = f"{alias}.value", f"{alias}.num", [key.name]
    else:
        join = ""
        pick = f"(SELECT {a}.{{}} FROM {table} {a} WHERE {a}.run = r.rid AND {a}.key = ?)"
        rank = f"coalesce({pick.replace('{}', '{} IS NULL')}, 2)"
        value, number, params = pick.format("value"), pick.format("num"), []
    if key.field == "metric":
        # 0 a number, 1 NaN (stored as NULL), 2 no such metric.
        extra = [] if alias else [key.name] * 2
        return join, _Sql(f"{rank.format('value')}, {value} {direction}", params + extra)
    if key.numeric:
        # 0 plainly a number, 1 other text, 2 no such key.
        extra = [] if alias else [key.name] * 3
        return join, _Sql(f"{rank.format('num')}, {number} {direction}, {value} {direction}", params + extra)
    extra = [] if alias else [key.name] * 2
    return join, _Sql(f"{value} IS NULL, {value} {direction}", params + extra)


_MAX_SORT_JOINS = 32  # SQLite joins at most 64 tables; the keys past this use subqueries


class OrderSql(NamedTuple):
    """What a search's sort keys add to its SELECT: joins (with their values) and the ORDER BY."""

    joins: str
    join_params: list
    body: str
    body_params: list


def order_sql(keys: Sequence[SortKey], first_alias: int = 0) -> OrderSql:
    """The joins and ORDER BY body (without those words) a search uses for parsed sort keys.

    Runs lacking a key sort after the others in both directions (a NaN metric just before
    them); runs that tie on every key come newest first, then by id, as in MLflow. No keys:
    ``OrderSql("", [], "r.start_time DESC, r.id", [])``, newest first. The joins are aliased
    ``s<first_alias>``, ``s<first_alias + 1>`` and on.
    """
    joins: list[str] = []
    terms: list[str] = []
    params: list = []
    join_params: list = []
    for key in keys:
        alias = f"s{first_alias + len(joins)}" if len(joins) < _MAX_SORT_JOINS else None
        join, sql = _sort_terms(key, alias)
        if join:
            joins.append(join)
            join_params.append(sql.params[0])
            params.extend(sql.params[1:])
        else:
            params.extend(sql.params)
        terms.append(sql.sql)
    return OrderSql("".join(joins), join_params, ", ".join([*terms, _TIE_ORDER]), params)


def search_statement(query: Query, column: str = "doc") -> tuple[str, list]:
    """The one SELECT (and its parameters) that runs ``query``.

    Args:
        query: from :func:`gitml.core.filter.compile_query`.
        column: what each row holds: ``"doc"`` (the run as JSON) or ``"id"``.

    Returns:
        ``(sql, params)``.

    Raises:
        ValueError: ``column`` is neither (a bug in the caller, never user input).
    """
    if column not in ("doc", "id"):
        raise ValueError(f"column must be 'doc' or 'id', not {column!r}")
    selected = f"r.{column}"
    where, where_params = filter_sql(query.where)
    clauses = [f"({where})"]
    if query.experiments:
        clauses.append(f"r.experiment IN ({_marks(list(query.experiments))})")
        where_params = [*where_params, *query.experiments]
    order = order_sql(query.order)
    sql = (f"SELECT {selected} FROM runs r{order.joins} WHERE {' AND '.join(clauses)} "  # noqa: S608
           f"ORDER BY {order.body}")
    params = [*order.join_params, *where_params, *order.body_params]
    if query.limit is not None or query.offset:
        sql += " LIMIT ?"
        params.append(-1 if query.limit is None else int(query.limit))
    if query.offset:
        sql += " OFFSET ?"
        params.append(int(query.offset))
    return sql, params


_SEGMENT_FILTERED_OFFSET = 1_000


class _Segment(NamedTuple):
    """One part of a sorted search: its runs in order, and how to count them."""

    select: str  # SELECT <column> FROM … WHERE …, without ORDER BY
    params: list
    order: str  # the ORDER BY body
    order_params: list


def _segments(query: Query, column: str) -> list[_Segment] | None:
    """A search sorted first by a metric, param or tag, as consecutive statements; None for other searches.

    One statement sorts every run by a key with a LEFT JOIN and a rank (number, NaN or plain
    text, missing), which SQLite cannot read off an index: 100,000 runs cost a full sort (about
    400 ms) for any page. Split by that rank, the first part is a join driven by the key's
    ``(key, value)`` index in the key's order, so a page of the runs that have the key reads
    about as many index entries as it shows (under 1 ms), and the parts after it (NaN, text,
    then runs without the key, each newest first) are read only when the page reaches them.
    The parts in turn give exactly the single statement's order.

    A filtered search far down its matches (offset past :data:`_SEGMENT_FILTERED_OFFSET`) is
    left to the one statement: there the walk in key order looks up every skipped run's row to
    test the filter, which costs more than the sort (100,000 runs, half matching, offset 49,850:
    350 ms against 200).
    """
    if not query.order or query.order[0].field == "attr":
        return None
    if query.where is not None and (query.offset or 0) > _SEGMENT_FILTERED_OFFSET:
        return None
    first, rest = query.order[0], query.order[1:]
    table, _ = _KEY_TABLES[first.field]
    direction = "DESC" if first.descending else "ASC"
    rest_order = order_sql(rest, first_alias=1)
    where, where_params = filter_sql(query.where)
    clauses = [f"({where})"]
    if query.experiments:
        clauses.append(f"r.experiment IN ({_marks(list(query.experiments))})")
        where_params = [*where_params, *query.experiments]
    has = f"FROM {table} s0 JOIN runs r ON r.rid = s0.run{rest_order.joins} WHERE s0.key = ? AND "
    lacks = (f"FROM runs r{rest_order.joins} WHERE NOT EXISTS (SELECT 1 FROM {table} x "
             "WHERE x.run = r.rid AND x.key = ?) AND ")
    if first.field == "metric":  # numbers, then NaN (stored as NULL)
        parts = [(has + "s0.value IS NOT NULL", f"s0.value {direction}, "), (has + "s0.value IS NULL", "")]
    elif first.numeric:  # plain numbers by value, then other text
        parts = [(has + "s0.num IS NOT NULL", f"s0.num {direction}, s0.value {direction}, "),
                 (has + "s0.num IS NULL", f"s0.value {direction}, ")]
    else:
        parts = [(has + "1", f"s0.value {direction}, ")]
    parts.append((lacks + "1", ""))
    out = []
    for body, lead in parts:
        params = [*rest_order.join_params, first.name, *where_params]  # as their marks come in the text
        select = f"SELECT r.{column} {body} AND {' AND '.join(clauses)}"
        out.append(_Segment(select, params, lead + rest_order.body, list(rest_order.body_params)))
    return out


def _paged(conn: sqlite3.Connection, query: Query, column: str) -> list:
    """The ``column`` values of the runs ``query`` finds, in its order, its limit and offset applied."""
    segments = _segments(query, column)
    if segments is None:
        return [row[0] for row in conn.execute(*search_statement(query, column))]
    out: list = []
    offset = int(query.offset or 0)
    for part in segments:
        want = -1 if query.limit is None else int(query.limit) - len(out)
        rows = conn.execute(f"{part.select} ORDER BY {part.order} LIMIT ? OFFSET ?",  # noqa: S608
                            [*part.params, *part.order_params, want, offset]).fetchall()
        out.extend(row[0] for row in rows)
        if query.limit is not None and len(out) >= query.limit:
            break
        if rows or not offset:
            offset = 0
        else:  # the whole part lies before the page: skip it
            offset -= conn.execute(f"SELECT count(*) FROM ({part.select})", part.params).fetchone()[0]  # noqa: S608
            offset = max(offset, 0)
    return out


def count_matching(conn: sqlite3.Connection, query: Query, cap: int | None = None) -> int:
    """How many runs ``query`` finds, its limit and offset aside; counting stops at ``cap`` when given.

    A filter of one metric, param or tag comparison over every experiment is counted off that
    key's own rows, so a cap stops the count early (100,000 runs, half matching: 2 ms, not 80).
    """
    add_functions(conn)
    rows = _matching_rows(query.where) if isinstance(query.where, Condition) and not query.experiments else None
    if rows is not None:
        # DISTINCT: a key has one row a run, but the count must not depend on it
        sql = f"SELECT DISTINCT * FROM ({rows.sql})"
        params = list(rows.params)
        if cap is not None:
            sql += " LIMIT ?"
            params.append(int(cap))
        return conn.execute(f"SELECT count(*) FROM ({sql})", params).fetchone()[0]  # noqa: S608
    where, params = filter_sql(query.where)
    sql = f"SELECT 1 FROM runs r WHERE ({where})"  # noqa: S608 - built from the checked query
    if query.experiments:
        sql += f" AND r.experiment IN ({_marks(list(query.experiments))})"
        params = [*params, *query.experiments]
    if cap is not None:
        sql += " LIMIT ?"
        params = [*params, int(cap)]
    return conn.execute(f"SELECT count(*) FROM ({sql})", params).fetchone()[0]  # noqa: S608


def search(conn: sqlite3.Connection, query: Query, repo: GitRepo) -> list[Run]:
    """The runs ``query`` finds in an open index, in its order (no history or patch text).

    Args:
        conn: the open index.
        query: from :func:`gitml.core.filter.compile_query`.
        repo: the repository the index is of; runs whose source commit it lacks are marked
            ``source["commit_missing"]``.

    Returns:
        :class:`IndexedRun` s, each decoding its document on first use.
    """
    add_functions(conn)
    return _lazy_runs(conn, lambda: _paged(conn, query, "id"), repo)


def search_ids(conn: sqlite3.Connection, query: Query) -> list[str]:
    """The ids of the runs ``query`` finds in an open index, in its order."""
    add_functions(conn)
    return _paged(conn, query, "id")


# -- keys a query names that no run has --------------------------------------------------------------

_KIND_WORDS = {"metric": "metric", "param": "param", "tag": "tag"}
_KEY_PREFIXES = {"metric": "metrics", "param": "params", "tag": "tags"}
_PLAIN_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-/:]*")
_MAX_SUGGESTED_FROM = 10_000  # distinct keys read to suggest a name; each read is one index seek


def _named_keys(query: Query) -> list[tuple[str, str]]:
    """``(field, name)`` of every metric, param and tag the query names, first mention first."""
    found: dict[tuple[str, str], None] = {}
    stack: list[Node] = [query.where] if query.where is not None else []
    while stack:
        node = stack.pop()
        if isinstance(node, Group):
            stack.extend(reversed(node.parts))
        elif node.field in _KEY_TABLES:
            found.setdefault((node.field, node.name))
    for key in query.order:
        if key.field in _KEY_TABLES:
            found.setdefault((key.field, key.name))
    return list(found)


def _has_key(conn: sqlite3.Connection, field: str, name: str) -> bool:
    table = _KEY_TABLES[field][0]
    sql = f"SELECT 1 FROM {table} WHERE key = ? LIMIT 1"  # noqa: S608 - fixed table names
    return conn.execute(sql, (name,)).fetchone() is not None


def _keys(conn: sqlite3.Connection, field: str) -> list[str]:
    """The distinct keys of one kind, in order: one index seek per key, at most a bound of them."""
    table = _KEY_TABLES[field][0]
    keys: list[str] = []
    row = conn.execute(f"SELECT min(key) FROM {table}").fetchone()  # noqa: S608
    while row[0] is not None and len(keys) < _MAX_SUGGESTED_FROM:
        keys.append(row[0])
        row = conn.execute(f"SELECT min(key) FROM {table} WHERE key > ?", (row[0],)).fetchone()  # noqa: S608
    return keys


def _key_text(field: str, name: str) -> str:
    """How a filter writes the key: ``metrics.acc``, ``metrics.`val loss```."""
    shown = name if _PLAIN_NAME.fullmatch(name) else "`" + name.replace("`", "``") + "`"
    return f"{_KEY_PREFIXES[field]}.{shown}"


def _nearest(name: str, keys: list[str]) -> list[str]:
    """Up to three keys a mistyped ``name`` may have meant.

    Keys with the same letters in another case come first, then the closest by difflib's ratio
    (0.5 and up, so ``acc`` finds ``accuracy``).
    """
    same_case = [k for k in keys if k.lower() == name.lower()]
    close = difflib.get_close_matches(name, keys, n=3, cutoff=0.5)
    return list(dict.fromkeys([*same_case, *close]))[:3]


def _or_list(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " or " + items[-1]


def unknown_keys(conn: sqlite3.Connection, query: Query) -> list[str]:
    """One note per metric, param or tag a query names that no indexed run has.

    Each note names the key and, when there is one, what it may have meant: a close key of the
    same kind (``no run has metric 'acc' (did you mean 'accuracy'?)``) or the same name of
    another kind (``no run has param 'accuracy' (did you mean metrics.accuracy?)``). None when
    no run is indexed at all (nothing to compare with).
    """
    named = _named_keys(query)
    if not named or conn.execute("SELECT 1 FROM runs LIMIT 1").fetchone() is None:
        return []
    notes: list[str] = []
    known: dict[str, list[str]] = {}
    for field, name in named:
        if _has_key(conn, field, name):
            continue
        others = [_key_text(f, name) for f in _KEY_TABLES if f != field and _has_key(conn, f, name)]
        if field not in known:
            known[field] = _keys(conn, field)
        nearest = [repr(k) for k in _nearest(name, known[field])]
        note = f"no run has {_KIND_WORDS[field]} {name!r}"
        if nearest or others:
            note += f" (did you mean {_or_list(nearest + others)}?)"
        notes.append(note)
    return notes


def _chunks(items: Sequence[str], size: int = 500) -> Iterable[Sequence[str]]:
    # Well under SQLite's 32766 bound variables, whatever else the statement binds.
    return (items[start:start + size] for start in range(0, len(items), size))


class Index:
    """The query index of one repository, kept up to date with its runs ref.

    Services ask the questions below (a :class:`gitml.core.filter.Query` for searches) and get
    runs or ids back. Open it through :attr:`gitml.core.workspace.Workspace.index`, which closes
    it with the workspace. The SQLite file is opened (and brought up to date) on first use.
    """

    def __init__(self, repo: GitRepo) -> None:
        self.repo = repo
        self._conn: sqlite3.Connection | None = None
        # Runs an answer read from the ref (no index yet) and left out as unreadable:
        # ``{run id: problem}``, for the caller to warn about.
        self.skipped: dict[str, str] = {}

    @property
    def conn(self) -> sqlite3.Connection:
        """The connection, brought up to date with the runs ref first (one ref read when it is).

        For this module's functions and tests: services ask the methods below, not SQL.
        """
        if self._conn is None:
            self._conn = open_index(self.repo)
            return self._conn
        for _ in range(10):
            if _sync(self.repo, self._conn):
                break
        return self._conn

    def _map_tip(self, cold_only: bool = False) -> str | None:
        """The runs-ref tip whose lookup maps answer in place of the index, or None.

        Questions about a few commits or runs (``diff``, ``check``, the pre-push gates) are
        answered from the maps when the index is not already at the ref's tip, so a fresh clone
        or a pull of many runs costs those runs only, not an index build. With ``cold_only``,
        only when the index would be built from scratch (no file, another schema, no tip).
        """
        tip = self.repo.ref(runsref.RUNS_REF)
        if tip is None:
            return None
        indexed = self._indexed_tip()
        if indexed == tip or (cold_only and indexed and self.repo.has_object(indexed)):
            return None
        return tip if runsref.has_maps(self.repo, tip) else None

    def _indexed_tip(self) -> str | None:
        """The tip the index file reflects ("" for none yet), read without catching up.

        None when there is no usable index file (missing, unreadable or of another schema).
        """
        if self._conn is not None:
            return _meta(self._conn, "tip")
        path = index_path(self.repo)
        if not path.exists():
            return None
        try:
            conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5)
            try:
                return _meta(conn, "tip") if _meta(conn, "schema") == INDEX_SCHEMA else None
            finally:
                conn.close()
        except sqlite3.Error:
            return None

    def _runs_from_ref(self, tip: str, ids: Iterable[str]) -> list[Run]:
        """The readable runs among ``ids`` at ``tip``, read from the ref (no history, no patch)."""
        trees = runsref.run_trees(self.repo, tip, ids)
        runs = []
        present: dict[str, bool] = {}
        for row in _read_and_parse(self.repo, trees):
            if isinstance(row, Run):
                row.patch, row.history, row.full_history = None, None, None
                _mark_missing(self.repo, row.source, present)
                runs.append(row)
            else:
                self.skipped[row[0]] = row[1]
        return runs

    def _commit_runs(self, tip: str, commits: list[str], status: str | None,
                     experiment: str | None = None) -> dict[str, list[Run]]:
        """``{commit: runs made from it}`` through the ``commits/`` map, each run checked."""
        return dict(self._iter_commit_runs(tip, commits, status, experiment))

    def _iter_commit_runs(self, tip: str, commits: list[str], status: str | None,
                          experiment: str | None = None) -> Iterator[tuple[str, list[Run]]]:
        """``(commit, runs made from it)`` in the order of ``commits``, read as they are asked for."""
        found = runsref.runs_of_commits(self.repo, tip, commits) or {}
        for commit in commits:
            if commit not in found:
                continue
            runs = [run for run in self._runs_from_ref(tip, found[commit])
                    if run.source.get("commit") == commit  # the map is a pointer, not the record
                    and (status is None or run.status == status)
                    and (experiment is None or run.experiment == experiment)]
            if runs:
                yield commit, runs

    def newest(self, count: int) -> list[Run] | None:
        """The ``count`` runs that started last, newest first, when the maps can say (else None).

        What ``gitml runs list`` shows by default in a fresh clone, without building the index:
        the ``started/`` map names the runs in a search's order (start time descending, then
        id) without reading them, and only the first ``count`` (and any unreadable ones among
        them) are read. An index that exists, even behind the ref, is
        asked instead: catching it up also finds unreadable runs to warn about.

        Args:
            count: how many runs, 1 or more.

        Returns:
            The runs, or None when there is an index to ask or the ref has no maps.
        """
        tip = self._map_tip(cold_only=True)
        minutes = None if tip is None else runsref.started_minutes(self.repo, tip)
        if minutes is None:
            return None
        found: list[Run] = []
        for entries in minutes:
            # Read in the map's order, a few more than needed at a time; only runs that are
            # readable and filed under their own start time count, so an entry for a missing,
            # unreadable or misfiled run never stands in for a real one.
            filed = dict((run_id, key) for key, run_id in entries)
            for start in range(0, len(entries), count + 8):
                chunk = [run_id for _, run_id in entries[start:start + count + 8]]
                found += [run for run in self._runs_from_ref(tip, chunk)
                          if runsref.start_key(run.start_time) == filed[run.id]]
                if len(found) >= count:
                    break
            if len(found) >= count:
                break
        found.sort(key=lambda r: r.id)
        found.sort(key=lambda r: r.start_time, reverse=True)
        return found[:count]

    def close(self) -> None:
        """Close the SQLite connection (the next question opens it again)."""
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def rebuild(self) -> int:
        """Throw the index file away and rebuild it from the runs ref.

        Returns:
            The number of readable runs indexed.
        """
        self.close()
        _remove(index_path(self.repo))
        return self.count()

    def count(self) -> int:
        """How many readable runs the index holds."""
        return self.conn.execute("SELECT count(*) FROM runs").fetchone()[0]

    def needs_build(self) -> bool:
        """Whether the next question would build the whole index (a fresh clone, a new schema), not catch up.

        A building costs every run's read (100,000 runs: about 40 s); catching up costs the
        runs that changed. False when the runs ref has no run yet.
        """
        return self.repo.ref(runsref.RUNS_REF) is not None and not self._indexed_tip()

    def current(self) -> bool:
        """Whether the index already reflects the runs ref's tip (answers need no catching up)."""
        tip = self.repo.ref(runsref.RUNS_REF)
        return tip is None or self._indexed_tip() == tip

    def search(self, query: Query) -> list[Run]:
        """The runs ``query`` finds, in its order, without history or patch text.

        A query for the newest runs only (no filter, sort key or experiment, with a limit) is
        answered from the runs ref's ``started/`` map while the index is behind the ref, so a
        fresh clone lists its latest runs without building the index first.

        Args:
            query: from :func:`gitml.core.filter.compile_query`.

        Returns:
            The runs (:class:`IndexedRun` s, decoded on first use); at most ``query.limit`` of
            them. A run whose source commit is not in the repository is marked
            ``source["commit_missing"]``.
        """
        if query.where is None and not query.order and not query.experiments and query.limit and not query.offset:
            newest = self.newest(query.limit)
            if newest is not None:
                return newest
        return search(self.conn, query, self.repo)

    def search_ids(self, query: Query) -> list[str]:
        """The ids of the runs ``query`` finds, in its order."""
        return search_ids(self.conn, query)

    def count_matching(self, query: Query, cap: int | None = None) -> int:
        """How many runs ``query`` finds (its limit and offset aside): a page's "of N".

        ``cap``: stop counting there (a page says "10,000+" rather than count 100,000 matches).
        """
        return count_matching(self.conn, query, cap)

    def keys(self, kind: str) -> list[str]:
        """The distinct keys of one kind (``metric``, ``param`` or ``tag``) any run has, sorted.

        One index seek per key, at most 10,000 keys.

        Raises:
            ValueError: another ``kind`` (a bug in the caller).
        """
        if kind not in _KEY_TABLES:
            raise ValueError(f"kind must be one of {sorted(_KEY_TABLES)}, not {kind!r}")
        return _keys(self.conn, kind)

    def unknown_keys(self, query: Query) -> list[str]:
        """Notes on the metrics, params and tags ``query`` names that no run has.

        Args:
            query: from :func:`gitml.core.filter.compile_query`; its filter and sort keys count.

        Returns:
            One note per such key, e.g. ``no run has metric 'acc' (did you mean 'accuracy'?)``;
            empty when every key is some run's, or no run is indexed.
        """
        if not _named_keys(query):
            return []  # nothing to check: no need to open (or build) the index
        return unknown_keys(self.conn, query)

    def experiment_runs(self) -> dict[str, tuple[int, str, str]]:
        """Each experiment name the indexed runs carry.

        Returns:
            ``{name: (run count, earliest start_time, latest start_time)}`` (times as the runs
            store them).
        """
        rows = self.conn.execute(
            "SELECT experiment, count(*), min(start_time), max(start_time) FROM runs GROUP BY experiment")
        return {name: (count, first, last) for name, count, first, last in rows}

    def experiment_names(self) -> list[str]:
        """The experiment names the indexed runs carry, sorted: one index seek per name."""
        names: list[str] = []
        row = self.conn.execute("SELECT min(experiment) FROM runs").fetchone()
        while row[0] is not None:
            names.append(row[0])
            row = self.conn.execute("SELECT min(experiment) FROM runs WHERE experiment > ?", (row[0],)).fetchone()
        return names

    def child_counts(self, run_ids: Sequence[str]) -> dict[str, int]:
        """How many indexed runs name each of ``run_ids`` as their parent (``mlflow.parentRunId``).

        Returns:
            ``{run id: children}`` for the ids that have any; one index range read per id.
        """
        counts: dict[str, int] = {}
        for chunk in _chunks(list(run_ids)):
            rows = self.conn.execute(
                f"SELECT value, count(*) FROM tags WHERE key = 'mlflow.parentRunId' AND value IN ({_marks(list(chunk))}) "  # noqa: S608
                "GROUP BY value", list(chunk))
            counts.update(dict(rows))
        return counts

    def experiment_run_ids(self, name: str) -> list[str]:
        """The ids of the indexed runs of experiment ``name``."""
        return [row[0] for row in self.conn.execute("SELECT id FROM runs WHERE experiment = ?", (name,))]

    def ids_with_prefix(self, prefix: str, limit: int = 3) -> list[str]:
        """Up to ``limit`` run ids (readable or corrupt) starting with hex ``prefix``."""
        return ids_with_prefix(self.conn, prefix, limit)

    def experiments(self, tip: str | None) -> tuple[dict[str, Experiment], dict[str, str]]:
        """The experiment records at ``tip`` and the entries that fail validation.

        Answered from the index's copy, which follows the ref's ``experiments/`` folder shard
        by shard (only changed records are read again); a ``tip`` other than the one the
        index reflects is read from the ref directly.

        Args:
            tip: a runs-ref commit sha, or None.

        Returns:
            ``({experiment id: Experiment}, {key: problem})``.
        """
        conn = self.conn
        if _meta(conn, "tip") != (tip or ""):
            problems: dict[str, str] = {}
            return experiments.read_experiments(self.repo, tip, problems), problems
        top = experiments.experiments_top(self.repo, tip)
        for _ in range(10):
            stored = _meta(conn, "experiments_top")
            if stored == _top_text(top) or self._refresh_experiments(stored, top):
                break
        records: dict[str, Experiment] = {}
        problems = {}
        for key, doc, problem in conn.execute("SELECT key, doc, problem FROM experiments"):
            if problem is not None:
                problems[key] = problem
            else:
                data = json.loads(doc)
                records[key] = Experiment(**{k: v for k, v in data.items() if k in _EXPERIMENT_FIELDS})
        return records, problems

    def _refresh_experiments(self, stored: str | None, top: tuple[int, str] | None) -> bool:
        conn = self.conn
        old = _top_entry(stored)
        if old is not None and not self.repo.has_object(old[1]):
            old = None
        if old is None:
            changed, removed = experiments.diff_experiments(self.repo, None, top)
            removed = {row[0] for row in conn.execute("SELECT key FROM experiments")}
        else:
            changed, removed = experiments.diff_experiments(self.repo, old, top)
        bad: dict[str, str] = {}
        good = experiments.read_trees(self.repo, changed, bad)
        conn.execute("BEGIN IMMEDIATE")
        try:
            if _meta(conn, "experiments_top") != stored:
                conn.execute("ROLLBACK")
                return False
            conn.executemany("DELETE FROM experiments WHERE key = ?", [(k,) for k in (*changed, *removed)])
            conn.executemany("INSERT INTO experiments VALUES (?, ?, ?, NULL)",
                             [(key, changed[key], json.dumps(exp.to_dict())) for key, exp in good.items()])
            conn.executemany("INSERT INTO experiments VALUES (?, ?, NULL, ?)",
                             [(key, str(changed.get(key, "")), message) for key, message in bad.items()])
            conn.execute("INSERT OR REPLACE INTO meta VALUES ('experiments_top', ?)", (_top_text(top),))
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return True

    def experiment_stats(self, name: str) -> tuple[int, str | None, str | None]:
        """``(run count, earliest start_time, latest start_time)`` of experiment ``name``'s runs."""
        row = self.conn.execute("SELECT count(*), min(start_time), max(start_time) FROM runs WHERE experiment = ?",
                                (name,)).fetchone()
        return row[0], row[1], row[2]

    def corrupt_runs(self) -> list[tuple[str, str]]:
        """``(run id or entry, problem)`` for every entry on the runs ref that cannot be read."""
        return corrupt_runs(self.conn)

    def run(self, run_id: str) -> Run:
        """The indexed run with this full id (no history or patch text).

        Raises:
            CorruptRunError: the run is on the ref but cannot be read.
            RunNotFoundError: no run has this id.
        """
        tip = self._map_tip()
        if tip is not None and RUN_ID_RE.match(run_id):
            tree = runsref.run_tree(self.repo, tip, run_id)
            if tree is not None:
                found = _read_and_parse(self.repo, {run_id: tree})[0]
                if isinstance(found, tuple):
                    raise CorruptRunError(run_id, found[1])
                found.patch, found.history, found.full_history = None, None, None
                return found
        conn = self.conn
        row = conn.execute("SELECT doc FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is not None:
            return run_from_doc(row[0])
        problem = conn.execute("SELECT message FROM corrupt WHERE run_id = ?", (run_id,)).fetchone()
        if problem is not None:
            raise CorruptRunError(run_id, problem[0])
        raise RunNotFoundError(f"no run {run_id} on {runsref.RUNS_REF}")

    def run_ids_at(self, commits: list[str]) -> set[str]:
        """Ids of the runs (any status) whose source commit is one of ``commits``."""
        tip = self._map_tip()
        if tip is not None:
            return {run.id for runs in self._commit_runs(tip, commits, None).values() for run in runs}
        found: set[str] = set()
        for chunk in _chunks(commits):
            rows = self.conn.execute(f"SELECT id FROM runs WHERE source_commit IN ({_marks(list(chunk))})",  # noqa: S608
                                     list(chunk))
            found.update(r[0] for r in rows)
        return found

    def runs_at(self, commits: list[str], status: str | None = "FINISHED") -> list[Run]:
        """Runs made from any of ``commits`` (with ``status``, unless None), newest end first."""
        tip = self._map_tip()
        if tip is not None:
            runs = [run for found in self._commit_runs(tip, commits, status).values() for run in found]
            return sorted(runs, key=lambda r: (r.end_time or "", r.id), reverse=True)
        runs: list[Run] = []
        for chunk in _chunks(commits):
            sql = f"SELECT doc FROM runs WHERE source_commit IN ({_marks(list(chunk))})"  # noqa: S608
            params: list = list(chunk)
            if status is not None:
                sql += " AND status = ?"
                params.append(status)
            runs += _docs(self.conn, sql, params)
        return sorted(runs, key=lambda r: (r.end_time or "", r.id), reverse=True)

    def nearest_finished_runs(self, commits: Sequence[str], experiment: str | None = None
                              ) -> tuple[str, list[Run]] | None:
        """The first of ``commits`` (in their order) that finished runs were made from, and those runs.

        Args:
            commits: full commit shas, nearest first (a first-parent history, say).
            experiment: only runs of this experiment.

        Returns:
            ``(commit, runs)``, or None when no commit has a finished run.
        """
        tip = self._map_tip()
        if tip is not None:
            return next(self._iter_commit_runs(tip, list(commits), "FINISHED", experiment), None)
        extra, extra_params = (" AND experiment = ?", [experiment]) if experiment else ("", [])
        having: set[str] = set()
        for chunk in _chunks(commits):
            sql = (f"SELECT DISTINCT source_commit FROM runs WHERE status = 'FINISHED' AND source_commit IN "  # noqa: S608
                   f"({_marks(list(chunk))}){extra}")
            having.update(row[0] for row in self.conn.execute(sql, [*chunk, *extra_params]))
        nearest = next((c for c in commits if c in having), None)
        if nearest is None:
            return None
        sql = f"SELECT doc FROM runs WHERE status = 'FINISHED' AND source_commit = ?{extra}"  # noqa: S608
        return nearest, _docs(self.conn, sql, [nearest, *extra_params])

    def has_artifacts(self) -> bool:
        """Whether any indexed run records an artifact."""
        return self.conn.execute("SELECT 1 FROM runs WHERE artifacts > 0 LIMIT 1").fetchone() is not None
