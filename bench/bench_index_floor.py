"""How fast can the query index be built at all? The rebuild against SQLite's own floor (issue 12, item 2).

The goal is a full index rebuild at ≥ 20,000 runs/s. This script separates what gitml's code
costs from what the index's schema costs, on the same runs, in one process:

- ``rebuild``: gitml's own full rebuild (``open_index`` on a missing file): list the runs ref,
  read every run's files with ``git cat-file --batch``, parse and check them, insert, index;
- ``floor, rows ready``: the same rows (taken from the index just built) inserted into a fresh
  file with the same schema by ``executemany``, then the same secondary indexes built, with
  the journal and fsync off: no git, no parsing, no checks; what the schema costs by itself;
- ``floor, no secondary indexes``: the inserts alone.

Runs from the repository root on any repository with runs (``--repo``), e.g. one made by
``bench/scale_fsck.py --keep``::

    python bench/bench_index_floor.py --repo /path/to/repo

Prints one Markdown table.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

from _common import cpu_model


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repo", type=Path, required=True)
    args = ap.parse_args()
    from gitml.core import index
    from gitml.core.gitrepo import GitRepo

    load = os.getloadavg()[0]
    scratch = Path(tempfile.mkdtemp(prefix="gitml-floor-"))
    with GitRepo(args.repo) as repo:
        index._remove(index.index_path(repo))
        start = time.perf_counter()
        conn = index.open_index(repo)
        rebuild = time.perf_counter() - start
        runs = conn.execute("SELECT count(*) FROM runs").fetchone()[0]
        tables = {name: conn.execute(f"SELECT * FROM {name} ORDER BY rowid").fetchall()  # noqa: S608
                  for name in ("runs", "params", "metrics", "tags")}
        conn.close()
    rows = sum(len(t) for t in tables.values())
    figures = {}
    for label, with_indexes in (("floor, rows ready", True), ("floor, no secondary indexes", False)):
        path = scratch / f"{with_indexes}.sqlite"
        db = sqlite3.connect(path, isolation_level=None)
        db.execute("PRAGMA journal_mode=OFF")
        db.execute("PRAGMA synchronous=OFF")
        db.executescript(index._TABLES)
        for name in index._INDEX_NAMES:
            db.execute(f"DROP INDEX IF EXISTS {name}")
        start = time.perf_counter()
        db.execute("BEGIN")
        for name, data in tables.items():
            db.executemany(f"INSERT INTO {name} VALUES ({','.join('?' * len(data[0]))})", data)  # noqa: S608
        if with_indexes:
            for statement in index._INDEXES:
                db.execute(statement)
        db.execute("COMMIT")
        figures[label] = time.perf_counter() - start
        db.close()
    shutil.rmtree(scratch, ignore_errors=True)
    print(f"{runs:,} runs, {rows:,} rows in runs/params/metrics/tags; {cpu_model()}, {os.cpu_count()} cores; "
          f"load {load:.1f} at the start, {os.getloadavg()[0]:.1f} at the end.\n")
    print("| build | seconds | runs/s |\n|---|---:|---:|")
    print(f"| gitml's full rebuild | {rebuild:.2f} | {runs / rebuild:,.0f} |")
    for label, seconds in figures.items():
        print(f"| {label} | {seconds:.2f} | {runs / seconds:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
