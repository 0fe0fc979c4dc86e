"""Nested runs, chosen columns and metric series (issue 14), through the API and the real CLI."""

from __future__ import annotations

import csv
import json

import pytest
from conftest import gitml, runs_tip

import gitml as api
from gitml.errors import BadInputError, RunNotFoundError


def _sweep(repo) -> tuple[str, list[str]]:
    with api.start_run(name="sweep", repo=repo) as parent:
        api.log_param("grid", "lr")
        children = []
        for lr in (0.1, 0.01):
            with api.start_run(name=f"lr={lr}", nested=True, repo=repo) as child:
                api.log_params({"lr": lr, "depth": 3})
                for step, loss in enumerate((1.0, 0.5, lr)):
                    api.log_metric("loss", loss, step=step)
                with api.start_run(name="fold", nested=True, repo=repo):
                    api.log_metric("loss", 0.7)
            children.append(child.id)
    return parent.id, children


def test_nested_runs_record_their_parent_as_mlflow_does(repo):
    parent, children = _sweep(repo)
    for child in children:
        assert api.get_run(child, repo=repo).tags["mlflow.parentRunId"] == parent
    assert "mlflow.parentRunId" not in api.get_run(parent, repo=repo).tags
    found = api.search_runs(f"tags.mlflow.parentRunId = '{parent}'", repo=repo)
    assert sorted(run.id for run in found) == sorted(children)
    with api.start_run(name="adopted", parent_run_id=parent, repo=repo) as adopted:  # given outright
        pass
    assert api.get_run(adopted.id, repo=repo).tags["mlflow.parentRunId"] == parent
    with api.start_run(name="alone", nested=True, repo=repo) as alone:  # nested with no active run: top level
        pass
    assert api.get_run(alone.id, repo=repo).tags == {}
    with pytest.raises(BadInputError):
        api.start_run(name="x", parent_run_id="not-an-id", repo=repo)
    tip = runs_tip(repo)
    with pytest.raises(RunNotFoundError, match="no run f{32} to be the parent"):  # well formed, but no run
        api.start_run(name="x", parent_run_id="f" * 32, repo=repo)
    assert runs_tip(repo) == tip and api.list_active_runs(repo=repo) == [] and api.active_run() is None
    with api.start_run(name="outer", repo=repo) as outer:  # a parent still in progress counts
        with api.start_run(name="inner", parent_run_id=outer.id, repo=repo) as inner:
            pass
    assert api.get_run(inner.id, repo=repo).tags["mlflow.parentRunId"] == outer.id


def test_runs_list_tree_and_columns(repo):
    parent, children = _sweep(repo)
    tree = gitml(repo, "runs", "list", "--tree", "--columns", "params.lr,metrics.loss", "--csv")
    names = [row[1] for row in csv.reader(tree.out.splitlines()[1:])]
    assert tree.code == 0 and names == ["sweep", "├ lr=0.01", "│ └ fold", "└ lr=0.1", "  └ fold"], tree.out
    assert tree.out.splitlines()[0] == "id,name,params.lr,metrics.loss"
    table = gitml(repo, "runs", "list", "--tree", "--columns", "params.lr")
    names = [line[10:].split("   ")[0].rstrip() for line in table.out.splitlines()[2:]]
    assert names == ["sweep", "├ lr=0.01", "│ └ fold", "└ lr=0.1", "  └ fold"], table.out  # the indent kept
    assert table.err == ""
    every = gitml(repo, "runs", "list", "--columns", "params.*,status", "--csv")
    assert every.out.splitlines()[0] == "id,name,params.depth,params.grid,params.lr,status"
    rows = [line.split(",") for line in every.out.splitlines()[1:]]
    assert sorted(row[4] for row in rows if row[4]) == ["0.01", "0.1"]
    bad = gitml(repo, "runs", "list", "--columns", "loss")
    assert bad.code == 2 and bad.out == "" and "--columns: 'loss'" in bad.err
    # a key no run has is a warning (its column stays, empty); backticks quote a key as in filters
    unknown = gitml(repo, "runs", "list", "--columns", "metrics.los,params.`lr`,tags.x*", "--csv")
    assert unknown.code == 0 and unknown.out.splitlines()[0] == "id,name,metrics.los,params.lr"
    assert unknown.err.splitlines() == ["gitml: warning: --columns: no run listed has metric 'los'",
                                        "gitml: warning: --columns: no run listed has a tag matching 'x*'"]


def test_metric_history_api_and_cli(repo):
    _, children = _sweep(repo)
    child = children[0]
    points = api.get_metric_history(child[:8], "loss", repo=repo)
    assert [(p.step, p.value) for p in points] == [(0, 1.0), (1, 0.5), (2, 0.1)]
    assert api.get_metric_history(child, "nothing", repo=repo) == []
    shown = gitml(repo, "runs", "show", child, "--metric", "loss")
    assert shown.code == 0 and shown.out.startswith("loss  3 points  █▄▁\n"), shown.out
    as_csv = gitml(repo, "runs", "show", child, "--metric", "loss", "--csv")
    assert as_csv.out.splitlines()[:2] == ["step,value,timestamp", f"0,1.0,{points[0].timestamp}"]
    as_json = json.loads(gitml(repo, "runs", "show", child, "--metric", "loss", "--json").out)
    assert [p["value"] for p in as_json] == [1.0, 0.5, 0.1]
    for argv, words in ((("--metric", "nope"), "has no metric 'nope' (it has: loss)"),
                        (("--csv",), "--csv goes with --metric")):
        bad = gitml(repo, "runs", "show", child, *argv)
        assert (bad.code, bad.out) == (2, "") and words in bad.err and bad.err.count("\n") == 1


@pytest.mark.parametrize("key", [5, "", None, "bad\nkey"])
def test_get_metric_history_refuses_a_key_that_is_no_key(repo, key):
    run = api.commit_run(metrics={"loss": 1.0}, repo=repo)
    with pytest.raises(BadInputError):
        api.get_metric_history(run.id, key, repo=repo)


def test_a_series_spanning_the_whole_float_range_draws(repo):
    with api.start_run(repo=repo) as run:
        for value in (-1e308, 1e308, 0.0, float("nan")):
            api.log_metric("wide", value)
    shown = gitml(repo, "runs", "show", run.id, "--metric", "wide")
    assert shown.code == 0 and shown.out.startswith("wide  4 points  ▁█▅ \n"), shown.out
