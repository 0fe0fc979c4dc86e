"""What a search hands back: runs decoded on first use, as they were when it ran (issue 12, item 5).

A search that matches thousands of runs costs its SQL; each run's fields are read from the index
when first used. These tests hold such runs to the runs ``get_run`` reads, and show that a run
changed, deleted or re-indexed after the search still reads as the search saw it.
"""

from __future__ import annotations

import copy
import pickle

import pytest
from conftest import git

import gitml as api
from gitml.core import index
from gitml.core.errors import BadInputError
from gitml.core.gitrepo import GitRepo


@pytest.fixture
def runs(repo):
    """Five finished runs, acc 0.1 … 0.5, and the index built."""
    ids = [api.commit_run(name=f"r{n}", params={"n": n, "opt": "adam"}, metrics={"acc": n / 10},
                          tags={"team": "a"}, repo=repo).id for n in range(1, 6)]
    return ids


def test_found_runs_equal_the_runs_get_run_reads(repo, runs):
    found = api.search_runs(order_by="metrics.acc DESC", repo=repo)
    assert [r.id for r in found] == runs[::-1]
    assert all(isinstance(r, index.IndexedRun) for r in found)
    for run in found:
        full = api.get_run(run.id, repo=repo)
        full.history = None  # a search gives no history, as before
        assert run == full and full == run
        assert run.to_dict() == full.to_dict()
    assert found[0].metrics == {"acc": 0.5} and found[0].params == {"n": 5, "opt": "adam"}
    assert found[0].name == "r5" and found[0].status == "FINISHED"


def test_a_run_reads_as_the_search_saw_it_after_it_is_deleted(repo, runs):
    found = api.search_runs(order_by="metrics.acc DESC", repo=repo)
    api.delete_run(runs[-1], repo=repo)  # the search's first run, before any field was read
    api.search_runs(repo=repo)  # the index moves on past the search's tip
    assert found[0].id == runs[-1] and found[0].metrics == {"acc": 0.5} and found[0].name == "r5"
    assert [r.name for r in found] == ["r5", "r4", "r3", "r2", "r1"]


def test_a_run_reads_as_the_search_saw_it_after_the_index_is_rebuilt(repo, runs):
    found = api.search_runs(filter="metrics.acc > 0.25", order_by="metrics.acc", repo=repo)
    api.rebuild_index(repo=repo)  # a new index file: the search's rows are gone with the old one
    api.commit_run(name="later", metrics={"acc": 0.9}, repo=repo)
    assert [(r.name, r.metrics["acc"]) for r in found] == [("r3", 0.3), ("r4", 0.4), ("r5", 0.5)]


def test_runs_pickle_and_copy_whole(repo, runs):
    found = api.search_runs(order_by="metrics.acc", repo=repo)
    back = pickle.loads(pickle.dumps(found))
    assert back == found and back[2].params["n"] == 3
    clone = copy.deepcopy(found[1])
    clone.tags["team"] = "b"
    assert found[1].tags["team"] == "a"


def test_a_run_whose_commit_is_gone_is_marked(repo, runs):
    git(repo, "commit", "-q", "--allow-empty", "-m", "second")
    later = api.commit_run(name="on-second", metrics={"acc": 0.7}, repo=repo).id
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    git(repo, "reflog", "expire", "--expire=now", "--all")
    git(repo, "gc", "-q", "--prune=now")
    by_id = {r.id: r for r in api.search_runs(repo=repo)}
    assert by_id[later].source.get("commit_missing") is True
    assert "commit_missing" not in by_id[runs[0]].source


def test_max_results_is_mlflows_name_for_limit(repo, runs):
    assert [r.name for r in api.search_runs(order_by="metrics.acc DESC", max_results=2, repo=repo)] == ["r5", "r4"]
    assert len(api.search_runs(limit=3, max_results=3, repo=repo)) == 3
    with pytest.raises(BadInputError, match="differ"):
        api.search_runs(limit=2, max_results=3, repo=repo)
    with pytest.raises(BadInputError, match="bad max_results"):
        api.search_runs(max_results=-1, repo=repo)


def test_reading_a_search_result_costs_one_index_read_per_chunk(repo, runs, monkeypatch):
    found = api.search_runs(order_by="metrics.acc", repo=repo)
    reads = []
    real = index._Documents._read
    monkeypatch.setattr(index._Documents, "_read", lambda self, wanted: (reads.append(len(wanted)), real(self, wanted)))
    assert [r.metrics["acc"] for r in found] == [0.1, 0.2, 0.3, 0.4, 0.5]
    assert reads == [5]  # all five in the first chunk, fetched at once
    with GitRepo(repo) as g:
        assert index.index_path(g).exists()
