"""The query index's questions (gitml.core.index.Index) and the tracking API over one Workspace."""

from __future__ import annotations

import json
import os
import subprocess

import pytest
from conftest import git, gitml

import gitml as api
from gitml.core.errors import BadInputError, CorruptRunError, RunNotFoundError
from gitml.core.filter import compile_query
from gitml.core.runsref import RUNS_REF
from gitml.core.workspace import open_workspace
from gitml.tracking import query

BAD_ID = "ba" + "d" * 30


def _commit(repo, message, **files) -> str:
    for name, text in files.items():
        (repo / name).write_text(text)
    git(repo, "add", ".")
    git(repo, "commit", "-qm", message)
    return git(repo, "rev-parse", "HEAD").strip()


def _add_unreadable_run(repo, run_id: str = BAD_ID) -> None:
    """Put a run whose run.yaml is not YAML onto the runs ref, with git plumbing only."""
    env = {**os.environ, "GIT_INDEX_FILE": str(repo / ".git" / "crafted-index")}

    def run(*args: str, data: bytes | None = None) -> str:
        proc = subprocess.run(["git", *args], cwd=repo, env=env, input=data, capture_output=True, check=True)
        return proc.stdout.decode().strip()

    tip = run("rev-parse", RUNS_REF)
    run("read-tree", tip)
    blob = run("hash-object", "-w", "--stdin", data=b"id: [unclosed\n")
    run("update-index", "--add", "--cacheinfo", f"100644,{blob},runs/{run_id[:2]}/{run_id}/run.yaml")
    commit = run("commit-tree", run("write-tree"), "-p", tip, "-m", "crafted")
    run("update-ref", RUNS_REF, commit, tip)


def test_index_answers_searches_and_single_runs(repo):
    a = api.commit_run(name="a", experiment="x", metrics={"acc": 0.5}, repo=repo)
    b = api.commit_run(name="b", experiment="y", metrics={"acc": 0.9}, repo=repo)
    _add_unreadable_run(repo)
    with open_workspace(repo) as ws:
        found = ws.index.search(compile_query("metrics.acc > 0.1", "metrics.acc DESC"))
        assert [r.name for r in found] == ["b", "a"]
        assert found[0].metrics == {"acc": 0.9} and found[0].patch is None
        assert ws.index.search_ids(compile_query(experiment="x")) == [a.id]
        assert ws.index.search_ids(compile_query(limit=1)) == [b.id]  # newest first
        assert ws.index.count() == 2
        assert ws.index.run(a.id).name == "a"
        with pytest.raises(CorruptRunError, match=f"run {BAD_ID}"):
            ws.index.run(BAD_ID)
        with pytest.raises(RunNotFoundError, match="no run 0000"):
            ws.index.run("0" * 32)
        assert [entry for entry, _ in ws.index.corrupt_runs()] == [BAD_ID]


def test_nearest_finished_runs_walks_commits_in_order(repo):
    first = git(repo, "rev-parse", "HEAD").strip()
    done = api.commit_run(name="done", experiment="x", repo=repo)
    api.commit_run(name="failed", status="FAILED", repo=repo)
    second = _commit(repo, "second", **{"b.txt": "b\n"})
    api.commit_run(name="other", experiment="y", repo=repo)
    third = _commit(repo, "third", **{"c.txt": "c\n"})
    with open_workspace(repo) as ws:
        commit, runs = ws.index.nearest_finished_runs([third, second, first])
        assert commit == second and [r.name for r in runs] == ["other"]
        assert ws.index.nearest_finished_runs([third, second, first], "x") == (first, [ws.index.run(done.id)])
        assert ws.index.nearest_finished_runs([third]) is None
        assert ws.index.nearest_finished_runs([third, second], "x") is None
        assert ws.index.nearest_finished_runs([]) is None
        assert {r.name for r in ws.index.runs_at([first], status=None)} == {"done", "failed"}


def test_one_workspace_serves_every_query_and_follows_its_own_writes(repo):
    with open_workspace(repo) as ws:
        one = api.commit_run(name="one", metrics={"m": 1.0}, repo=ws)
        two = api.commit_run(name="two", metrics={"m": 2.0}, repo=ws)
        assert query.count_runs(repo=ws) == 2
        assert query.resolve_run_id(one.id[:6], repo=ws) == one.id
        assert query.get_run(two.id[:6], repo=ws).metrics == {"m": 2.0}
        assert query.delete_run(one.id[:6], repo=ws) == one.id
        assert [r.name for r in query.search_runs(repo=ws)] == ["two"]  # the open index followed
        assert query.rebuild_index(repo=ws) == 1
        assert [r.id for r in query.search_runs(order_by="metrics.m", repo=ws)] == [two.id]
        assert query.corrupt_runs(repo=ws) == [] and query.list_active_runs(repo=ws) == []
        with pytest.raises(RunNotFoundError):
            query.resolve_run_id(one.id, repo=ws)
        assert ws.repo.root == repo  # the workspace stays open: whoever opened it closes it
    assert query.count_runs(repo=repo) == 1


def test_search_refuses_bad_input_before_reading(repo):
    for kwargs, fragment in (({"filter": "metrics.acc >"}, "bad filter"), ({"order_by": "x y"}, "bad order_by"),
                             ({"limit": "3"}, "bad limit"), ({"experiment": [3]}, "bad experiment")):
        with pytest.raises(BadInputError, match=fragment):
            api.search_runs(repo=repo, **kwargs)


def test_commit_run_with_dash_C_reads_relative_paths_from_that_directory(repo, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    for where, value in ((repo, 1), (elsewhere, 99)):  # same names in both: only repo's may be read
        (where / "model.pkl").write_bytes(b"m" * value)
        (where / "p.yaml").write_text(f"lr: {value}\n")
        (where / "m.json").write_text(f'{{"acc": {value}}}')
    result = gitml(elsewhere, "-C", "../repo", "commit-run", "-n", "via-C", "--params", "p.yaml",
                   "--metrics", "m.json", "-a", "model.pkl")
    assert result.code == 0 and result.err == "", result.err
    run = api.get_run(result.out.strip(), repo=repo)
    assert (run.params, run.metrics) == ({"lr": 1}, {"acc": 1.0})
    assert run.artifacts["model.pkl"]["size"] == 1
    missing = gitml(elsewhere, "-C", "../repo", "commit-run", "-a", "gone.pkl")
    assert missing.code == 2
    assert missing.err.strip() == f"gitml: error: artifact path does not exist: {repo.resolve() / 'gone.pkl'}"
    listed = json.loads(gitml(elsewhere, "-C", "../repo", "runs", "list", "--json").out)
    assert [r["name"] for r in listed] == ["via-C"]


def test_a_search_result_reads_fields_whose_default_is_none_from_its_document(repo):
    """A field with a class default (None) must not answer before the document is read."""
    with api.start_run(description="hello", repo=repo) as made:
        pass
    for field in ("description", "end_time", "updated", "user", "gitml_version"):
        (found,) = api.search_runs(repo=repo)
        assert getattr(found, field) == getattr(api.get_run(made.id, repo=repo), field) is not None, field
