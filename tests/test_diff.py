"""gitml diff / compare against real branches, merges and runs."""

from __future__ import annotations

import json
import math

import pytest
from conftest import git, gitml

import gitml as api
from gitml.core.errors import BadInputError
from gitml.diff import NoRunError


def _commit(repo, message, **files):
    for name, text in files.items():
        (repo / name).write_text(text)
    git(repo, "add", ".")
    git(repo, "commit", "-qm", message)
    return git(repo, "rev-parse", "HEAD").strip()


def _run(repo, name, params=None, metrics=None, experiment=None):
    return api.commit_run(name=name, params=params or {}, metrics=metrics or {}, experiment=experiment,
                          repo=repo)


@pytest.fixture
def branches(repo):
    """main with a run, feature branched off it with a changed param and better/worse metrics."""
    (repo / "gitml.yaml").write_text("metrics:\n  acc: max\n  loss: {direction: min, tolerance: 0.05}\n")
    _commit(repo, "config")
    _run(repo, "base", {"lr": 0.1, "model": "rf", "depth": 8}, {"acc": 0.80, "loss": 0.50})
    git(repo, "checkout", "-q", "-b", "feature")
    _commit(repo, "feature work", **{"train.py": "print('v2')\n"})
    _run(repo, "feat", {"lr": 0.2, "model": "rf", "trees": 100}, {"acc": 0.85, "loss": 0.53})
    git(repo, "checkout", "-q", "main")
    return repo


def test_diff_branches_shows_only_changes(branches):
    result = api.diff("main", "feature", repo=branches)
    by_key = {(r.kind, r.key): r for r in result.rows}
    assert set(by_key) == {("param", "lr"), ("param", "depth"), ("param", "trees"), ("metric", "acc"),
                           ("metric", "loss")}
    assert by_key["param", "lr"].change == pytest.approx(0.1) and by_key["param", "lr"].change_pct == pytest.approx(100)
    assert by_key["param", "depth"].status == "removed" and by_key["param", "trees"].status == "added"
    assert by_key["metric", "acc"].verdict == "improvement"
    assert by_key["metric", "loss"].verdict == "within-tolerance"
    assert [s.run.name for s in result.sides] == ["base", "feat"]
    everything = api.diff("main", "feature", show_all=True, repo=branches)
    assert ("param", "model") in {(r.kind, r.key) for r in everything.rows}
    assert {r.kind for r in api.diff("main", "feature", metrics_only=True, repo=branches).rows} == {"metric"}
    assert [r.key for r in api.diff("main", "feature", key="l*", repo=branches).rows] == ["lr", "loss"]


def test_fail_on_regression_and_markdown(branches):
    _run(branches, "worse", {"lr": 0.1, "model": "rf", "depth": 8}, {"acc": 0.70, "loss": 0.9})
    ok = gitml(branches, "diff", "HEAD", "feature", "--fail-on-regression", "--select", "max:metrics.acc")
    assert ok.code == 0, ok.err  # the best run on main is "base": feature only improves acc
    bad = gitml(branches, "diff", "feature", "main", "--fail-on-regression", "--md")
    assert bad.code == 1 and "regression beyond tolerance: acc, loss" in bad.err
    assert len(bad.err.strip().splitlines()) == 1
    assert _md_rows(bad.out)[("metric", "acc")] == ["metric", "acc", "0.85", "0.7", "-0.15 ▼", "-17.65%"]
    assert bad.out.startswith("- A: feature commit")


def _md_rows(out: str) -> dict:
    """The Markdown table of ``out`` as {(kind, name): cells}, after checking its shape."""
    table = [line for line in out.splitlines() if line.startswith("|")]
    assert table[0].split("|")[1:-1] == [f" {h:<{len(c) - 2}} " for h, c in
                                         zip(["kind", "name", "A", "B", "change", "change %"],
                                             table[0].split("|")[1:-1], strict=True)]
    assert set(table[1].replace("|", "")) == {"-"}
    assert {len(line) for line in table} == {len(table[0])}  # columns padded to one width
    rows = [[c.strip() for c in line[2:-2].split(" | ")] for line in table[2:]]
    return {(r[0], r[1]): r for r in rows}


def test_markdown_escapes_pipes_and_newlines_in_values(branches):
    _run(branches, "odd", {"lr": 0.1, "model": "a|b\n| forged | row |", "depth": 8}, {"acc": 0.8, "loss": 0.5})
    result = gitml(branches, "diff", "feature", "main", "--md", "-k", "model")
    assert result.code == 0, result.err
    rows = [line for line in result.out.splitlines() if line.startswith("|")]
    assert len(rows) == 3 and "forged" not in "".join(rows[:2])
    assert rows[2].startswith("| param  | model  | rf  | ") and "| a\\|b\\n\\| forged \\| row \\| |" in rows[2]
    assert rows[2].rstrip().endswith("| changed  |            |")


def test_triple_dot_uses_the_merge_base(branches):
    _commit(branches, "main moves on", **{"other.py": "x = 1\n"})
    _run(branches, "main-later", {"lr": 0.5}, {"acc": 0.99})
    result = api.diff("main...feature", repo=branches)
    assert [s.run.name for s in result.sides] == ["base", "feat"]
    assert result.sides[0].spec == "merge-base(main,feature)"


def test_single_side_compares_with_head_and_walks_ancestors(branches):
    _commit(branches, "no run here", **{"notes.md": "hi\n"})
    result = api.diff("feature", repo=branches)
    head_side = result.sides[1]
    assert head_side.run.name == "base" and head_side.distance == 1
    assert any("1 first-parent commit(s) back" in n for n in result.notes)
    with pytest.raises(NoRunError, match="'HEAD'"):
        api.diff("feature", "HEAD", max_depth=0, repo=branches)
    out = gitml(branches, "diff", "feature", "HEAD", "--max-depth", "0")
    assert out.code == 1 and "HEAD" in out.err and len(out.err.strip().splitlines()) == 1


def test_same_commit_says_so(branches):
    result = api.diff("main", "main", repo=branches)
    assert result.same_commit and result.rows == []
    out = gitml(branches, "diff", "main", "main")
    assert out.code == 0 and "both sides are commit" in out.out


def test_selection_experiment_and_nan(repo):
    _run(repo, "a1", {"opt": "adam"}, {"acc": 0.7, "loss": float("nan")}, experiment="x")
    _run(repo, "a2", {"opt": "sgd"}, {"acc": 0.9, "loss": float("nan")}, experiment="x")
    _run(repo, "b1", {"opt": "adam"}, {"acc": 0.5, "loss": 1.0}, experiment="y")
    latest = api.diff("HEAD", "HEAD", experiment="x", repo=repo).sides[0].run.name
    assert latest == "a2"
    assert api.diff("HEAD", "HEAD", select="min:metrics.acc", repo=repo).sides[0].run.name == "b1"
    assert api.diff("HEAD", "HEAD", select="best:metrics.acc", repo=repo).sides[0].run.name == "a2"
    rows = {r.key: r for r in api.diff("run:" + _id(repo, "a1"), "run:" + _id(repo, "b1"), repo=repo).rows}
    assert rows["opt"].status == "same" if "opt" in rows else True
    assert math.isnan(rows["loss"].values[0]) and rows["loss"].change is not None
    nan_pair = api.diff("run:" + _id(repo, "a1"), "run:" + _id(repo, "a2"), repo=repo)
    assert "loss" not in {r.key for r in nan_pair.rows}  # NaN and NaN: unchanged
    assert {r.key: r.status for r in nan_pair.rows}["opt"] == "changed"
    assert nan_pair.rows[0].change is None or nan_pair.rows[0].kind == "metric"
    data = json.loads(gitml(repo, "diff", "run:" + _id(repo, "a1"), "run:" + _id(repo, "b1"), "--json").out)
    assert set(data) == {"sides", "same_commit", "notes", "rows", "regressions", "code_stat"}
    assert {r["key"]: r["values"] for r in data["rows"]}["loss"] == ["nan", 1.0]
    with pytest.raises(BadInputError):
        api.diff("HEAD", select="best:acc", repo=repo)


def _id(repo, name):
    (run,) = [r for r in api.search_runs(repo=repo) if r.name == name]
    return run.id


def test_run_prefix_that_is_also_a_branch(repo):
    first = _run(repo, "first", {"v": 1})
    _commit(repo, "second commit", **{"b.txt": "b\n"})
    _run(repo, "second", {"v": 2})
    prefix = first.id[:6]
    git(repo, "branch", prefix, "HEAD")  # a branch spelled like the first run's id prefix
    as_rev = api.diff(prefix, "HEAD", show_all=True, repo=repo)
    assert as_rev.sides[0].kind == "rev" and as_rev.sides[0].run.name == "second"
    as_run = api.diff(f"run:{prefix}", "HEAD", repo=repo)
    assert as_run.sides[0].run.name == "first"
    assert [r.values for r in as_run.rows] == [[1, 2]]
    bad = gitml(repo, "diff", "no-such-branch")
    assert bad.code == 2 and "neither a git revision nor a run" in bad.err
    # git's two-dot ranges and negations name several commits, not one: bad input, not an internal error
    for spec in ("HEAD~1..HEAD", "^HEAD", "..HEAD", "HEAD^@"):
        bad = gitml(repo, "diff", spec)
        assert bad.code == 2 and bad.err.count("\n") == 1 and "neither a git revision nor a run" in bad.err, spec


def test_compare_and_code_stat(branches):
    ids = [r.id for r in api.search_runs(repo=branches)]
    result = api.compare(ids, repo=branches)
    assert len(result.sides) == 2 and {r.key for r in result.rows} >= {"lr", "acc"}
    out = gitml(branches, "compare", *[i[:8] for i in ids], "--csv")
    assert out.code == 0 and out.out.splitlines()[0].startswith("kind,name,")
    stat = api.diff("main", "feature", code=True, repo=branches).code_stat
    assert "train.py" in stat
    assert gitml(branches, "compare", ids[0]).code == 2


@pytest.mark.parametrize("old, new, goal, verdict", [
    (0.5, float("nan"), "max", "regression"),
    (0.5, float("nan"), "min", "regression"),
    (float("nan"), 0.5, "max", "improvement"),
    (float("nan"), float("-inf"), "max", "regression"),
    (float("nan"), float("inf"), "min", "regression"),
    (0.5, float("inf"), "max", "improvement"),
    (0.5, float("-inf"), "max", "regression"),
    (0.5, float("inf"), "min", "regression"),
    (float("inf"), 0.5, "max", "regression"),
    (float("-inf"), 0.5, "max", "improvement"),
])
def test_nan_and_infinity_verdicts(repo, old, new, goal, verdict):
    # A tolerance, even a relative one, never covers NaN or an infinite move the wrong way.
    (repo / "gitml.yaml").write_text(f"metrics:\n  acc: {{direction: {goal}, tolerance: 0.5, relative: true}}\n")
    a = _run(repo, "a", metrics={"acc": old})
    b = _run(repo, "b", metrics={"acc": new})
    (row,) = api.diff(f"run:{a.id}", f"run:{b.id}", repo=repo).rows
    assert row.verdict == verdict


def test_fail_on_regression_when_a_metric_becomes_nan_or_goes_missing(repo):
    (repo / "gitml.yaml").write_text("metrics:\n  acc: max\n  loss: min\n")
    a = _run(repo, "a", metrics={"acc": 0.5, "loss": 0.3})
    b = _run(repo, "b", metrics={"acc": float("nan"), "loss": 0.3})
    out = gitml(repo, "diff", f"run:{a.id}", f"run:{b.id}", "--fail-on-regression")
    assert out.code == 1 and out.err.splitlines() == ["gitml: error: regression beyond tolerance: acc"]
    assert "nan ▼" in out.out
    c = _run(repo, "c", metrics={"acc": 0.6})  # loss, which has a goal, is gone
    gone = api.diff(f"run:{a.id}", f"run:{c.id}", repo=repo)
    assert [(r.key, r.status, r.verdict) for r in gone.rows] == [("acc", "changed", "improvement"),
                                                                 ("loss", "removed", "regression")]
    back = api.diff(f"run:{b.id}", f"run:{a.id}", repo=repo)
    assert {r.key: r.verdict for r in back.rows} == {"acc": "improvement"}
    assert gitml(repo, "diff", f"run:{b.id}", f"run:{a.id}", "--fail-on-regression").code == 0
