"""A search sorted by a metric, param or tag is read in parts (gitml.core.index._segments) for speed.

The parts must give exactly what the one SELECT of :func:`gitml.core.index.search_statement`
gives: the same runs, in the same order, for every page. These tests hold them to it on an
index full of the awkward cases: NaN metrics, runs without the key, numbers and text in one
param, ties broken by start time and then id, filters, experiments, several sort keys, and
offsets inside, between and past the parts. A capped count of a one-comparison filter (read
off the key's rows) must equal the count of what the search finds.
"""

from __future__ import annotations

import math
import random
import sqlite3

import pytest

from gitml.core import index
from gitml.core.filter import compile_query

COLUMNS = "id, name, experiment, status, start_time, end_time, user, source_commit, branch, dirty"
N = 240


def _build(path) -> sqlite3.Connection:
    rnd = random.Random(20261201)
    conn = index.connect(path)
    index.add_functions(conn)
    for i in range(N):
        # few distinct start times: many ties, broken by id
        start = f"2026-01-{1 + rnd.randrange(5):02d}T00:00:00.000Z"
        conn.execute(f"INSERT INTO runs({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)",  # noqa: S608
                     (f"{rnd.getrandbits(64):016x}", f"run-{i}", rnd.choice(["e1", "e2", "e3"]), "FINISHED",
                      start, start, "u", "c" * 40, "main", 0))
    rids = [row[0] for row in conn.execute("SELECT rid FROM runs")]
    for rid in rids:
        for key in ("acc", "loss"):
            roll = rnd.random()
            if roll < 0.2:
                continue  # no such metric
            value = None if roll < 0.3 else rnd.choice([0.5, 0.25, rnd.random(), -1.0, math.inf])  # None: NaN
            conn.execute("INSERT INTO metrics VALUES (?,?,?,0,NULL)", (rid, key, value))
        for key, choices in (("lr", ["0.1", "0.01", "1e-3", "abc", "10", "2"]), ("model", ["cnn", "mlp", "b", "A"])):
            if rnd.random() < 0.8:
                value = rnd.choice(choices)
                conn.execute("INSERT INTO params VALUES (?,?,?,?)", (rid, key, value, index._number(value)))
        if rnd.random() < 0.7:
            value = rnd.choice(["nlp", "vision", "7", "3.5"])
            conn.execute("INSERT INTO tags VALUES (?,?,?,?)", (rid, "team", value, index._number(value)))
    return conn


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    conn = _build(tmp_path_factory.mktemp("paging") / "index.sqlite")
    yield conn
    conn.close()


def one_statement(db, query) -> list[str]:
    return [row[0] for row in db.execute(*index.search_statement(query, "id"))]


ORDERS = [
    "metrics.acc DESC", "metrics.acc", "params.lr", "params.lr DESC", "params.lr NUMERIC",
    "params.lr NUMERIC DESC", "tags.team", "tags.team NUMERIC DESC", "params.model DESC",
    "metrics.acc DESC, params.model", "params.model, metrics.loss DESC, name",
    "metrics.nosuch DESC", "params.nosuch",
]
FILTERS = [None, "metrics.loss > 0.3", "params.model = 'cnn'", "attributes.run_name LIKE 'run-1%'",
           "metrics.acc != 0.5 AND tags.team = 'nlp'", "params.nosuch = 'x'"]


@pytest.mark.parametrize("order_by", ORDERS)
@pytest.mark.parametrize("filter_", FILTERS)
def test_pages_of_a_sorted_search_are_those_of_one_statement(db, order_by, filter_):
    everything = one_statement(db, compile_query(filter_, order_by))
    assert index.search_ids(db, compile_query(filter_, order_by)) == everything
    for limit in (1, 7, 50, 1000):
        for offset in (0, 1, 3, 50, 150, 190, 230, 239, 240, 500):
            query = compile_query(filter_, order_by, None, limit, offset)
            assert index.search_ids(db, query) == everything[offset : offset + limit], (limit, offset)
    # an offset past the parts' threshold, which a filtered search leaves to the one statement
    query = compile_query(filter_, order_by, None, 10, 1001)
    assert index.search_ids(db, query) == one_statement(db, query) == []


@pytest.mark.parametrize("order_by", ["metrics.loss DESC", "params.model", "tags.team NUMERIC"])
def test_sorted_search_within_experiments(db, order_by):
    for experiments in (["e1"], ["e2", "e3"]):
        whole = one_statement(db, compile_query("metrics.acc >= 0", order_by, experiments))
        assert 0 < len(whole) < N
        for offset in (0, 5, len(whole) - 2):
            query = compile_query("metrics.acc >= 0", order_by, experiments, 9, offset)
            assert index.search_ids(db, query) == whole[offset : offset + 9]


@pytest.mark.parametrize("filter_", [
    "metrics.loss > 0.3", "metrics.loss != 0.5", "params.model = 'cnn'", "params.lr > 0.05",
    "params.lr NOT IN ('abc', '2')", "tags.team LIKE 'n%'", "tags.team ILIKE 'NLP'", "metrics.acc > 1e308",
    "params.nosuch = 'x'",
])
def test_a_one_comparison_count_is_that_of_the_search(db, filter_):
    found = len(index.search_ids(db, compile_query(filter_)))
    assert index.count_matching(db, compile_query(filter_)) == found
    for cap in (1, 5, found, found + 1):
        assert index.count_matching(db, compile_query(filter_), cap) == min(found, cap)
    # within an experiment the count is the general one, and agrees with the search too
    assert index.count_matching(db, compile_query(filter_, experiment="e1")) == len(
        index.search_ids(db, compile_query(filter_, experiment="e1")))


def test_an_index_made_before_the_value_indexes_gets_them_at_open(tmp_path):
    path = tmp_path / "index.sqlite"
    conn = index.connect(path)
    conn.execute("DROP INDEX params_value")
    conn.execute("CREATE INDEX params_key ON params(key, run)")
    conn.execute("CREATE INDEX tags_key ON tags(key, run)")
    conn.close()
    conn = index.connect(path)
    names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
    conn.close()
    assert {"params_value", "tags_value", "metrics_key"} <= names
    assert not names & {"params_key", "tags_key"}
