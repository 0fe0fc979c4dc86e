"""The writer keeps the query index current (issue 12, item 3).

A process that commits runs brings an index that reflected the previous tip to the new one in
the same step, so the first search after a sweep reads nothing from the ref. These tests hold
the index the writers leave to exactly what a rebuild from the ref makes, with real processes
writing in parallel, and check that an index at another tip, or none, is left to the readers.
"""

from __future__ import annotations

import math
import sqlite3
import subprocess
import sys
import textwrap

from conftest import git

import gitml as api
from gitml.core import index, runsref
from gitml.core.gitrepo import GitRepo


def _dump(path) -> dict:
    """Every row of the index's run tables, sorted, and its tip (NaN made comparable)."""
    conn = sqlite3.connect(path)
    try:
        def rows(sql):
            return sorted(tuple("nan" if isinstance(v, float) and math.isnan(v) else v for v in row)
                          for row in conn.execute(sql))
        # rid, the integer key child rows use, depends on the order runs went in: compare by id.
        children = {t: sorted(row[:1] + row[2:] for row in rows(f"SELECT r.id, c.* FROM {t} c JOIN runs r ON r.rid = c.run"))  # noqa: S608
                    for t in ("params", "metrics", "tags")}
        return {"tip": conn.execute("SELECT value FROM meta WHERE key = 'tip'").fetchone(),
                "runs": sorted(row[1:] for row in rows("SELECT * FROM runs")),
                "corrupt": rows("SELECT * FROM corrupt"), **children}
    finally:
        conn.close()


def _index_file(repo):
    with GitRepo(repo) as g:
        return index.index_path(g)


def _tip(repo):
    return git(repo, "rev-parse", runsref.RUNS_REF).strip()


def _rebuilt(repo) -> dict:
    """The index a rebuild from the ref makes, in a copy of the file's place."""
    path = _index_file(repo)
    for suffix in ("", "-wal", "-shm"):
        p = path.with_name(path.name + suffix)
        if p.exists():
            p.unlink()
    api.search_runs(repo=repo)  # opens and builds from scratch
    return _dump(path)


def test_writers_leave_the_index_at_the_new_tip_with_the_rows_a_rebuild_makes(repo):
    api.search_runs(repo=repo)  # someone searched: the index exists, at the empty ref
    with api.start_run(name="fluent", tags={"team": "a", "mlflow.user": "u"}, description="d", repo=repo):
        api.log_params({"flag": True, "opt": None, "lr": 1e-05, "cfg": {"a": 1}})
        api.log_metric("loss", 0.5, step=1)
        api.log_metric("loss", math.nan, step=2)
        api.log_metric("acc", math.inf)
        api.set_tag("mlflow.runName", "renamed")
    api.commit_run(name="one-step", params={"n": 3}, metrics={"m": 0.25}, tags={"pct": "5"}, repo=repo)
    written = _dump(_index_file(repo))
    assert written["tip"] == (_tip(repo),)  # no search ran since: the writers moved it
    assert written == _rebuilt(repo)
    assert [r.name for r in api.search_runs(order_by="run_name", repo=repo)] == ["one-step", "renamed"]


def test_parallel_writing_processes_keep_the_index_exact(repo):
    api.search_runs(repo=repo)
    script = textwrap.dedent("""
        import sys, gitml
        for i in range(8):
            gitml.commit_run(name=f"w{sys.argv[1]}-{i}", params={"i": i}, metrics={"m": i / 8},
                             tags={"w": sys.argv[1]})
    """)
    procs = [subprocess.Popen([sys.executable, "-c", script, str(w)], cwd=repo, stderr=subprocess.PIPE,
                              text=True) for w in range(4)]
    for proc in procs:
        assert proc.wait(timeout=120) == 0, proc.stderr.read()
    after_writers = _dump(_index_file(repo))
    rebuilt = _rebuilt(repo)
    # Each writer moves the index only from its commit's parent, so what they leave is a true
    # state of the ref: usually the last commit's, or an earlier one when two writers raced.
    assert len(rebuilt["runs"]) == 32
    left_at = after_writers["tip"][0]
    ancestor = subprocess.run(["git", "merge-base", "--is-ancestor", left_at, _tip(repo)], cwd=repo)
    assert ancestor.returncode == 0
    if left_at == _tip(repo):
        assert after_writers == rebuilt
    else:  # one run a commit: as many runs as commits up to that tip
        assert len(after_writers["runs"]) == int(git(repo, "rev-list", "--count", left_at))
    found = [r.name for r in api.search_runs(filter="tags.w = '2'", order_by="params.i", repo=repo)]
    assert found == [f"w2-{i}" for i in range(8)]


def test_no_index_is_made_by_a_writer(repo):
    api.commit_run(name="first", params={"a": 1}, repo=repo)
    assert not _index_file(repo).exists()


def test_an_index_at_another_tip_is_left_to_the_readers(repo, tmp_path):
    api.commit_run(name="before", repo=repo)
    api.search_runs(repo=repo)  # index at the tip with "before"
    # Another clone's run arrives by fetch: the ref moves without this index knowing.
    other = tmp_path / "other"
    git(tmp_path, "clone", "-q", str(repo), str(other))
    git(other, "fetch", "-q", "origin", f"{runsref.RUNS_REF}:{runsref.RUNS_REF}")
    api.commit_run(name="elsewhere", repo=other)
    git(repo, "fetch", "-q", str(other), f"+{runsref.RUNS_REF}:{runsref.RUNS_REF}")
    stale = _dump(_index_file(repo))["tip"]
    api.commit_run(name="after", repo=repo)  # its parent is not the index's tip: no update
    assert _dump(_index_file(repo))["tip"] == stale
    assert sorted(r.name for r in api.search_runs(repo=repo)) == ["after", "before", "elsewhere"]
    assert _dump(_index_file(repo)) == _rebuilt(repo)


def test_deleting_a_run_keeps_the_index_current(repo):
    keep = api.commit_run(name="keep", params={"a": 1}, repo=repo)
    gone = api.commit_run(name="gone", params={"a": 2}, repo=repo)
    api.search_runs(repo=repo)
    from gitml.tracking.query import delete_run

    delete_run(gone.id[:8], repo=repo)
    after = _dump(_index_file(repo))
    assert after["tip"] == (_tip(repo),) and [row[0] for row in after["runs"]] == [keep.id]
    assert after == _rebuilt(repo)
