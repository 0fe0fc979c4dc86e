"""Issue 11, items 5 and 14: filters on time attributes, and keys no run has.

Times: a number is MLflow's epoch milliseconds, an ISO 8601 text is converted to UTC (no offset:
UTC), anything else is refused (exit 2) naming the value. Keys: a filter or sort key naming a
metric, param or tag that no run has still runs, and the CLI warns with the nearest key.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone

import pytest
from conftest import gitml, runs_tip

import gitml as api
from gitml.core import index
from gitml.core.errors import BadInputError
from gitml.core.filter import compile_query, parse_filter, utc_text
from gitml.tracking.query import search_warnings

# -- times in the index: fixed stored values, in the records' form and in other ISO forms -------

# 2026-11-30T04:30:00Z is 1796013000000 ms after the epoch, and 10:00 at +05:30.
AT = 1796013000000
TIMES = [
    ("canon", "2026-11-30T04:30:00.000Z", "2026-11-30T05:00:00.000Z"),
    ("offset", "2026-11-30T10:00:00.001+05:30", None),  # one millisecond later, with an offset
    ("naive", "2026-11-30T04:29:59.999", "2026-11-30T04:31:00"),  # no offset: UTC
    ("dec1", "2026-12-01T00:00:00.000Z", "2026-12-01T01:00:00.000Z"),
    ("old", "1970-01-01T00:00:02.999Z", "1970-01-01T00:00:03.000Z"),
]


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    conn = index.connect(tmp_path_factory.mktemp("times") / "index.sqlite")
    conn.executemany("INSERT INTO runs(id, start_time, end_time) VALUES (?, ?, ?)", TIMES)
    conn.executemany("INSERT INTO metrics VALUES (?, ?, ?, 0, NULL)",
                     [("canon", "accuracy", 0.9), ("dec1", "accuracy", 0.8), ("dec1", "val loss", 0.2)])
    conn.executemany("INSERT INTO params VALUES (?, ?, ?, ?)", [("canon", "lr", "0.1", 0.1)])
    conn.executemany("INSERT INTO tags VALUES (?, ?, ?, NULL)", [("naive", "team", "vision")])
    yield conn
    conn.close()


def matching(db, expr):
    return sorted(index.search_ids(db, compile_query(filter=expr)))


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        # numbers are epoch milliseconds, as in MLflow
        ("start_time > 3000", ["canon", "dec1", "naive", "offset"]),
        ("start_time < 3000", ["old"]),
        ("start_time = 2999", ["old"]),
        ("end_time >= 3000", ["canon", "dec1", "naive", "old"]),
        (f"start_time = {AT}", ["canon"]),
        (f"start_time >= {AT}", ["canon", "dec1", "offset"]),
        (f"start_time > {AT}", ["dec1", "offset"]),
        (f"start_time < {AT}", ["naive", "old"]),
        (f"start_time IN ({AT}, {AT + 1})", ["canon", "offset"]),
        (f"start_time NOT IN ({AT})", ["dec1", "naive", "offset", "old"]),
        (f"start_time != {AT}", ["dec1", "naive", "offset", "old"]),
        # a fraction of a millisecond: records hold whole ones, so the comparison stays exact
        (f"start_time > {AT}.5", ["dec1", "offset"]),
        (f"start_time >= {AT}.5", ["dec1", "offset"]),
        (f"start_time < {AT}.5", ["canon", "naive", "old"]),
        (f"start_time <= {AT - 1}.5", ["naive", "old"]),
        (f"start_time = {AT}.5", []),
        (f"start_time != {AT}.5", ["canon", "dec1", "naive", "offset", "old"]),
        ("start_time > 1.79601300e12", ["dec1", "offset"]),
        # ISO 8601 with an offset is the UTC instant; without one it is UTC
        ("start_time >= '2026-11-30T10:00:00+05:30'", ["canon", "dec1", "offset"]),
        ("start_time = '2026-11-30T10:00:00+05:30'", ["canon"]),
        ("start_time = '2026-11-29T23:30:00.001-05:00'", ["offset"]),
        ("start_time = '2026-11-30T04:30:00Z'", ["canon"]),
        ("start_time = '2026-11-30 04:30'", ["canon"]),
        ("start_time >= '2026-12-01'", ["dec1"]),
        ("start_time < '2026-12-01'", ["canon", "naive", "offset", "old"]),
        ("start_time >= '2026-12-01T05:30:00+05:30'", ["dec1"]),
        ("start_time > '2026-12-01T05:30:00+05:30'", []),
        ("start_time IN ('2026-11-30T04:30:00Z', '1970-01-01T00:00:02.999Z')", ["canon", "old"]),
        ("end_time < '2026-11-30T04:31:00.001Z'", ["naive", "old"]),
        ("end_time = '2026-11-30T04:31:00'", ["naive"]),
        ("end_time IS NULL", ["offset"]),
        ("attributes.start_time > 2000 AND end_time < 3001", ["old"]),
        ("created = '1970-01-01T00:00:02.999Z'", ["old"]),  # MLflow's alias of start_time
        # LIKE still reads the stored text
        ("start_time LIKE '2026-11-30%'", ["canon", "naive", "offset"]),
    ],
)
def test_time_filters(db, expr, expected):
    assert matching(db, expr) == expected


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        ("start_time", ["old", "naive", "canon", "offset", "dec1"]),
        ("start_time DESC", ["dec1", "offset", "canon", "naive", "old"]),
        ("end_time", ["old", "naive", "canon", "dec1", "offset"]),  # no end time: last
    ],
)
def test_time_order_by_reads_instants(db, order_by, expected):
    assert index.search_ids(db, compile_query(order_by=order_by)) == expected


@pytest.mark.parametrize(
    "expr",
    [
        "start_time >= '1 Dec 2026'",
        "start_time > 'yesterday'",
        "end_time < '2026-13-01'",
        "start_time = '30/11/2026'",
        "start_time > ''",
        "start_time = true",
        "start_time > '10000-01-01'",
        "start_time > 1e300",
        "end_time IN ('2026-11-30', 'Dec 1')",
        "attributes.start_time < '2026-11-30T25:00:00'",
    ],
)
def test_non_times_are_refused_naming_the_value(expr):
    with pytest.raises(BadInputError) as info:
        parse_filter(expr)
    message = str(info.value)
    assert info.value.exit_code == 2
    assert "compares times" in message and "neither milliseconds since 1970 nor an ISO 8601 time" in message
    bad_literal = {"start_time = true": "'true'", "start_time > 1e300": "'1e300'",
                   "end_time IN ('2026-11-30', 'Dec 1')": "'Dec 1'"}.get(expr)
    assert (bad_literal or expr.split(" ", 2)[2]) in message


def test_utc_text():
    assert utc_text("2026-11-30T10:00:00+05:30") == "2026-11-30T04:30:00.000Z"
    assert utc_text("2026-11-30") == "2026-11-30T00:00:00.000Z"
    assert utc_text("2026-11-30T04:30:00.123999Z") == "2026-11-30T04:30:00.123Z"
    assert utc_text("0999-01-02T00:00:00Z") == "0999-01-02T00:00:00.000Z"
    assert utc_text("1 Dec 2026") is None and utc_text("") is None


# -- times end to end: real runs, the real CLI ---------------------------------------------------

def millis(stamp: str) -> int:
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    return (moment - datetime(1970, 1, 1, tzinfo=timezone.utc)) // timedelta(milliseconds=1)


def listed(repo, *args):
    result = gitml(repo, "runs", "list", "--json", *args)
    assert result.code == 0 and result.err == "", result.err
    return sorted(run["name"] for run in json.loads(result.out))


def test_cli_time_filters(repo, monkeypatch):
    monkeypatch.chdir(repo)
    runs = [api.commit_run(name="first", metrics={"accuracy": 0.8}),
            api.commit_run(name="second", metrics={"accuracy": 0.9})]
    second = runs[1]
    ms = millis(second.start_time)

    def names(keep):
        return sorted(run.name for run in runs if keep(run))

    assert listed(repo, "-f", "start_time > 3000") == ["first", "second"]
    assert listed(repo, "-f", "start_time < 3000") == []
    assert listed(repo, "-f", f"start_time = {ms}") == names(lambda r: millis(r.start_time) == ms)
    assert listed(repo, "-f", f"start_time > {ms}") == []
    assert listed(repo, "-f", f"start_time < {ms}") == names(lambda r: millis(r.start_time) < ms)
    # the same instant written at +05:30
    moment = datetime.fromisoformat(second.start_time.replace("Z", "+00:00"))
    local = moment.astimezone(timezone(timedelta(hours=5, minutes=30))).isoformat(timespec="milliseconds")
    assert local.endswith("+05:30")
    assert listed(repo, "-f", f"start_time >= '{local}'") == names(lambda r: millis(r.start_time) >= ms)
    assert listed(repo, "-f", f"start_time > '{local}'") == []
    end = millis(second.end_time)
    assert listed(repo, "-f", f"end_time >= {end}") == names(lambda r: millis(r.end_time) >= end)


def test_cli_refuses_a_non_time_and_changes_nothing(repo, monkeypatch):
    monkeypatch.chdir(repo)
    api.commit_run(name="first", metrics={"accuracy": 0.8})
    tip = runs_tip(repo)
    for expr, value in [("start_time >= '1 Dec 2026'", "'1 Dec 2026'"),
                        ("end_time < 'tomorrow'", "'tomorrow'")]:
        result = gitml(repo, "runs", "list", "-f", expr)
        assert result.code == 2 and result.out == ""
        assert result.err.startswith("gitml: error: bad filter: ")
        assert value in result.err and "ISO 8601" in result.err
    assert runs_tip(repo) == tip


# -- keys no run has ------------------------------------------------------------------------------

def notes(db, expr=None, order_by=None):
    return index.unknown_keys(db, compile_query(filter=expr, order_by=order_by))


@pytest.mark.parametrize(
    ("expr", "order_by", "expected"),
    [
        ("metrics.acc > 0.5", None, ["no run has metric 'acc' (did you mean 'accuracy'?)"]),
        ("metrics.Accuracy > 0.5", None, ["no run has metric 'Accuracy' (did you mean 'accuracy'?)"]),
        ("metrics.`val los` < 1", None, ["no run has metric 'val los' (did you mean 'val loss'?)"]),
        ("params.lrr = 0.1", None, ["no run has param 'lrr' (did you mean 'lr'?)"]),
        ("tags.teams = 'vision'", None, ["no run has tag 'teams' (did you mean 'team'?)"]),
        ("params.accuracy = 1", None, ["no run has param 'accuracy' (did you mean metrics.accuracy?)"]),
        ("tags.lr IS NULL", None, ["no run has tag 'lr' (did you mean params.lr?)"]),
        ("metrics.zzz > 1", None, ["no run has metric 'zzz'"]),
        # every unknown key once, in the order written; known keys and attributes say nothing
        ("metrics.acc > 0.5 OR (metrics.accuracy > 0.5 AND metrics.acc < 1) OR status = 'x'",
         None, ["no run has metric 'acc' (did you mean 'accuracy'?)"]),
        ("metrics.accuracy > 0.5 AND params.lr = 0.1 AND tags.team = 'x'", None, []),
        # sort keys too
        (None, "metrics.acc DESC", ["no run has metric 'acc' (did you mean 'accuracy'?)"]),
        (None, "start_time", []),
    ],
)
def test_unknown_keys(db, expr, order_by, expected):
    assert notes(db, expr, order_by) == expected


def test_no_runs_no_notes(tmp_path):
    conn = index.connect(tmp_path / "index.sqlite")
    try:
        assert index.unknown_keys(conn, compile_query(filter="metrics.acc > 1")) == []
    finally:
        conn.close()


def test_cli_warns_about_keys_no_run_has(repo, monkeypatch):
    monkeypatch.chdir(repo)
    api.commit_run(name="first", params={"lr": 0.1}, metrics={"accuracy": 0.8}, tags={"team": "vision"})
    cases = [
        ("metrics.acc > 0.5", "no run has metric 'acc' (did you mean 'accuracy'?)"),
        ("params.learning_rat = 0.1", "no run has param 'learning_rat'"),
        ("params.Lr = 0.1", "no run has param 'Lr' (did you mean 'lr'?)"),
        ("tags.tem = 'vision'", "no run has tag 'tem' (did you mean 'team'?)"),
    ]
    for expr, warning in cases:
        result = gitml(repo, "runs", "list", "-f", expr)
        assert result.code == 0
        assert result.err == f"gitml: warning: {warning}\n"
        assert result.out.splitlines()[0].split() == ["id", "name", "experiment", "status", "started",
                                                      "commit", "branch"]
        assert len(result.out.splitlines()) == 2  # headers and rule: no run
    found = gitml(repo, "runs", "list", "-f", "metrics.accuracy > 0.5", "-o", "params.seed")
    assert found.code == 0 and found.err == "gitml: warning: no run has param 'seed'\n"
    assert "first" in found.out
    quiet = gitml(repo, "runs", "list", "-f", "metrics.accuracy > 0.5 and params.lr = 0.1")
    assert quiet.code == 0 and quiet.err == "" and "first" in quiet.out
    assert search_warnings("metrics.acc > 0.5", repo=repo) == [
        "no run has metric 'acc' (did you mean 'accuracy'?)"]
    assert search_warnings("metrics.accuracy > 0.5", "params.lr", repo=repo) == []


def test_no_warning_before_the_first_run(repo):
    result = gitml(repo, "runs", "list", "-f", "metrics.acc > 0.5")
    assert (result.code, result.err) == (0, "")
