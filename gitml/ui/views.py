"""What each page of ``gitml ui`` shows, as JSON-ready dicts (the JSON endpoints return them as they are).

Read-only: every function reads the runs ref through the query index (which catches up with
the ref first), the registry tags and the local content store, and writes nothing but gitml's
own caches (the index, the registry summary). Nothing here knows about HTTP; the server
(:mod:`gitml.ui.server`) renders these dicts as pages or sends them as JSON. Shapes are in
docs/ui.md.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import math
import threading
from datetime import datetime, timezone
from typing import Any

from gitml.core.errors import BadInputError, GitmlError, RunNotFoundError
from gitml.core.filter import compile_query
from gitml.core.ids import check_artifact_path
from gitml.core.workspace import Workspace

PAGE_SIZES = (25, 50, 100, 250)
DEFAULT_PAGE = 50
DEFAULT_COLUMNS = 8  # metric and param columns shown before the user picks
COUNT_CAP = 10_000  # a filter's matches are counted up to this many
LIVE_POINTS = 10_000  # a run in progress's metric is charted from at most this many of its points
MAX_OFFSET = 10**12  # more runs than any repository holds; SQLite's integers end at 2**63
PREVIEW_BYTES = 256 * 1024  # text, JSON and CSV artifacts previewed up to this size
CSV_ROWS = 200
CSV_COLUMNS = 50
IMAGE_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
               ".webp": "image/webp"}  # not SVG: it can carry script
TEXT_SUFFIXES = {".txt", ".log", ".md", ".yaml", ".yml", ".py", ".cfg", ".toml", ".ini", ".sh", ".tsv", ".html",
                 ".xml", ".svg", ".rst", ".csv", ".json", ".out", ".err", ""}  # shown even when not UTF-8


def number(value: Any) -> Any:
    """``value`` for JSON: NaN and infinities as the strings ``"nan"``, ``"inf"``, ``"-inf"``."""
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return str(value)
    return value


def jsonable(data: Any) -> Any:
    """``data`` with every NaN or infinite float, at any depth, as :func:`number` gives it (JSON has neither).

    Params and tags can hold them too (``log_param("thr", float("nan"))``), not only metrics.
    """
    if isinstance(data, float):
        return number(data)
    if isinstance(data, dict):
        return {key: jsonable(value) for key, value in data.items()}
    if isinstance(data, (list, tuple)):
        return [jsonable(value) for value in data]
    return data


def _short_run(run, columns: dict[str, list[str]]) -> dict[str, Any]:
    source = run.source or {}
    return {
        "id": run.id, "name": run.name, "experiment": run.experiment, "status": run.status,
        "start_time": run.start_time, "end_time": run.end_time, "user": run.user,
        "commit": source.get("commit"), "branch": source.get("branch"), "dirty": bool(source.get("dirty")),
        "params": {k: number(run.params[k]) for k in columns["params"] if k in run.params},
        "metrics": {k: number(run.metrics[k]) for k in columns["metrics"] if k in run.metrics},
        "tags": {k: run.tags[k] for k in columns["tags"] if k in run.tags},
        "parent": run.tags.get(PARENT_TAG),
        "duration": _seconds_between(run.start_time, run.end_time),
    }


def _seconds_between(start: str | None, end: str | None) -> float | None:
    """Seconds from ``start`` to ``end`` (record times), or None when either is missing or unreadable."""
    try:
        return (datetime.fromisoformat(end.replace("Z", "+00:00"))
                - datetime.fromisoformat(start.replace("Z", "+00:00"))).total_seconds()
    except (AttributeError, TypeError, ValueError):
        return None


PARENT_TAG = "mlflow.parentRunId"


# searchable as tags (the index gives them from the run's fields, as MLflow does), never a run's own tag
SYNTHETIC_TAGS = frozenset({"mlflow.runName", "mlflow.user", "mlflow.source.git.commit", "mlflow.note.content"})


def _available(ws: Workspace) -> dict[str, list[str]]:
    """Every key of each kind some run has: what the column picker offers."""
    return {"params": ws.index.keys("param"), "metrics": ws.index.keys("metric"),
            "tags": [key for key in ws.index.keys("tag") if key not in SYNTHETIC_TAGS]}


def _default_columns(runs: list, kind: str) -> list[str]:
    """The first few keys of one kind that the runs shown have (an experiment's own metrics, not every one's)."""
    keys = sorted({key for run in runs for key in getattr(run, kind)})
    return keys[:DEFAULT_COLUMNS]


def runs_page(ws: Workspace, experiment: str | None = None, filter: str | None = None,
              order_by: str | None = None, offset: int = 0, limit: int = DEFAULT_PAGE,
              params: list[str] | None = None, metrics: list[str] | None = None,
              tags: list[str] | None = None, indexing: bool = False) -> dict[str, Any]:
    """The runs table: one page of the runs a search finds, with the columns asked for.

    Args:
        ws: the open Workspace.
        experiment: only this experiment's runs (None: every experiment).
        filter: MLflow's filter syntax (``metrics.acc > 0.9 and params.lr = '0.1'``).
        order_by: one sort key (``metrics.acc DESC``); default newest first.
        offset: runs skipped (the page's start), 0 or more.
        limit: runs in the page, one of :data:`PAGE_SIZES`.
        params: the param keys shown as columns (None: the first few the page's runs have).
        metrics: the metric keys shown as columns (None: the first few the page's runs have).
        tags: the tag keys shown as columns (None: none).
        indexing: the query index is being built (a fresh clone; the server builds it beside):
            the newest runs come from the runs ref's ``started/`` map, without a count, and a
            filter, a sort, an experiment or an offset waits for the index (``waiting`` True,
            no runs).

    Returns:
        ``{total, total_capped, offset, limit, runs: [{id, name, experiment, status, start_time, end_time,
        user, commit, branch, dirty, params, metrics, tags, parent, parent_name, children, duration}], columns: {params, metrics, tags},
        available: {params, metrics, tags}, experiments: [name], active: [{id, name, experiment,
        start_time, host, alive}], error}``. ``error`` is None or ``{message, position, field}``
        for a filter (``field`` ``filter``) or sort key (``order_by``) that does not parse (then
        ``runs`` is empty): the page shows it under its box. ``active`` lists the runs in
        progress in this clone, which reach the table when they end. With a filter, ``total``
        counts at most :data:`COUNT_CAP` matches (``total_capped`` True when there are more).
        A nested run's ``parent`` is its ``mlflow.parentRunId`` (``parent_name`` that run's name,
        when it is here); ``children`` counts the runs naming a run as theirs.
        ``duration`` is in seconds (None for a run without an end time). ``indexing`` and
        ``waiting`` say what a page shown while the index is built lacks
        (``total`` is None then).

    Raises:
        BadInputError: an offset below 0 or past :data:`MAX_OFFSET`, or a page size not offered.
    """
    if limit not in PAGE_SIZES:
        raise BadInputError(f"bad page size {limit!r}: one of {', '.join(map(str, PAGE_SIZES))}")
    if not 0 <= offset <= MAX_OFFSET:
        raise BadInputError(f"bad offset {str(offset)[:40]}: 0 to {MAX_OFFSET:,}")
    if indexing:
        return _runs_while_indexing(ws, experiment, filter, order_by, offset, limit, params, metrics, tags)
    available = _available(ws)
    experiments = sorted({exp.name for exp in ws.index.experiments(ws.runs_tip)[0].values()}
                         | set(ws.index.experiment_names()) | ({experiment} if experiment else set()))
    out: dict[str, Any] = {"total": 0, "total_capped": False, "offset": offset, "limit": limit, "runs": [],
                           "columns": {"params": params or [], "metrics": metrics or [], "tags": tags or []},
                           "available": available, "experiments": experiments, "error": None,
                           "filter": filter or "", "order_by": order_by or "", "experiment": experiment or "",
                           "active": _active(ws, experiment), "indexing": False, "waiting": False,
                           "columns_given": any(kind is not None for kind in (params, metrics, tags))}
    try:
        compile_query(filter or None)
    except BadInputError as exc:
        out["error"] = {"message": exc.message, "position": _position(exc.message), "field": "filter"}
        return out
    try:
        query = compile_query(filter or None, order_by or None, experiment or None, limit, offset)
    except BadInputError as exc:
        out["error"] = {"message": exc.message, "position": _position(exc.message), "field": "order_by"}
        return out
    # a filter's matches are counted up to COUNT_CAP (counting them all costs a scan of every run);
    # the plain listing of every run or an experiment's is counted whole
    capped = query.where is not None
    total = ws.index.count_matching(query, COUNT_CAP + 1 if capped else None)
    out["total"], out["total_capped"] = (min(total, COUNT_CAP), total > COUNT_CAP) if capped else (total, False)
    found = ws.index.search(query)
    chosen = {"metrics": metrics if metrics is not None else _default_columns(found, "metrics"),
              "params": params if params is not None else _default_columns(found, "params"),
              "tags": tags if tags is not None else []}
    out["columns"] = chosen
    out["order_by_key"] = _header_key(query.order)
    out["runs"] = [_short_run(run, chosen) for run in found]
    children = ws.index.child_counts([run["id"] for run in out["runs"]])
    parents = {run["parent"] for run in out["runs"] if run["parent"]}
    names = {run.id: run.name for run in found}
    for run in out["runs"]:
        run["children"] = children.get(run["id"], 0)
        if run["parent"] and run["parent"] not in names and len(parents) <= 50:
            names[run["parent"]] = _run_name(ws, run["parent"])
        run["parent_name"] = names.get(run["parent"]) if run["parent"] else None
    return out


_KINDS = {"metric": "metrics", "param": "params", "tag": "tags"}


def sort_key(kind: str, key: str) -> str:
    """``metrics.`a.b``` as a sort key names a key: backquoted, or double-quoted when it holds a backquote."""
    return f"{kind}.`{key}`" if "`" not in key else f'{kind}."{key}"'


def _header_key(order) -> str | None:
    """The one sort key as the column headers write it (``metrics.`acc` DESC``), however it was typed; else None."""
    if len(order) != 1 or order[0].numeric:
        return None
    key = order[0]
    attribute = {"name": "run_name"}.get(key.name, key.name)  # the Run header's word, MLflow's
    name = f"attributes.{attribute}" if key.field == "attr" else sort_key(_KINDS[key.field], key.name)
    return name + (" DESC" if key.descending else "")


def _run_name(ws: Workspace, run_id: str) -> str | None:
    """The name of an indexed run, or None (a parent run not in this clone, or no run id at all)."""
    try:
        return ws.index.run(run_id).name
    except GitmlError:
        return None


def _runs_while_indexing(ws: Workspace, experiment, filter, order_by, offset, limit, params, metrics,
                         tags) -> dict[str, Any]:
    """:func:`runs_page` while the index is being built: the newest runs, read off the runs ref's map."""
    waiting = bool(experiment or filter or order_by or offset)
    found = [] if waiting else (ws.index.newest(limit) or [])
    chosen = {"metrics": metrics if metrics is not None else _default_columns(found, "metrics"),
              "params": params if params is not None else _default_columns(found, "params"),
              "tags": tags or []}
    shown = {kind: sorted({key for run in found for key in getattr(run, kind)}) for kind in ("params", "metrics")}
    shown["tags"] = sorted({key for run in found for key in run.tags} - SYNTHETIC_TAGS)
    runs = [_short_run(run, chosen) | {"parent_name": None, "children": None} for run in found]
    return {"total": None, "total_capped": False, "offset": offset, "limit": limit,
            "runs": runs, "columns": chosen, "available": shown,
            "experiments": sorted({run.experiment for run in found} | ({experiment} if experiment else set())),
            "error": None, "filter": filter or "", "order_by": order_by or "", "experiment": experiment or "",
            "active": _active(ws, experiment), "indexing": True, "waiting": waiting,
            "columns_given": any(kind is not None for kind in (params, metrics, tags))}


def _active(ws: Workspace, experiment: str | None) -> list[dict[str, Any]]:
    """Runs in progress in this clone (not on the runs ref yet, so not in the table): id, name, experiment, start."""
    from gitml.core import active

    out = []
    for meta in active.list_active(ws.gitml_dir):
        if experiment and meta.get("experiment") != experiment:
            continue
        out.append({key: meta.get(key) for key in ("id", "name", "experiment", "start_time", "host")}
                   | {"alive": meta.get("alive")})
    return out


def _position(message: str) -> int | None:
    """The 0-based position a filter error names (``… at position 12``), or None."""
    import re

    found = re.search(r"position (\d+)", message)
    return int(found.group(1)) - 1 if found else None


def _commit_info(ws: Workspace, sha: str | None) -> dict[str, Any] | None:
    if not sha:
        return None
    try:
        details = ws.repo.commit_details(sha)
    except (GitmlError, KeyError, ValueError):
        return {"sha": sha, "missing": True}
    return {"sha": sha, "missing": False, "message": details["message"].strip()[:4000], "author": details["author"],
            "time": datetime.fromtimestamp(details["time"], tz=timezone.utc).isoformat(timespec="seconds")}


def resolve(ws: Workspace, run_id: str) -> str:
    """The full id of a run id or prefix.

    Raises:
        RunNotFoundError: no such run, several, or text that is no run id at all (a 404 either way).
    """
    if len(run_id) > 64:  # no run id is this long; an error need not repeat it whole
        raise RunNotFoundError(f"no run {run_id[:40]!r}… ({len(run_id):,} characters)")
    try:
        return ws.resolve_run(run_id)
    except RunNotFoundError:
        raise
    except BadInputError as exc:
        raise RunNotFoundError(exc.message) from None


def run_page(ws: Workspace, run_id: str, indexing: bool = False) -> dict[str, Any]:
    """One run: provenance, params, latest metrics and which have a history, tags, artifacts, versions.

    Args:
        ws: the open Workspace.
        run_id: a run id or unique prefix.
        indexing: the query index is being built: the child runs are not looked for.

    Returns:
        ``{run: Run.to_dict(), commit: {sha, message, author, time, missing}, patch, history_keys:
        {key: points}, sampled, artifacts: [{path, size, digest, cached, preview}], models: [{path, flavors,
        signature}], versions: [{model, version, stages}], children: [{id, name, status, start_time,
        metrics}], indexing, live}``; ``children`` are the runs naming it as their parent
        (``mlflow.parentRunId``). With ``indexing`` (the index is being built) the children are
        not looked for: ``children`` is None. A run still in progress in this clone (not on the
        runs ref yet) is shown as logged so far: status ``RUNNING``, ``live`` ``{alive,
        commit_failed}`` (``alive`` None when its process runs on another host), its artifacts
        by path only; ``live`` is None for a committed run.

    Raises:
        RunNotFoundError: no such run (the server answers 404).
    """
    from gitml.tracking.query import get_run

    saved = alive = None
    try:
        run = get_run(resolve(ws, run_id), repo=ws)
        points, patch = run.history or [], run.patch
    except RunNotFoundError:
        live = _live_run(ws, run_id)
        if live is None:
            raise
        run, points, saved, alive = live
        patch = saved.patch
    counts: dict[str, int] = {}
    for point in points:
        counts[point.key] = counts.get(point.key, 0) + 1
    data = run.to_dict()
    data["metrics"] = {k: number(v) for k, v in run.metrics.items()}
    committed = saved is None
    return {
        "run": data,
        "commit": _commit_info(ws, (run.source or {}).get("commit")),
        "patch": patch,
        "history_keys": counts,
        # history.tsv keeps a sample; the whole one is in the content store
        "sampled": bool(run.full_history) if committed else False,
        # a run in progress has stored nothing yet: its artifacts by path only
        "artifacts": artifact_list(ws, run.id) if committed else [
            {"path": path, "size": None, "digest": None, "cached": None, "preview": None}
            for path in sorted(saved.log.artifacts)],
        "models": _models(ws, run.id, run.artifacts) if committed else [],
        "versions": _versions(ws, run.id) if committed else [],
        "children": None if indexing else _children(ws, run.id),
        "indexing": indexing,
        "live": None if committed else {"alive": alive, "commit_failed": saved.failed is not None},
    }


def _live_run(ws: Workspace, run_id: str):
    """The run in progress in this clone whose id is ``run_id`` or starts with it, as read now; None if none (or several)."""
    from gitml.core import active

    prefix = run_id.lower()
    if len(prefix) < 4 or len(prefix) > 32 or any(c not in "0123456789abcdef" for c in prefix):
        return None
    root = ws.gitml_dir / active.ACTIVE_DIR
    names = [p.name for p in root.iterdir() if len(p.name) == 32 and p.name.startswith(prefix)] if root.is_dir() else []
    if len(names) != 1:
        return None
    try:
        saved = _read_live(root / names[0])
    except (RunNotFoundError, BadInputError):
        return None  # committed meanwhile, or unreadable
    run, points = _assemble_live(saved)
    alive = next((m.get("alive") for m in active.list_active(ws.gitml_dir) if m.get("id") == run.id), None)
    return run, points, saved, alive


# Runs in progress as last read, per file: (inode, offset read to, what was read). A live page
# asks every 5 s; each look reads only the lines appended since the last (a 200,000-point log
# is 20 MB: 4 s to parse whole). Guarded by a lock: the server answers from several threads.
_LIVE_READS: dict[str, tuple[int, int, Any]] = {}
_LIVE_LOCK = threading.Lock()
_LIVE_KEPT = 16  # runs followed at once, at most


def _read_live(path):
    """A run in progress read incrementally (see :func:`gitml.core.active.load_more`)."""
    import os

    from gitml.core import active

    with _LIVE_LOCK:
        try:
            inode = os.stat(path).st_ino
        except FileNotFoundError:
            _LIVE_READS.pop(str(path), None)
            raise RunNotFoundError(f"no run in progress with id {path.name}") from None
        known = _LIVE_READS.get(str(path))
        saved, offset = (known[2], known[1]) if known and known[0] == inode else (None, 0)
        saved, offset = active.load_more(path, saved, offset)
        _LIVE_READS.pop(str(path), None)
        _LIVE_READS[str(path)] = (inode, offset, saved)
        while len(_LIVE_READS) > _LIVE_KEPT:
            del _LIVE_READS[next(iter(_LIVE_READS))]
        return copy.copy(saved)


def _assemble_live(saved):
    from gitml.tracking.commit import assemble

    run, points = assemble(saved.meta, saved.log, "RUNNING", saved.patch)
    run.end_time, run.updated = None, None
    return run, points


def _children(ws: Workspace, run_id: str) -> list[dict[str, Any]]:
    """The runs whose ``mlflow.parentRunId`` is this run (nested runs, sweep trials): id, name, status, start, at most 500."""
    query = compile_query(f"tags.`{PARENT_TAG}` = '{run_id}'", "attributes.start_time", None, 500)
    return [{"id": child.id, "name": child.name, "status": child.status, "start_time": child.start_time,
             "metrics": {k: number(v) for k, v in child.metrics.items()}} for child in ws.index.search(query)]


def metric_history(ws: Workspace, run_id: str, key: str) -> dict[str, Any]:
    """Every kept point of one metric: ``{run, key, sampled, start, total, live, steps, times, values}`` (times in ms since 1970).

    ``start`` is the run's start time (ms), what a chart's relative time counts from; ``total``
    the points of that metric there are (more than those sent for a sampled run in progress);
    ``live`` whether the run is in progress.

    Columns rather than points, as the chart takes them. A run whose history was sampled when
    committed gives the points kept (``sampled`` is True); a run in progress in this clone, the
    points logged so far, an even sample of :data:`LIVE_POINTS` of them (with the last) when
    there are more (``sampled`` True).

    Raises:
        RunNotFoundError: no such run, or the run has no such metric (the server answers 404).
        BadInputError: a bad key.
    """
    from gitml.core.ids import check_key
    from gitml.tracking.query import get_run


    check_key(key, "metric key")
    live = None
    try:
        run = get_run(resolve(ws, run_id), repo=ws)
        history, sampled = run.history or [], bool(run.full_history)
    except RunNotFoundError:
        live = _live_run(ws, run_id)  # a run in progress: the points it has logged so far
        if live is None:
            raise
        run, history, sampled = live[0], live[1], False
    start = _ms(run.start_time) if run.start_time else None
    points = [p for p in history if p.key == key]
    total = len(points)
    if live is not None and total > LIVE_POINTS:  # not sampled yet, as a committed run is: an even sample
        stride = total / LIVE_POINTS
        points = [points[int(i * stride)] for i in range(LIVE_POINTS - 1)] + [points[-1]]
        sampled = True
    if not points and key not in run.metrics:
        raise RunNotFoundError(f"run {run.id} has no metric {key!r}")
    return {"run": run.id, "key": key, "sampled": sampled, "start": start, "total": total, "live": live is not None,
            "steps": [p.step for p in points],
            "times": [_ms(p.timestamp) for p in points],
            "values": [number(p.value) for p in points]}


def _ms(stamp: str) -> int:
    return int(datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() * 1000)


def artifact_list(ws: Workspace, run_id: str) -> list[dict[str, Any]]:
    """The run's artifact files (folders expanded from manifests in the local cache), each with whether its bytes are here."""
    from gitml.core import store

    run = ws.index.run(run_id)
    out: list[dict[str, Any]] = []
    for name, entry in sorted((run.artifacts or {}).items()):
        if entry.get("kind") == "dir":
            try:
                files = ws.manifest(entry["sha256"], f"run {run_id[:8]} artifact {name}")
            except GitmlError as exc:
                out.append({"path": name + "/", "size": entry.get("size", 0), "digest": None, "cached": False,
                            "problem": f"{exc.message}: `gitml artifacts pull {run_id[:8]}` brings it"})
                continue
            for item in files:
                path = f"{name}/{item['path']}"
                digest = item.get("sha256")
                out.append({"path": path, "size": item.get("size", 0), "digest": digest,
                            "cached": bool(digest) and store.object_path(ws.cache, digest).is_file()})
        else:
            digest = entry.get("sha256")
            out.append({"path": name, "size": entry.get("size", 0), "digest": digest,
                        "cached": bool(digest) and store.object_path(ws.cache, digest).is_file()})
    return out


def artifact_file(ws: Workspace, run_id: str, path: str) -> tuple[str, Any]:
    """``(name, local file)`` of one artifact file of a run, from the content store.

    Raises:
        BadInputError: ``path`` is not a safe artifact path, or the run has no such file.
        GitmlError: its bytes are not in the local cache (``gitml artifacts pull`` brings them).
    """
    from gitml.core import store

    check_artifact_path(path)
    full = resolve(ws, run_id)
    for item in artifact_list(ws, full):
        if item["path"] == path and item["digest"]:
            if not item["cached"]:
                raise GitmlError(f"{path} is not in the local cache: `gitml artifacts pull {full[:8]}` brings it")
            return path.rsplit("/", 1)[-1], store.object_path(ws.cache, item["digest"])
        if item.get("problem") and path.startswith(item["path"]):  # a folder whose file list is not here
            raise GitmlError(f"{path}: {item['problem']}")
    raise BadInputError(f"run {full[:8]} has no artifact file {path!r}")


def preview(ws: Workspace, run_id: str, path: str) -> dict[str, Any]:
    """How an artifact file shows inline: ``{path, kind, text | rows | image, truncated}``.

    ``kind`` is ``text``, ``json`` (pretty-printed), ``csv`` (``rows``, at most
    :data:`CSV_ROWS`), ``image`` (PNG, JPEG, GIF, WebP: shown from the raw endpoint) or
    ``none`` (binary, or not in the local cache: ``reason`` says).

    Raises:
        RunNotFoundError: no such run.
        BadInputError: ``path`` is not a safe artifact path, or not a file of the run's artifacts.
    """
    from pathlib import PurePosixPath

    suffix = PurePosixPath(path).suffix.lower()
    try:
        _, local = artifact_file(ws, run_id, path)
    except BadInputError:
        raise  # not a path of this run's artifacts: 400 or 404
    except GitmlError as exc:  # its bytes are not here
        return {"path": path, "kind": "none", "reason": exc.message, "available": False}
    if suffix in IMAGE_TYPES:
        problem = image_problem(local, suffix)
        if problem:
            return {"path": path, "kind": "none", "reason": problem}
        return {"path": path, "kind": "image"}
    with open(local, "rb") as handle:
        raw = handle.read(PREVIEW_BYTES + 1)
    truncated = len(raw) > PREVIEW_BYTES
    raw = raw[:PREVIEW_BYTES]
    for bom, encoding in ((b"\xff\xfe", "utf-16-le"), (b"\xfe\xff", "utf-16-be")):
        if raw.startswith(bom):  # UTF-16 text (a Windows export), whose zero bytes are no sign of binary
            body = raw[2:len(raw) - (len(raw) % 2)]
            raw = body.decode(encoding, "replace").encode("utf-8")
            break
    raw = raw.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte order mark is no part of the text
    if b"\x00" in raw:
        return {"path": path, "kind": "none", "reason": "binary file"}
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        if truncated and exc.start >= len(raw) - 3:  # a character cut at the preview's end
            text = raw[:exc.start].decode("utf-8")
        elif suffix in TEXT_SUFFIXES:  # a text file in another encoding (a Latin-1 log): Latin-1 reads any byte
            text = raw.decode("latin-1")
        else:
            return {"path": path, "kind": "none", "reason": "binary file"}
    if suffix == ".json" and not truncated:
        try:
            doc = json.loads(text)
            rows = _split_table(doc)
            if rows is not None:  # log_table's {"columns": [...], "data": [[...]]}: shown as a table
                return {"path": path, "kind": "csv", "rows": [r[:CSV_COLUMNS] for r in rows[:CSV_ROWS + 1]],
                        "truncated": len(rows) > CSV_ROWS + 1 or any(len(r) > CSV_COLUMNS for r in rows)}
            return {"path": path, "kind": "json", "text": json.dumps(doc, indent=2)[:PREVIEW_BYTES], "truncated": False}
        except (ValueError, RecursionError):  # not JSON, or nested deeper than Python reads: shown as text
            pass
    if suffix == ".csv":
        rows, cut = [], False
        for row in csv.reader(io.StringIO(text)):
            cut = cut or len(row) > CSV_COLUMNS
            rows.append(row[:CSV_COLUMNS])
            if len(rows) > CSV_ROWS:  # the header and CSV_ROWS rows
                cut = True
                break
        return {"path": path, "kind": "csv", "rows": rows, "truncated": truncated or cut}
    return {"path": path, "kind": "text", "text": text, "truncated": truncated}


def _split_table(doc: Any) -> list[list[str]] | None:
    """The rows (header first, as text) of a table in pandas' ``split`` JSON, which ``log_table`` writes; else None."""
    if not (isinstance(doc, dict) and set(doc) <= {"columns", "data", "index"} and isinstance(doc.get("columns"), list)
            and isinstance(doc.get("data"), list) and all(isinstance(row, list) for row in doc["data"])):
        return None
    text = lambda v: v if isinstance(v, str) else json.dumps(v)  # noqa: E731
    return [[text(c) for c in doc["columns"]], *([text(v) for v in row] for row in doc["data"])]


# the first bytes of each image kind shown inline: a file is shown as an image only when it is one
_IMAGE_MAGIC = {".png": (b"\x89PNG\r\n\x1a\n",), ".jpg": (b"\xff\xd8\xff",), ".jpeg": (b"\xff\xd8\xff",),
                ".gif": (b"GIF87a", b"GIF89a"), ".webp": (b"RIFF",)}
IMAGE_BYTES = 20 * 1024 * 1024  # larger images are offered for download, not shown


def image_problem(local, suffix: str) -> str | None:
    """Why the file at ``local`` (named with ``suffix``) is not shown as an image, or None when it is.

    Its first bytes must be that kind's (a text file named ``.png`` is not an image), and it
    must be at most :data:`IMAGE_BYTES`.
    """
    import os

    size = os.path.getsize(local)
    if size > IMAGE_BYTES:
        return f"an image of {size:,} bytes: larger than {IMAGE_BYTES // (1024 * 1024)} MiB is not shown (download it)"
    with open(local, "rb") as handle:
        head = handle.read(12)
    if not head.startswith(_IMAGE_MAGIC[suffix]) or (suffix == ".webp" and head[8:12] != b"WEBP"):
        return f"not a {suffix[1:].upper()} image, whatever its name says"
    return None


def _models(ws: Workspace, run_id: str, artifacts: dict[str, Any]) -> list[dict[str, Any]]:
    """The run's MLflow-format models (a folder artifact holding ``MLmodel``): flavors and signature."""
    from gitml.core import yamlfmt

    out = []
    for item in artifact_list(ws, run_id):
        if not item["path"].endswith("/MLmodel") or not item["cached"] or item["path"].count("/") != 1:
            continue
        from gitml.core import store

        try:
            doc = yamlfmt.load_untrusted(store.object_path(ws.cache, item["digest"]).read_text(encoding="utf-8"))
        except (OSError, ValueError, yamlfmt.YamlProblem):
            continue
        if not isinstance(doc, dict):
            continue
        flavors = doc.get("flavors") if isinstance(doc.get("flavors"), dict) else {}
        signature = doc.get("signature") if isinstance(doc.get("signature"), dict) else {}
        out.append({"path": item["path"].split("/")[0], "flavors": sorted(map(str, flavors)),
                    "signature": {k: str(v)[:4000] for k, v in signature.items() if v is not None},
                    "created": str(doc.get("utc_time_created", ""))[:40]})
    return out


def _versions(ws: Workspace, run_id: str) -> list[dict[str, Any]]:
    out = []
    for name, state in sorted(ws.registry_state().items()):
        for version, info in state.versions.items():
            if info.run_id == run_id and not info.deregistered:
                out.append({"model": name, "version": version, "stages": sorted(info.stages), "path": info.path})
    return out


def compare_page(ws: Workspace, run_ids: list[str]) -> dict[str, Any]:
    """N runs side by side: every param and metric row (``gitml runs compare --all``), and the metrics each has a history of.

    Returns:
        ``{sides, rows: [{kind, key, values, status, change, change_pct, verdict}], runs:
        [{id, name}], history_keys: {key: [run ids]}, default_key, params: [keys], metrics: [keys]}``;
        ``default_key`` is the metric with the most points, the one whose curves show first.

    Raises:
        BadInputError: fewer than 2 or more than 20 different runs.
        RunNotFoundError: an id that is no run's.
    """
    from gitml.diff import compare
    from gitml.tracking.query import get_run

    if len(run_ids) > 100:
        raise BadInputError(f"compare takes 2 to 20 runs, got {len(run_ids)}")
    ids = list(dict.fromkeys(resolve(ws, r) for r in run_ids))  # a run named twice is one run
    if not 2 <= len(ids) <= 20:
        raise BadInputError(f"compare takes 2 to 20 different runs, got {len(ids)}: tick them in the runs table")
    result = compare(ids, show_all=True, repo=ws).to_dict()
    history: dict[str, list[str]] = {}
    points: dict[str, int] = {}
    runs = []
    for run_id in ids:
        run = get_run(run_id, repo=ws)
        runs.append({"id": run.id, "name": run.name})
        for point in run.history or []:
            points[point.key] = points.get(point.key, 0) + 1
        for key in sorted({p.key for p in run.history or []}):
            history.setdefault(key, []).append(run.id)
    result["runs"] = runs
    result["history_keys"] = history
    # the curve shown first: the metric with the longest history (a one-point metric is no curve)
    result["default_key"] = max(sorted(points), key=lambda key: points[key]) if points else None
    result["params"] = sorted({row["key"] for row in result["rows"] if row["kind"] == "param"})
    result["metrics"] = sorted({row["key"] for row in result["rows"] if row["kind"] == "metric"})
    return result


def branches_page(ws: Workspace, a: str | None, b: str | None, experiment: str | None = None) -> dict[str, Any]:
    """``gitml diff A B [--experiment E]`` between two revisions, and the revisions to pick from.

    Args:
        ws: the open Workspace.
        a: side A (a branch, tag, commit or run id; ``X...Y`` as in git); None shows the form only.
        b: side B (default ``HEAD``).
        experiment: only this experiment's runs stand for a revision.

    Returns:
        ``{a, b, experiment, refs: [branch and tag names], experiments, diff: DiffResult.to_dict()
        or None, error}``: a side that names nothing (or has no run) is ``error``, the page shows it.
    """
    from gitml.diff import diff

    refs = sorted(name.removeprefix("refs/heads/") for name in ws.repo.refs_under("refs/heads/"))
    refs += sorted(name.removeprefix("refs/tags/") for name in ws.repo.refs_under("refs/tags/")
                   if "@" not in name and "#" not in name)  # registry tags are not revisions to compare
    experiments = ws.index.experiment_names()
    out: dict[str, Any] = {"a": a or "", "b": b or "", "experiment": experiment or "", "refs": refs,
                           "experiments": experiments, "diff": None, "error": None}
    if not a:
        return out
    try:
        out["diff"] = diff(a, b or None, experiment=experiment, repo=ws).to_dict()
    except GitmlError as exc:
        out["error"] = exc.message
    return out


def experiments_page(ws: Workspace) -> dict[str, Any]:
    """Every experiment: MLflow's experiments list, with its runs counted.

    Returns:
        ``{experiments: [Experiment.to_dict()], problems: {key: message}}``, most recently
        created first (MLflow's order); ``problems`` names experiment records on the runs ref
        that fail validation (they are left out).
    """
    from gitml.tracking.experiments import search_experiments

    problems: dict[str, str] = {}
    found = search_experiments(repo=ws, problems=problems)
    return {"experiments": [exp.to_dict() for exp in found], "problems": problems}


def registry_page(ws: Workspace) -> dict[str, Any]:
    """Every model: ``{models: [{name, latest, deprecated, stages, versions}], problems}`` (``gitml registry show --json``)."""
    from gitml.registry import overview

    return overview(repo=ws).to_dict()


def model_page(ws: Workspace, model: str) -> dict[str, Any]:
    """One model's versions and its stage timeline, oldest event first.

    Returns:
        ``{name, versions: {version: {...}}, stages, events: [{tag, kind, version, stage, time,
        tagger, message}]}``; ``time`` is ISO 8601 UTC.

    Raises:
        BadInputError: a bad model name; ModelNotFoundError: no such model.
    """
    from gitml.registry import history, show

    state = show(model, repo=ws)[0]
    events = []
    for event in history(model, repo=ws):
        events.append({"tag": event.tag, "kind": event.kind, "version": event.version, "stage": event.stage,
                       "time": (datetime.fromtimestamp(event.time, tz=timezone.utc).isoformat(timespec="seconds")
                                if event.time is not None else None),
                       "tagger": event.tagger, "message": event.title})
    data = state.to_dict()
    for info in data["versions"].values():
        stamp = info.get("registered_at")
        info["registered_at_iso"] = (datetime.fromtimestamp(stamp, tz=timezone.utc).isoformat(timespec="seconds")
                                     if isinstance(stamp, int) else None)
    data["events"] = events
    return data
