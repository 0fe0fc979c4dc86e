"""Searches answer as MLflow's do (issue 18), checked here without MLflow at hand.

tests/test_search_mlflow.py compares gitml with real MLflow over a few hundred searches; these
tests pin the same behaviour with the right values written out, so a change shows even where
MLflow is not installed: the text a param searches as, NaN metrics, quotes and LIKE without
escapes, numbers only where text is plainly one, ties, MLflow's spellings and system tags.
"""

from __future__ import annotations

import math
import time

import pytest
from conftest import gitml

import gitml as api
from gitml.errors import BadInputError


def _run(repo, name, params=None, metrics=None, tags=None, description=None):
    with api.start_run(name=name, repo=repo, description=description):
        api.log_params(params or {})
        api.log_metrics(metrics or {})
        api.set_tags(tags or {})
    time.sleep(0.003)  # distinct start times


def names(repo, filter=None, order_by=None):
    return [r.name for r in api.search_runs(filter=filter, order_by=order_by, repo=repo)]


@pytest.fixture
def runs(repo):
    _run(repo, "yes", {"flag": True, "opt": None, "cfg": {"a": 1}, "seed": 1000, "lr": 1e-05},
         {"m": 5.0, "acc": 0.9}, {"pct": "5_0", "who": "O'Neil"}, description="first try")
    _run(repo, "text", {"flag": "true", "opt": "None", "seed": "1_000", "lr": "0.10"},
         {"m": math.nan, "acc": 0.9}, {"pct": "5\\_0", "who": "O''Neil"})
    _run(repo, "spaced", {"seed": " 3", "lr": "inf"}, {"m": 1.0})
    _run(repo, "plain", {"seed": 3, "lr": 0.5}, {"acc": 0.8})
    return repo


@pytest.mark.parametrize(("expr", "expected"), [
    # a param searches as str() of the value logged, as MLflow stores it
    ("params.flag = 'True'", ["yes"]),
    ("params.flag = 'true'", ["text"]),
    ("params.opt = 'None'", ["text", "yes"]),
    ("params.cfg = \"{'a': 1}\"", ["yes"]),
    ("params.lr = '1e-05'", ["yes"]),
    # numbers compare only with values that are plainly numbers
    ("params.seed = 1000", ["yes"]),
    ("params.seed = 3", ["plain"]),
    ("params.seed > 1", ["plain", "yes"]),
    ("params.lr > 1e10", []),
    ("params.lr = 0.1", ["text"]),
    # a NaN metric satisfies != only
    ("metrics.m != 5", ["spaced", "text"]),
    ("metrics.m < 100", ["spaced", "yes"]),
    ("metrics.m NOT IN (5)", ["spaced", "text"]),
    # the text between quotes is taken as it stands; LIKE has no escape character
    ("tags.who = 'O''Neil'", ["text"]),
    ("tags.who = \"O'Neil\"", ["yes"]),
    ("tags.pct LIKE '5\\_0'", ["text"]),
    ("tags.pct LIKE '5_0'", ["yes"]),
    # MLflow's spellings and system tags
    ("`Run name` = 'plain'", ["plain"]),
    ("\"run name\" = 'plain'", ["plain"]),
    ("`metrics`.acc > 0.85", ["text", "yes"]),
    ("metrics.'acc' > 0.85", ["text", "yes"]),
    ("parameters.seed = '3'", ["plain"]),
    ("user_id = 'Test User'", ["plain", "spaced", "text", "yes"]),
    ("artifact_uri LIKE 'runs:/%'", ["plain", "spaced", "text", "yes"]),
    ("tags.mlflow.runName LIKE 'sp%'", ["spaced"]),
    ("tags.`mlflow.user` = 'Test User' AND tags.mlflow.note.content = 'first try'", ["yes"]),
    ("tags.mlflow.source.git.commit IS NOT NULL", ["plain", "spaced", "text", "yes"]),
    # no run records datasets yet: a dataset filter finds none, as MLflow's does for such runs
    ("datasets.name = 'train'", []),
    ("dataset.digest != 'x'", []),
])
def test_filters_answer_as_mlflow(runs, expr, expected):
    assert sorted(names(runs, expr)) == expected


@pytest.mark.parametrize(("order_by", "expected"), [
    # NaN after every number, before runs lacking the metric; ties newest first
    ("metrics.m", ["spaced", "yes", "text", "plain"]),
    ("metrics.m DESC", ["yes", "spaced", "text", "plain"]),
    ("metrics.acc DESC", ["text", "yes", "plain", "spaced"]),
    # params sort as text (' 3' < '1000' < '1_000' < '3'), NUMERIC by value first
    ("params.seed", ["spaced", "yes", "text", "plain"]),
    ("params.seed NUMERIC", ["plain", "yes", "spaced", "text"]),
    ("params.seed NUMERIC DESC", ["yes", "plain", "text", "spaced"]),
    ("tags.mlflow.runName DESC", ["yes", "text", "spaced", "plain"]),
    (None, ["plain", "spaced", "text", "yes"]),
])
def test_orders_answer_as_mlflow(runs, order_by, expected):
    assert names(runs, order_by=order_by) == expected


@pytest.mark.parametrize(("expr", "fragment"), [
    ("datasets.name IS NULL", "IS NULL does not apply to datasets.name"),
    ("datasets.size = 'x'", "unknown dataset field 'size'"),
    ("datasets.name > 'a'", "datasets compare with =, !=, LIKE, ILIKE and IN"),
    ("datasets.name = 1", "quote '1'"),
    ("metrics.acc > 0.5 AND", "end of input after 'AND'"),
    ("metrics. > 1", "empty key name"),
])
def test_bad_mlflow_style_filters(runs, expr, fragment):
    with pytest.raises(BadInputError, match=None) as caught:
        api.search_runs(filter=expr, repo=runs)
    assert fragment in caught.value.message


def test_cli_uses_the_same_compiler(runs):
    found = gitml(runs, "runs", "list", "-f", "params.flag = 'True'", "--json")
    assert found.code == 0, found.err
    assert '"name": "yes"' in found.out and '"name": "text"' not in found.out
    bad = gitml(runs, "runs", "list", "-o", "metrics.acc NUMERIC")
    assert bad.code == 2 and bad.out == ""
    assert bad.err.splitlines()[0].startswith("gitml: error: bad order_by: NUMERIC applies to params and tags")


def test_a_runs_metric_value_is_mlflows_latest(repo):
    """The highest step, then the latest timestamp, then the highest value (NaN counting as 0)."""
    t = 1_796_013_000_123
    with api.start_run(name="latest", repo=repo):
        for key, value, step, stamp in [("acc", 0.6, 1, t), ("acc", 0.5, 1, t), ("acc", 0.9, 0, t + 900),
                                        ("loss", 0.2, 3, t + 100), ("loss", 0.3, 3, t),
                                        ("m", math.nan, 2, t), ("m", 0.4, 2, t)]:
            api.log_metric(key, value, step=step, timestamp=stamp)
    run = api.search_runs(repo=repo)[0]
    assert run.metrics == {"acc": 0.6, "loss": 0.2, "m": 0.4}
    assert run.metric_info["loss"] == {"step": 3, "timestamp": "2026-11-30T04:30:00.223Z"}
    assert names(repo, "metrics.acc = 0.6 AND metrics.loss = 0.2 AND metrics.m = 0.4") == ["latest"]


@pytest.mark.parametrize("stamp", [-1, 1.5, True, "1796013000123", 253_402_300_800_000])
def test_bad_metric_timestamps_are_refused(repo, stamp):
    with api.start_run(name="stamps", repo=repo):
        with pytest.raises(BadInputError, match="timestamp"):
            api.log_metric("acc", 0.5, timestamp=stamp)
        api.log_metric("acc", 0.7, timestamp=1_796_013_000_000)
    assert api.search_runs(repo=repo)[0].metrics == {"acc": 0.7}


def test_numpy_and_container_params_search_as_their_str(repo):
    np = pytest.importorskip("numpy")
    _run(repo, "np", {"f32": np.float32(0.1), "f16": np.float16(0.1), "tiny": np.float32(1e-8),
                      "one": np.array([5]), "two": np.array([1, 2]), "i": np.int64(7), "b": np.bool_(True)})
    run = api.search_runs(repo=repo)[0]
    assert run.params == {"f32": 0.1, "f16": 0.1, "tiny": 1e-08, "one": "[5]", "two": "[1 2]", "i": 7, "b": True}
    assert names(repo, "params.f32 = '0.1' AND params.tiny = '1e-08' AND params.one = '[5]' "
                       "AND params.two = '[1 2]' AND params.b = 'True' AND params.i = '7'") == ["np"]


def test_mlflow_name_and_user_tags_follow_mlflows_rules(repo):
    """mlflow.runName names a run (an explicit name wins at start) and renames it when set later;
    mlflow.user is the run's user only when given at start."""
    with api.start_run(name="orig", repo=repo):
        api.set_tags({"mlflow.runName": "renamed", "mlflow.user": "later"})
    time.sleep(0.003)
    handle = api.start_run(tags={"mlflow.runName": "from-tag", "mlflow.user": "override"}, repo=repo)
    api.end_run()
    time.sleep(0.003)
    with api.start_run(name="explicit", tags={"mlflow.runName": "ignored"}, repo=repo):
        pass
    runs = {r.name: r for r in api.search_runs(repo=repo)}
    assert sorted(runs) == ["explicit", "from-tag", "renamed"]  # the records carry the name
    assert "mlflow.runName" not in runs["renamed"].tags and runs["renamed"].user == "Test User"
    assert runs["from-tag"].user == "override" and runs["from-tag"].tags["mlflow.user"] == "override"
    assert handle.name == "from-tag"
    assert names(repo, "run_name = 'renamed'") == ["renamed"] and names(repo, "run_name = 'orig'") == []
    assert names(repo, "run_name = 'ignored'") == []
    assert names(repo, "user_id = 'override'") == ["from-tag"]
    assert names(repo, "user_id = 'later'") == [] and names(repo, "tags.mlflow.user = 'later'") == ["renamed"]
    assert names(repo, order_by="run_name DESC") == ["renamed", "from-tag", "explicit"]


def test_commit_run_takes_the_creation_tags_too(repo):
    made = gitml(repo, "commit-run", "-t", "mlflow.runName=tagged", "-t", "mlflow.user=ci", "-p", "a=1")
    assert made.code == 0, made.err
    both = gitml(repo, "commit-run", "-n", "named", "-t", "mlflow.runName=other", "-p", "a=2")
    assert both.code == 0, both.err
    assert names(repo, "user_id = 'ci'") == ["tagged"]
    assert sorted(names(repo)) == ["named", "tagged"] and names(repo, "run_name = 'other'") == []


def test_infinite_and_tied_nan_metrics_compare_as_mlflows_database_does(repo):
    t = 1_796_013_000_123
    with api.start_run(name="inf", repo=repo):
        api.log_metric("m", math.inf)
    with api.start_run(name="nan-tie", repo=repo):
        api.log_metric("loss", math.nan, step=1, timestamp=t)
        api.log_metric("loss", 0.5, step=1, timestamp=t)  # 0.5 beats NaN, which counts as 0
        api.log_metric("low", math.nan, step=1, timestamp=t)
        api.log_metric("low", -1.0, step=1, timestamp=t)  # NaN (as 0) beats -1
    assert names(repo, "metrics.m < 1e400") == ["inf"]  # ±inf is ±1.7976931348623157e308
    assert names(repo, "metrics.m >= 1e999") == []
    assert names(repo, "metrics.m = 1.7976931348623157e308") == ["inf"]
    assert api.search_runs("run_name = 'inf'", repo=repo)[0].metrics["m"] == math.inf  # the record keeps inf
    assert names(repo, "metrics.loss = 0.5 AND metrics.low != -1") == ["nan-tie"]


@pytest.mark.parametrize(("limit", "ok"), [(0, True), (2, True), (2.0, True), (-1, False), (1.5, False),
                                           (math.nan, False)])
def test_limits_are_whole_numbers(runs, limit, ok):
    if ok:
        assert len(api.search_runs(limit=limit, repo=runs)) == (limit or 4)
    else:
        with pytest.raises(BadInputError, match="bad limit: expected a whole number"):
            api.search_runs(limit=limit, repo=runs)


def test_cli_refuses_a_negative_limit(runs):
    bad = gitml(runs, "runs", "list", "-n", "-1")
    assert bad.code == 2 and bad.out == "" and bad.err.startswith("gitml: error: bad limit")


@pytest.mark.parametrize(("expr", "fragment"), [
    ("status = 5", "'status' compares text; quote '5'"),
    ("run_id = 5", "'id' compares text"),
    ("metrics.acc = NaN", "'NaN' at position 15 is not a value a search can compare"),
    ("metrics.acc > Infinity", "is not a value a search can compare"),
    ('"metrics".acc > 1', "unknown attribute 'metrics'"),
    ("metrics.acc > 'x'", "but 'x' at position 15 is not a number"),
])
def test_more_bad_filters(runs, expr, fragment):
    with pytest.raises(BadInputError) as caught:
        api.search_runs(filter=expr, repo=runs)
    assert fragment in caught.value.message


def test_an_empty_mapping_in_a_params_file_is_a_param(repo):
    (repo / "params.yaml").write_text("opts: {}\ntrain:\n  lr: 0.1\n")
    made = gitml(repo, "commit-run", "-n", "file", "--params", "params.yaml")
    assert made.code == 0, made.err
    assert api.search_runs(repo=repo)[0].params == {"opts": "{}", "train.lr": 0.1}
    assert names(repo, "params.opts = '{}' AND params.train.lr = '0.1'") == ["file"]


@pytest.mark.parametrize("step", [2**63, -(2**63) - 1])
def test_steps_must_fit_in_64_bits(repo, step):
    with api.start_run(name="steps", repo=repo):
        with pytest.raises(BadInputError, match="64 bits"):
            api.log_metric("m", 1.0, step=step)
        api.log_metric("m", 2.0, step=2**63 - 1)
    run = api.get_run(api.search_runs(repo=repo)[0].id, repo=repo)
    assert run.metrics == {"m": 2.0} and run.metric_info["m"]["step"] == 2**63 - 1


def test_numpy_integers_are_integers(repo):
    np = pytest.importorskip("numpy")
    with api.start_run(name="np-ints", repo=repo):
        api.log_metric("m", 1.0, step=np.int64(3), timestamp=np.int64(1_796_013_000_000))
    run = api.search_runs(limit=np.int64(1), repo=repo)[0]
    assert run.metric_info["m"] == {"step": 3, "timestamp": "2026-11-30T04:30:00.000Z"}
