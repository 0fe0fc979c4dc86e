"""``gitml import mlflow``: an MLflow store's runs, experiments, artifacts and registry, into git.

Reads with :mod:`gitml.interop.mlflow_store`, then writes through the services and core that
write gitml's own runs: experiment records first (one commit), then runs in batches
(:func:`gitml.tracking.commit.write_runs`, one commit per batch), artifacts into the content
store (so the next ``gitml push`` uploads them), registry tags last. docs/migrate.md says what
maps to what.

Idempotent: a run whose id is on the runs ref already is compared with it (the tree of its
files) and not written again; an interrupted import leaves whole batches on the ref and the
next one carries on. A run that cannot be taken whole is skipped with its reason, never
half-written.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from gitml import __version__
from gitml.core import index, runsref, store
from gitml.core.errors import BadInputError, GitmlError
from gitml.core.experiments import NOTE_TAG, Experiment, commit_experiments, read_experiments
from gitml.core.formats import (
    HISTORY_BOUND,
    HISTORY_HEADER,
    Metric,
    Run,
    check_step,
    check_timestamp_ms,
    param_value,
    parse_run,
    run_files,
)
from gitml.core.gitrepo import BLOB_MODE
from gitml.core.ids import COMMIT_RE, RUN_ID_RE, check_key, check_name
from gitml.core.urls import strip_url
from gitml.core.workspace import Workspace, WorkspaceLike, open_workspace
from gitml.interop import mlflow_store
from gitml.interop.mlflow_store import ArtifactProblem, SourceExperiment, SourceRun
from gitml.tracking.commit import run_tree_files, write_runs
from gitml.tracking.experiments import free_id

BATCH = 500  # runs per commit
PARALLEL_MIN = 400  # runs: below this, starting reader processes costs more than they save
PIECE = 50  # runs a reader process reads at a time
EXPORTED_TAG = "gitml_run_id"  # gitml export mlflow's tag on a run a server gave a new id
RUN_NAME_TAG = "mlflow.runName"
PARENT_TAG = "mlflow.parentRunId"
DEFAULT_EXPERIMENT = "default"  # gitml's name for MLflow's experiment 0, "Default"


@dataclass
class ImportSummary:
    """What an import did (or, with ``dry_run``, would do).

    Attributes:
        source: the store, described (``sqlite store /x/mlflow.db``).
        dry_run: nothing was written.
        found: runs the selected experiments hold.
        imported: runs written (would be written).
        unchanged: runs already on the runs ref as they are in the store.
        older: runs left out by ``since``.
        points: metric points of the runs written.
        artifacts: artifact entries (files and folders) of the runs written.
        artifact_bytes: their bytes.
        commits: the commits written on the runs ref.
        experiments: experiment records created (names).
        skipped: ``(what, why)`` for every run or experiment not imported.
        registry: registry tags created.
        registry_skipped: ``(what, why)`` for every registry entry not imported.
        seconds: wall time.
    """

    source: str
    dry_run: bool = False
    found: int = 0
    imported: int = 0
    unchanged: int = 0
    older: int = 0
    points: int = 0
    artifacts: int = 0
    artifact_bytes: int = 0
    commits: list[str] = field(default_factory=list)
    experiments: list[str] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    registry: list[str] = field(default_factory=list)
    registry_skipped: list[tuple[str, str]] = field(default_factory=list)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict: every attribute, ``skipped`` as ``[{"what", "why"}]``."""
        return {"source": self.source, "dry_run": self.dry_run, "found": self.found, "imported": self.imported,
                "unchanged": self.unchanged, "older": self.older, "points": self.points,
                "artifacts": self.artifacts, "artifact_bytes": self.artifact_bytes, "commits": list(self.commits),
                "experiments": list(self.experiments),
                "skipped": [{"what": w, "why": y} for w, y in self.skipped],
                "registry": list(self.registry),
                "registry_skipped": [{"what": w, "why": y} for w, y in self.registry_skipped],
                "seconds": round(self.seconds, 3)}


def parse_since(text: str) -> int:
    """``--since``: an ISO 8601 date or time (UTC unless it has an offset), as milliseconds since 1970.

    Raises:
        BadInputError: not such a time.
    """
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise BadInputError(f"--since {text!r} is not an ISO 8601 date or time",
                            hint="e.g. 2026-01-31 or 2026-01-31T12:00:00Z") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return int(moment.timestamp() * 1000)


_SECONDS: dict[int, str] = {}


def iso_ms(ms: int) -> str:
    """Milliseconds since 1970 as a run record's timestamp (``2026-11-27T10:23:27.123Z``), exactly."""
    seconds, rest = divmod(ms, 1000)
    head = _SECONDS.get(seconds)
    if head is None:
        if len(_SECONDS) > 100_000:
            _SECONDS.clear()
        head = _SECONDS[seconds] = datetime.fromtimestamp(seconds, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.")
    return f"{head}{rest:03d}Z"


def _recency(point: tuple[str, float, int, int]) -> tuple[int, int, float]:
    # MLflow's latest value: highest step, then timestamp, then value (a NaN counting as 0)
    value = point[1]
    return point[2], point[3], 0.0 if value != value else value


def experiment_name(exp: SourceExperiment) -> str:
    """The gitml experiment an MLflow experiment becomes: its name; MLflow's ``Default`` (id 0) is ``default``."""
    return DEFAULT_EXPERIMENT if exp.id == "0" and exp.name == "Default" else exp.name


def to_run(src: SourceRun, experiment: str) -> tuple[Run, list[Metric]]:
    """The gitml run of an MLflow run (artifacts not yet set), and its points.

    ``mlflow.runName`` is the name, ``mlflow.user`` (or MLflow's ``user_id``) the user,
    ``mlflow.source.git.commit`` / ``.branch`` / ``.repoURL`` the source, ``mlflow.source.name``
    the command, ``mlflow.project.entryPoint`` the entry point, ``mlflow.note.content`` the
    description; every tag but ``mlflow.runName`` stays a tag (``mlflow.parentRunId`` is
    gitml's parent link as it is MLflow's).

    Raises:
        BadInputError: the run cannot be a gitml run as it is (the message says why).
    """
    if not RUN_ID_RE.match(src.run_id):
        raise BadInputError("its id is not 32 lowercase hex digits")
    if src.lifecycle_stage != "active":
        raise BadInputError("deleted in MLflow")
    if src.status not in ("FINISHED", "FAILED", "KILLED"):
        raise BadInputError(f"still {src.status} in MLflow (imported once it ends)")
    if src.start_time is None:
        raise BadInputError("it has no start time")
    tags = dict(src.tags)
    for key in tags:
        check_key(key, "tag key")
    name = src.name or tags.get(RUN_NAME_TAG) or ""
    try:
        name = check_name(name, "run name")
        if tags.get(RUN_NAME_TAG) == name:
            del tags[RUN_NAME_TAG]
    except BadInputError:
        name = src.run_id[:8]  # the name MLflow had (if any) stays in the mlflow.runName tag
    params = {check_key(key, "param key"): param_value(key, value) for key, value in src.params.items()}
    start = iso_ms(check_timestamp_ms(src.start_time))
    end = iso_ms(check_timestamp_ms(src.end_time)) if src.end_time is not None else None
    source: dict[str, Any] = {}
    commit = tags.get("mlflow.source.git.commit", "")
    if COMMIT_RE.match(commit):
        source["commit"] = commit
        branch = tags.get("mlflow.source.git.branch")
        if branch and branch.isprintable() and len(branch) <= 1024:
            source["branch"] = branch
        remote = tags.get("mlflow.source.git.repoURL") or tags.get("mlflow.gitRepoURL")
        if remote:
            source["remote"] = strip_url(remote)
    points: list[Metric] = []
    latest: dict[str, tuple[str, float, int, int]] = {}
    checked: set[str] = set()
    if src.history_rows is not None:  # the reader made history.tsv's rows (sqlite): no point-by-point work
        for key, (value, step, stamp) in src.latest.items():
            check_key(key, "metric key")
            latest[key] = (key, value, step, check_timestamp_ms(stamp))
    for point in src.metrics:
        key, value, step, stamp = point
        if key not in checked:
            check_key(key, "metric key")
            checked.add(key)
        if not -(2**63) <= step < 2**63:
            check_step(step)
        points.append(Metric(key, value, step, iso_ms(stamp) if 0 <= stamp <= 253_402_300_799_999
                             else iso_ms(check_timestamp_ms(stamp))))
        current = latest.get(key)
        if current is None or _recency(point) > _recency(current):
            latest[key] = point
    run = Run(
        id=src.run_id, name=name, experiment=experiment, status=src.status, start_time=start, end_time=end,
        updated=end or start, user=src.user or tags.get("mlflow.user") or None, source=source,
        command=tags.get("mlflow.source.name") or None,
        entry_point=tags.get("mlflow.project.entryPoint") or src.entry_point or None,
        description=tags.get(NOTE_TAG) or None, gitml_version=__version__, params=params,
        metrics={key: p[1] for key, p in latest.items()},
        metric_info={key: {"step": p[2], "timestamp": iso_ms(p[3])} for key, p in latest.items()},
        tags=tags,
    )
    return run, points


def _blob_sha(data: bytes) -> bytes:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).digest()


def tree_sha(files: dict[str, bytes]) -> str:
    """The git tree id of a run folder holding ``files``, computed without writing anything."""
    items = sorted((name.encode(), _blob_sha(data)) for name, data in files.items())
    raw = b"".join(b"%o %s\0%s" % (BLOB_MODE, name, sha) for name, sha in items)
    return hashlib.sha1(b"tree %d\0" % len(raw) + raw).hexdigest()


def _store_artifacts(reader, src: SourceRun, cache: Path, scratch: Path) -> dict[str, dict[str, Any]]:
    """The run's ``artifacts.yaml``: each top-level file or folder of its artifacts, and its models.

    Everything is checked before anything is stored (:func:`mlflow_store.checked_folder`).

    Raises:
        ArtifactProblem: a path leaves its folder, or the artifacts cannot be read.
    """
    folders: list[tuple[str | None, Path]] = []
    run_folder = reader.fetch_artifacts(src.artifact_uri, scratch / "run")
    if run_folder is not None:
        folders.append((None, run_folder))
    for n, (model_name, location) in enumerate(src.models):
        folder = reader.fetch_artifacts(location, scratch / f"model-{n}")
        if folder is not None:
            folders.append((model_name, folder))
    entries: dict[str, dict[str, Any]] = {}
    try:
        for model_name, folder in folders:
            items = [(p.name, p) for p in sorted(folder.iterdir())] if model_name is None else [(model_name, folder)]
            for name, path in items:
                if name in entries:  # a model logged under the name of an artifact: keep both
                    name = f"{name}-model"
                if name in entries:
                    continue
                entries[name] = store.put_path(cache, path)
    except BadInputError as exc:
        raise ArtifactProblem(exc.message) from None
    except OSError as exc:
        raise ArtifactProblem(f"artifacts cannot be read: {exc.strerror or exc}") from None
    return entries


def import_mlflow(
    source: str,
    experiments: Iterable[str] = (),
    since: str | int | None = None,
    dry_run: bool = False,
    artifact_root: str | Path | None = None,
    registry: bool = True,
    batch_size: int = BATCH,
    progress: Callable[[int, int], None] | None = None,
    repo: WorkspaceLike = None,
    jobs: int | None = None,
) -> ImportSummary:
    """Import an MLflow store into this repository (``gitml import mlflow SOURCE``).

    Args:
        source: an ``mlruns/`` folder or ``file:///…``, ``sqlite:///path/mlflow.db``, or a
            tracking server's ``http://host:port``.
        experiments: names of the experiments to import (default: every active one).
        since: only runs started at or after this time (ISO 8601 text, or milliseconds).
        dry_run: read and check everything, write nothing (not even the content store).
        artifact_root: the folder relative artifact locations are read from (sqlite), and
            the folder artifacts may be read from besides the store's own.
        registry: also import registered models (versions and aliases as registry tags).
        batch_size: runs per commit.
        progress: ``progress(done, total)`` after each run read.
        repo: a Workspace, an open repository or a path inside one (default: the current directory).
        jobs: processes reading a file or sqlite store while this one writes: 1 reads here,
            one after the other; None (default) is one per core when the store has at least
            :data:`PARALLEL_MIN` runs to read, else 1. A server is always read here.

    Returns:
        The :class:`ImportSummary`.

    Raises:
        BadInputError: the source is not an MLflow store of a version gitml reads, an
            experiment named is not in it, a bad ``since``: nothing is written.
        RemoteError: the tracking server stopped answering (batches written before stay).
        ConcurrencyError: the runs ref kept moving.
    """
    started = time.perf_counter()
    since_ms = parse_since(since) if isinstance(since, str) else since
    if batch_size < 1:
        raise BadInputError("batch size must be at least 1")
    if jobs is not None and jobs < 1:
        raise BadInputError("jobs must be at least 1")
    reader = mlflow_store.open_store(source, artifact_root)
    summary = ImportSummary(source=reader.describe(), dry_run=dry_run)
    try:
        with open_workspace(repo) as ws:
            _import(ws, reader, summary, list(experiments), since_ms, dry_run, registry, batch_size, progress,
                    jobs)
    finally:
        if isinstance(reader, mlflow_store.SqliteStore):
            reader.close()
    summary.seconds = time.perf_counter() - started
    return summary


def _select(reader, names: list[str], summary: ImportSummary) -> list[SourceExperiment]:
    found = reader.experiments()
    if names:
        by_name = {exp.name: exp for exp in found} | {experiment_name(exp): exp for exp in found}
        missing = [n for n in names if n not in by_name]
        if missing:
            raise BadInputError(f"no experiment {missing[0]!r} in the {reader.describe()}",
                                hint=f"it has: {', '.join(sorted(e.name for e in found))[:300]}")
        found = list({by_name[n].id: by_name[n] for n in names}.values())
    chosen = []
    for exp in found:
        if exp.lifecycle_stage != "active":
            summary.skipped.append((f"experiment {exp.name}", "deleted in MLflow: its runs are not imported"))
            continue
        try:
            check_name(experiment_name(exp), "experiment name")
        except BadInputError as exc:
            summary.skipped.append((f"experiment {exp.id}", f"{exc.message}: its runs are not imported"))
            continue
        chosen.append(exp)
    return chosen


def _import(ws: Workspace, reader, summary: ImportSummary, names: list[str], since_ms: int | None,
            dry_run: bool, registry: bool, batch_size: int, progress, jobs: int | None) -> None:
    chosen = _select(reader, names, summary)
    by_id = {exp.id: exp for exp in chosen}
    ids = reader.run_ids(list(by_id))
    summary.found = len(ids)
    recorded: set[str] = set()  # experiments whose records are written (or would be)
    if since_ms is None:  # every experiment, empty ones too; with --since, only those that get runs
        _record(ws, chosen, summary, dry_run, recorded)
    cache = store.cache_dir(ws.gitml_dir)
    scratch_cache = Path(tempfile.mkdtemp(prefix="gitml-import-cache-")) if dry_run else None
    done = 0
    pending: set[str] = set()  # a dry run's runs that would be written
    batches = _read_ahead(reader, ids, batch_size, jobs)
    try:
        for chunk, loaded in batches:
            existing = runsref.run_trees(ws.repo, ws.runs_tip, [run_id for run_id, _ in chunk])
            batch: list[tuple[Run, list[Metric], dict[str, bytes]]] = []
            counted: list[int] = []
            for src in loaded:
                done += 1
                made = _one(ws, reader, src, by_id, since_ms, existing, scratch_cache or cache, summary, dry_run)
                if made is not None:
                    batch.append(made)
                    counted.append(sum(src.counts.values()) if src.history_rows is not None else len(src.metrics))
                if progress is not None:
                    progress(done, len(ids))
            if not batch:
                continue
            summary.imported += len(batch)
            if dry_run:
                pending.update(run.id for run, _, _ in batch)
            summary.points += sum(npoints for npoints in counted)
            summary.artifacts += sum(len(run.artifacts) for run, _, _ in batch)
            summary.artifact_bytes += sum(e.get("size", 0) for run, _, _ in batch for e in run.artifacts.values())
            if since_ms is not None:
                names = {run.experiment for run, _, _ in batch}
                _record(ws, [e for e in chosen if experiment_name(e) in names], summary, dry_run, recorded)
            if not dry_run:
                what = "run" if len(batch) == 1 else "runs"
                summary.commits.append(write_runs(ws.repo, batch, f"import {len(batch)} {what} from MLflow "
                                                                  f"({summary.source[:150]})"))
    finally:
        batches.close()  # stops its reader processes now, not when the generator is collected
        if scratch_cache is not None:
            shutil.rmtree(scratch_cache, ignore_errors=True)
    if registry:
        from gitml.interop.registry import import_registry

        import_registry(ws, reader, summary, dry_run, frozenset(pending))


def _processes(reader, jobs: int | None, count: int) -> int:
    """Reader processes for ``count`` runs of ``reader``: 0 reads them here (a server, or ``jobs=1``)."""
    if not hasattr(reader, "reopen_args") or jobs == 1:
        return 0
    if jobs is None:
        cores = os.cpu_count() or 1
        return cores if cores > 1 and count >= PARALLEL_MIN else 0
    return jobs


def _read_ahead(reader, ids: list[tuple[str, str]], batch_size: int, jobs: int | None):
    """Each batch of ``ids`` with its :class:`SourceRun` list, in order.

    With reader processes (:func:`_processes`), they read pieces of :data:`PIECE` runs, up to
    two batches ahead of the writer: reading (sqlite rows into history text, or metric files)
    is most of an import's time. A piece a process could not read is read here again, so its
    error or problem is the one a serial import reports.
    """
    chunks = [ids[start:start + batch_size] for start in range(0, len(ids), batch_size)]
    processes = _processes(reader, jobs, len(ids))
    if not processes:
        for chunk in chunks:
            yield chunk, reader.load_runs(chunk)
        return
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(max_workers=processes, mp_context=multiprocessing.get_context("spawn"),
                               initializer=_reader_start, initargs=(type(reader), reader.reopen_args()))

    def submit(chunk):
        return [(chunk[i:i + PIECE], pool.submit(_reader_load, chunk[i:i + PIECE]))
                for i in range(0, len(chunk), PIECE)]

    try:
        ahead = [submit(chunk) for chunk in chunks[:2]]
        for n, chunk in enumerate(chunks):
            pieces = ahead.pop(0)
            if n + 2 < len(chunks):
                ahead.append(submit(chunks[n + 2]))
            loaded: list[SourceRun] = []
            for piece, future in pieces:
                try:
                    loaded.extend(future.result())
                except Exception:  # a broken process or an unpicklable error: read it here, as serially
                    loaded.extend(reader.load_runs(piece))
            yield chunk, loaded
    finally:
        pool.shutdown(wait=False, cancel_futures=True)


_READER = None  # the store a reader process opened (_reader_start)


def _reader_start(kind: type, args: tuple) -> None:
    """A reader process's start: open the store; Ctrl-C is the writing process's to handle."""
    import signal

    global _READER
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _READER = kind(*args)


def _reader_load(ids: list[tuple[str, str]]) -> list[SourceRun]:
    return _READER.load_runs(ids)


def _one(ws: Workspace, reader, src: SourceRun, by_id: dict[str, SourceExperiment], since_ms: int | None,
         existing: dict[str, str], cache: Path, summary: ImportSummary, dry_run: bool):
    """One run made ready to write, or None (unchanged, filtered, or skipped with its reason)."""
    label = f"run {src.run_id[:32]}"
    if src.problem:
        summary.skipped.append((label, src.problem))
        return None
    if since_ms is not None and (src.start_time is None or src.start_time < since_ms):
        summary.older += 1
        return None
    origin = src.tags.get(EXPORTED_TAG)
    if origin and origin != src.run_id and RUN_ID_RE.match(origin) and \
            runsref.run_entry(ws.repo, ws.runs_tip, origin) is not None:
        # exported from here to a server, which gave it a new id: it is this repository's run
        summary.skipped.append((label, f"exported from this repository's run {origin[:8]} (tag {EXPORTED_TAG})"))
        return None
    try:
        run, points = to_run(src, experiment_name(by_id[src.experiment_id]))
    except BadInputError as exc:
        summary.skipped.append((label, exc.message))
        return None
    scratch = Path(tempfile.mkdtemp(prefix="gitml-import-")) if isinstance(reader, mlflow_store.ServerStore) else None
    try:
        run.artifacts = _store_artifacts(reader, src, cache, scratch or Path("/nonexistent"))
        files = _files(reader, src, run, points, None if dry_run else cache)
    except (ArtifactProblem, BadInputError) as exc:
        summary.skipped.append((label, exc.message))
        return None
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    have = existing.get(run.id)
    if have is not None:
        if have == tree_sha(files) or _same_record(ws, run, files, have):
            summary.unchanged += 1
        else:
            summary.skipped.append((label, "on the runs ref already, with other content (changed in gitml or "
                                           "in MLflow since it was imported): left as it is"))
        return None
    return run, points, files


def _files(reader, src: SourceRun, run: Run, points: list[Metric], cache: Path | None) -> dict[str, bytes]:
    """The run folder's files; ``history.tsv`` from the reader's rows when it made them."""
    if src.history_rows is None:
        return run_tree_files(run, points, cache)
    files = run_files(run)
    if any(n > 1 for n in src.counts.values()):
        data = (HISTORY_HEADER + src.history_rows).encode()
        if len(data) > HISTORY_BOUND:  # sampled: the full table goes to the content store
            points[:] = [Metric(k, v, s, iso_ms(t)) for k, v, s, t in reader.points(src.run_id)]
            return run_tree_files(run, points, cache)
        files["history.tsv"] = data
    points[:] = []
    return files


def _same_record(ws: Workspace, run: Run, files: dict[str, bytes], have: str) -> bool:
    """Whether the ref's copy is this record, but for the gitml version that wrote it."""
    try:
        old = parse_run(run.id, runsref.read_run_files(ws.repo, have, run_id=run.id))
    except GitmlError:
        return False
    if old.gitml_version == run.gitml_version:
        return False
    theirs = dict(files)
    theirs.update(run_files(Run(**{**run.__dict__, "gitml_version": old.gitml_version})))
    return tree_sha(theirs) == have


def _record(ws: Workspace, chosen: list[SourceExperiment], summary: ImportSummary, dry_run: bool,
            recorded: set[str]) -> None:
    """The records of the experiments in ``chosen`` not recorded yet (a dry run only counts them)."""
    new = [exp for exp in chosen if exp.id not in recorded]
    if not new:
        return
    recorded.update(exp.id for exp in new)
    if dry_run:
        summary.experiments += [experiment_name(e) for e in new if _catalog_lacks(ws, experiment_name(e))]
    else:
        _record_experiments(ws, new, summary)


def _catalog_lacks(ws: Workspace, name: str) -> bool:
    """Whether no experiment record has ``name`` (read from the ref: a dry run builds no index)."""
    return all(exp.name != name for exp in read_experiments(ws.repo, ws.runs_tip).values())


def _record_experiments(ws: Workspace, chosen: list[SourceExperiment], summary: ImportSummary) -> None:
    """One commit creating the records of the experiments that have none (by name), with MLflow's times and tags."""
    def decide(tip: str | None, records: dict[str, Experiment]):
        have = {exp.name for exp in records.values()}
        new: dict[str, Experiment] = {}
        for source in chosen:
            name = experiment_name(source)
            if name in have or any(e.name == name for e in new.values()):
                continue
            tags = {k: v for k, v in source.tags.items() if k != NOTE_TAG and len(v) <= 8000}
            created = iso_ms(source.creation_time) if source.creation_time is not None else iso_ms(
                int(time.time() * 1000))
            exp = Experiment(experiment_id=free_id(name, {**records, **new}), name=name, tags=tags,
                             description=source.tags.get(NOTE_TAG) or None, creation_time=created,
                             last_update_time=iso_ms(int(time.time() * 1000)))
            new[exp.experiment_id] = exp
        return new, {}, {}, [e.name for e in new.values()]

    written = commit_experiments(ws.repo, decide, f"experiment: import {len(chosen)} from MLflow"[:200],
                                 records_at=lambda tip: ws.index.experiments(tip)[0])
    if written.tip is not None:
        index.record_written(ws.repo, written.parent, written.tip, [], experiments=written)
        summary.experiments += list(written.result or [])
        summary.commits.append(written.tip)

