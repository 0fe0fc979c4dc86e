"""Tests for gitml.core.filter and the SQL the index runs for its queries.

Filters and sort keys are parsed by gitml.core.filter into a Query and run by gitml.core.index
against an index database with the index's own schema, filled with runs whose odd values (no
commit, no start time, a NULL dirty flag) a committed run cannot have.
"""

from __future__ import annotations

import json
import random
import re
import sqlite3

import pytest
from conftest import gitml

import gitml as api
from gitml.core import index
from gitml.core.errors import BadInputError
from gitml.core.filter import (
    MAX_DEPTH,
    MAX_FILTER_CHARS,
    MAX_ORDER_KEYS,
    MAX_TERMS,
    Condition,
    Group,
    Query,
    SortKey,
    Value,
    compile_query,
    parse_filter,
    parse_order_by,
)


def compile_filter(expr):
    """The SQL condition and parameters the index runs for filter ``expr``."""
    return index.filter_sql(parse_filter(expr))


def compile_order_by(order_by):
    """The ORDER BY body and parameters the index runs for ``order_by``."""
    return index.order_sql(parse_order_by(order_by))


RUNS = [
    (
        "r1",
        "alpha",
        "exp1",
        "FINISHED",
        "2024-01-01T00:00:00",
        "2024-01-01T01:00:00",
        "alice",
        "abc123",
        "main",
        0,
    ),
    (
        "r2",
        "beta",
        "exp1",
        "FAILED",
        "2024-01-02T00:00:00",
        "2024-01-02T01:00:00",
        "bob",
        "def456",
        "feature/x",
        1,
    ),
    (
        "r3",
        "Gamma run",
        "exp2",
        "RUNNING",
        "2024-01-03T00:00:00",
        None,
        "alice",
        "abc999",
        "main",
        0,
    ),
    (
        "r4",
        "delta[1]*",
        "exp2",
        "FINISHED",
        "2024-01-04T00:00:00",
        "2024-01-04T02:00:00",
        "carol",
        "fff000",
        None,
        0,
    ),
    ("r5", "eps%ilon", "exp1", "FINISHED", None, None, "dave", None, "main", None),
]
METRICS = [
    ("r1", "acc", 0.9),
    ("r2", "acc", 0.5),
    ("r3", "acc", 0.7),
    ("r5", "acc", 0.9),
    ("r1", "val loss", 0.1),
    ("r3", "val loss", 0.3),
    ("r1", "loss", 0.2),
    ("r2", "loss", 1.5),
    ("r3", "loss", 0.4),
    ("r4", "loss", 0.8),
]
PARAMS = [
    ("r1", "lr", "0.001", 0.001),
    ("r2", "lr", "0.01", 0.01),
    ("r3", "lr", "0.1", 0.1),
    ("r4", "lr", "0.001", 0.001),
    ("r1", "optimizer", "adam", None),
    ("r2", "optimizer", "sgd", None),
    ("r3", "optimizer", "Adam", None),
    ("r4", "optimizer", "adamw", None),
    ("r1", "model.depth", "12", 12.0),
    ("r2", "model.depth", "6", 6.0),
    ("r3", "model.depth", "abc", None),
    ("r2", "a.b", "x", None),
    ("r4", "it's; DROP TABLE runs; --", "v", None),
]
TAGS = [
    ("r1", "note", "good run"),
    ("r2", "note", "bad"),
    ("r3", "note", "Good Run"),
    ("r4", "note", "it's"),
    ("r1", "team", "vision"),
    ("r2", "team", "nlp"),
]


COLUMNS = "id, name, experiment, status, start_time, end_time, user, source_commit, branch, dirty"


def fixture_db(path) -> sqlite3.Connection:
    """An index file at ``path`` made by the index module (its tables and indexes), filled."""
    conn = index.connect(path)
    conn.executemany(f"INSERT INTO runs({COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?)", RUNS)
    rid = dict(conn.execute("SELECT id, rid FROM runs"))  # child rows name a run by its rid

    def keyed(rows):
        return [(rid[row[0]], *row[1:]) for row in rows]

    conn.executemany("INSERT INTO metrics VALUES (?,?,?,0,NULL)", keyed(METRICS))
    conn.executemany("INSERT INTO params VALUES (?,?,?,?)", keyed(PARAMS))
    conn.executemany("INSERT INTO tags VALUES (?,?,?,?)", keyed([(*row, index._number(row[2])) for row in TAGS]))
    return conn


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    conn = fixture_db(tmp_path_factory.mktemp("index") / "index.sqlite")
    yield conn
    conn.close()


def matching(db, expr):
    return sorted(index.search_ids(db, compile_query(filter=expr)))


def ordered(db, order_by):
    return index.search_ids(db, compile_query(order_by=order_by))


@pytest.mark.parametrize("expr", ["", "   ", "\n\t"])
def test_empty_filter_matches_everything(db, expr):
    assert compile_filter(expr) == ("1", [])
    assert matching(db, expr) == ["r1", "r2", "r3", "r4", "r5"]


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        # metrics: numeric, latest value, missing never matches
        ("metrics.acc > 0.6", ["r1", "r3", "r5"]),
        ("metrics.acc >= 0.7", ["r1", "r3", "r5"]),
        ("metrics.acc = 0.9", ["r1", "r5"]),
        ("metrics.acc == +0.9", ["r1", "r5"]),
        ("metrics.acc != 0.9", ["r2", "r3"]),
        ("metrics.acc <> 0.9", ["r2", "r3"]),
        ("metrics.loss < 15e-1", ["r1", "r3", "r4"]),
        ("metrics.loss <= 1.5", ["r1", "r2", "r3", "r4"]),
        ("metrics.loss > -1", ["r1", "r2", "r3", "r4"]),
        ("metrics.acc IN (0.5, 0.7)", ["r2", "r3"]),
        ("metrics.acc NOT IN (0.5)", ["r1", "r3", "r5"]),
        ("metrics.acc IS NULL", ["r4"]),
        ("metrics.acc is not null", ["r1", "r2", "r3", "r5"]),
        ("metrics.`val loss` < 0.2", ["r1"]),
        ('metric."val loss" >= 0.3', ["r3"]),
        ("metrics.1 > 0", []),
        # params: numbers compare numerically, text compares text
        ("params.lr > 0.005", ["r2", "r3"]),
        ("params.lr = 0.001", ["r1", "r4"]),
        ("params.lr = 1e-3", ["r1", "r4"]),
        ("params.lr = '0.001'", ["r1", "r4"]),
        ("params.lr = '1e-3'", []),
        ("params.lr != 0.001", ["r2", "r3"]),
        ("params.model.depth = 12", ["r1"]),
        ("params.model.depth < 10", ["r2"]),
        ("params.model.depth != 12", ["r2", "r3"]),
        ("params.model.depth IN (6, 'abc')", ["r2", "r3"]),
        ("params.model.depth NOT IN (6, 'abc')", ["r1"]),
        ('params."a.b" = "x"', ["r2"]),
        ("param.optimizer = 'adam'", ["r1"]),
        ("params.optimizer != 'adam'", ["r2", "r3", "r4"]),
        ("params.optimizer > 'b'", ["r2"]),
        ("params.optimizer IS NULL", ["r5"]),
        # LIKE is case-sensitive, ILIKE is not; glob metacharacters are literal
        ("params.optimizer LIKE 'adam%'", ["r1", "r4"]),
        ("params.optimizer NOT LIKE 'adam%'", ["r2", "r3"]),
        ("params.optimizer ILIKE 'ADAM%'", ["r1", "r3", "r4"]),
        ("params.optimizer ilike 'ADAM'", ["r1", "r3"]),
        ("params.optimizer NOT ILIKE 'adam'", ["r2", "r4"]),
        ("params.optimizer LIKE 'ad_m'", ["r1"]),
        ("name LIKE 'delta[1]*'", ["r4"]),
        ("name LIKE 'delta[1]'", []),
        ("name LIKE 'delta_1_%'", ["r4"]),
        # As in MLflow, LIKE has no escape character: a backslash is a backslash.
        ("name LIKE 'eps%%'", ["r5"]),
        ("name LIKE 'eps\\%%'", []),
        ("name ILIKE 'EPS_ILON'", ["r5"]),
        ("name ILIKE '%\\_%'", []),
        ("name LIKE '%a%'", ["r1", "r2", "r3", "r4"]),
        ("name LIKE '%A%'", []),
        # tags: text
        ("tags.note = 'good run'", ["r1"]),
        ("tags.note ILIKE 'good%'", ["r1", "r3"]),
        ("tags.note != 'bad'", ["r1", "r3", "r4"]),
        ("tag.team IS NULL", ["r3", "r4", "r5"]),
        ("tags.team IS NOT NULL", ["r1", "r2"]),
        # The text between the quotes is taken as it is, as in MLflow: 'it''s' is it''s.
        ("tags.note = 'it''s'", []),
        ("tags.note = 'it\\'s'", []),
        ('tags.note = "it\'s"', ["r4"]),
        ('tags.note = "it""s"', []),
        ("tags.note LIKE 'it%s'", ["r4"]),
        # attributes, bare and prefixed
        ("status = 'FINISHED'", ["r1", "r4", "r5"]),
        ("attributes.status != 'FINISHED'", ["r2", "r3"]),
        ("attr.status NOT IN ('FINISHED', 'FAILED')", ["r3"]),
        ("run.user = 'alice'", ["r1", "r3"]),
        ("attribute.user IN ('bob', 'carol')", ["r2", "r4"]),
        ("Status = 'FINISHED' and USER = 'dave'", ["r5"]),
        ("id = 'r3'", ["r3"]),
        ("run_id IN ('r1', 'r2', 'nope')", ["r1", "r2"]),
        ("run_name = 'Gamma run'", ["r3"]),
        ("experiment = 'exp2'", ["r3", "r4"]),
        ("commit LIKE 'abc%'", ["r1", "r3"]),
        ("source_commit = 'def456'", ["r2"]),
        ("commit IS NULL", ["r5"]),
        ("branch != 'main'", ["r2"]),
        ("branch = 'feature/x'", ["r2"]),
        ("end_time IS NULL", ["r3", "r5"]),
        ("start_time >= '2024-01-03'", ["r3", "r4"]),
        ("start_time < '2024-01-03'", ["r1", "r2"]),
        ("start_time > 1704153600000", ["r3", "r4"]),  # epoch ms of 2024-01-02T00:00Z
        ("start_time >= '2024-01-02T05:30:00+05:30'", ["r2", "r3", "r4"]),
        ("end_time <= '2024-01-01T01:00:00Z'", ["r1"]),
        ("dirty = true", ["r2"]),
        ("dirty = FALSE", ["r1", "r3", "r4"]),
        ("dirty = 1", ["r2"]),
        ("dirty != true", ["r1", "r3", "r4"]),
        ("dirty IN (0)", ["r1", "r3", "r4"]),
        ("dirty IS NULL", ["r5"]),
        # AND binds tighter than OR; parentheses override
        ("metrics.acc > 0.8 OR tags.team = 'nlp'", ["r1", "r2", "r5"]),
        ("tags.team = 'nlp' OR metrics.acc > 0.8 AND user = 'dave'", ["r2", "r5"]),
        ("(tags.team = 'nlp' OR metrics.acc > 0.8) AND user = 'alice'", ["r1"]),
        ("((metrics.acc > 0.8))", ["r1", "r5"]),
        ("metrics.acc > 0.6 AND params.lr < 0.01 AND tags.note ILIKE '%run'", ["r1"]),
        ("metrics.acc>0.6 AND params.lr<0.01", ["r1"]),
    ],
)
def test_filter_matches(db, expr, expected):
    assert matching(db, expr) == expected


def test_filter_returns_sql_and_params():
    sql, params = compile_filter("metrics.acc > 0.5")
    assert sql == (
        "r.rid IN (SELECT m.run FROM metrics m WHERE m.key = ? AND m.value > ?)"
    )
    assert params == ["acc", 0.5]


@pytest.mark.parametrize(
    "expr",
    [
        "params.optimizer = 'a'' OR 1=1 --'",
        'params.optimizer = "x\\" OR 1=1; --"',
        "tags.note = 'x'') OR 1=1; DROP TABLE runs; --'",
        "name IN ('x) OR (1=1', 'y')",
        "params.optimizer LIKE '%'' OR 1=1 --'",
        "params.optimizer ILIKE ''' OR 1=1 --'",
    ],
)
def test_injection_in_values_is_data(db, expr):
    sql, params = compile_filter(expr)
    assert "1=1" not in sql and "DROP" not in sql
    assert any("1=1" in str(p) for p in params)
    assert matching(db, expr) == []
    assert db.execute("SELECT count(*) FROM runs").fetchone() == (5,)


@pytest.mark.parametrize(
    "expr",
    [
        "params.`it's; DROP TABLE runs; --` = 'v'",
        "params.\"it's; DROP TABLE runs; --\" = 'v'",
        "params.`it's; DROP TABLE runs; --` IS NOT NULL",
    ],
)
def test_injection_in_keys_is_data(db, expr):
    sql, params = compile_filter(expr)
    assert "DROP" not in sql and "it's" not in sql
    assert "it's; DROP TABLE runs; --" in params
    assert matching(db, expr) == ["r4"]
    assert db.execute("SELECT count(*) FROM runs").fetchone() == (5,)


def test_user_text_never_reaches_sql():
    expr = "metrics.zzkey > 1 OR params.yykey LIKE 'xxval%' OR tags.wwkey IN ('vv')"
    sql, _ = compile_filter(expr)
    for token in ("zzkey", "yykey", "xxval", "wwkey", "vv"):
        assert token not in sql
    joins, _, body, _ = compile_order_by("metrics.zzkey DESC, params.yykey, tags.wwkey")
    assert not any(key in joins + body for key in ("zzkey", "yykey", "wwkey"))


@pytest.mark.parametrize(
    ("expr", "fragments"),
    [
        ("foo.bar = 1", ["unknown key prefix 'foo'", "position 1"]),
        ("start_time > '1 Dec 2026'", ["'1 Dec 2026'", "position 14", "compares times"]),
        ("metrics.acc 0.5", ["expected an operator", "'0.5' at position 13"]),
        ("metrics.acc", ["expected an operator", "end of input after 'metrics.acc'"]),
        ("params.lr = 'abc", ["unterminated string", "position 13"]),
        ('params."lr = 1', ["unterminated string", "position 8"]),
        ("metrics.acc > 0.5 AND", ["expected a key", "end of input after 'AND'", "position 22"]),
        ("AND metrics.acc > 0.5", ["expected a key", "'AND' at position 1"]),
        ("metrics.acc > 0.5 AND OR x = 1", ["expected a key", "'OR' at position 23"]),
        ("metrics.acc > 'high'", ["compares numerically", "but 'high' at position 15"]),
        ("metrics.acc = true", ["compares numerically", "'true' at position 15"]),
        ("metrics.acc IN (1, 'x')", ["compares numerically", "position 20"]),
        ("colour = 'red'", ["unknown attribute 'colour'", "position 1"]),
        ("attributes.size > 3", ["unknown attribute 'size'"]),
        ("metrics. > 1", ["empty key name", "'metrics.' at position 1"]),
        ("params.`` = 'x'", ["empty key name", "position 1"]),
        ("= 1", ["expected a key", "'=' at position 1"]),
        ("'status' = 'x'", ["expected a key", "position 1"]),
        ("(metrics.acc > 1", ["expected ')'", "'(' at position 1", "end of input"]),
        ("metrics.acc > 1)", ["expected AND, OR or end", "')' at position 16"]),
        ("metrics.acc > 1 metrics.loss < 2", ["expected AND, OR", "position 17"]),
        ("metrics.acc >", ["expected a value", "end of input after '>'"]),
        ("status = FINISHED", ["expected a value", "'FINISHED' at position 10"]),
        ("status IN ()", ["empty IN list", "position 12"]),
        ("status IN 'a'", ["expected '(' after IN", "position 11"]),
        ("status IN ('a' 'b')", ["expected ',' or ')'", "position 16"]),
        ("params.lr IS 1", ["expected NULL", "'1' at position 14"]),
        ("params.lr NOT = 1", ["expected an operator", "'=' at position 15"]),
        ("metrics.acc LIKE '%a'", ["LIKE does not apply", "metrics.acc"]),
        ("params.x LIKE 5", ["LIKE needs a quoted pattern", "'5' at position 15"]),
        ("dirty = 'yes'", ["'dirty' takes true", "position 9"]),
        ("dirty = 2", ["'dirty' takes true", "'2' at position 9"]),
        ("dirty ILIKE 'x'", ["ILIKE does not apply"]),
        ("params.x = true", ["quote 'true' at position 12"]),
        ("metrics.acc > 1 ; DROP TABLE runs", ["unexpected character ';'", "position 17"]),
        ("metrics.acc ! 1", ["unexpected character '!'", "position 13"]),
        ("`val loss` > 1", ["unknown attribute 'val loss'", "position 1"]),
    ],
)
def test_bad_filters(expr, fragments):
    with pytest.raises(BadInputError) as info:
        compile_filter(expr)
    message = str(info.value)
    assert message.startswith("bad filter: ")
    for fragment in fragments:
        assert fragment in message
    assert info.value.exit_code == 2


def test_bad_filter_hints():
    with pytest.raises(BadInputError) as info:
        compile_filter("colour = 'red'")
    for name in ("status", "start_time", "commit", "dirty"):
        assert name in info.value.hint
    with pytest.raises(BadInputError) as info:
        compile_filter("foo.bar = 1")
    assert "metrics." in info.value.hint
    with pytest.raises(BadInputError) as info:
        compile_filter("status = FINISHED")
    assert "quote" in info.value.hint


def test_default_order(db):
    assert compile_order_by(None) == ("", [], "r.start_time DESC, r.id", [])
    assert compile_order_by("") == ("", [], "r.start_time DESC, r.id", [])
    assert compile_order_by([]) == ("", [], "r.start_time DESC, r.id", [])
    assert ordered(db, None) == ["r4", "r3", "r2", "r1", "r5"]


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        ("metrics.acc", ["r2", "r3", "r1", "r5", "r4"]),
        ("metrics.acc ASC", ["r2", "r3", "r1", "r5", "r4"]),
        ("metrics.acc DESC", ["r1", "r5", "r3", "r2", "r4"]),
        # runs that tie (here: lacking the key) come newest first, as in MLflow
        ("metrics.`val loss` desc", ["r3", "r1", "r4", "r2", "r5"]),
        ("params.lr DESC", ["r3", "r2", "r4", "r1", "r5"]),
        # params sort as text, as MLflow's do ('12' < '6' < 'abc'), missing last
        ("params.model.depth ASC", ["r1", "r2", "r3", "r4", "r5"]),
        ("params.model.depth DESC", ["r3", "r2", "r1", "r4", "r5"]),
        # NUMERIC: plain numbers by value (6 before 12), then text, then missing
        ("params.model.depth NUMERIC", ["r2", "r1", "r3", "r4", "r5"]),
        ("params.model.depth numeric DESC", ["r1", "r2", "r3", "r4", "r5"]),
        ("tags.team NUMERIC", ["r2", "r1", "r4", "r3", "r5"]),
        ("tags.note", ["r3", "r2", "r1", "r4", "r5"]),  # sqlite text order: "G" < "b" < "g"
        ("tags.team DESC", ["r1", "r2", "r4", "r3", "r5"]),
        ("start_time ASC", ["r1", "r2", "r3", "r4", "r5"]),
        ("attributes.start_time DESC", ["r4", "r3", "r2", "r1", "r5"]),
        ("branch DESC", ["r3", "r1", "r5", "r2", "r4"]),
        ("dirty DESC, id DESC", ["r2", "r4", "r3", "r1", "r5"]),
        ("tags.team, metrics.loss DESC", ["r2", "r1", "r4", "r3", "r5"]),
        (["tags.team", "metrics.loss DESC"], ["r2", "r1", "r4", "r3", "r5"]),
        (["tags.team DESC", "metrics.acc"], ["r1", "r2", "r3", "r5", "r4"]),
    ],
)
def test_order_by(db, order_by, expected):
    assert ordered(db, order_by) == expected


def test_order_by_sql_shape():
    joins, params, body, body_params = compile_order_by("metrics.acc DESC")
    # one join per keyed sort key; a number, then NaN (stored as NULL), then no such metric;
    # ties newest first
    assert joins == " LEFT JOIN metrics s0 ON s0.run = r.rid AND s0.key = ?"
    assert body == ("CASE WHEN s0.run IS NULL THEN 2 WHEN s0.value IS NULL THEN 1 ELSE 0 END, "
                    "s0.value DESC, r.start_time DESC, r.id")
    assert (params, body_params) == (["acc"], [])
    assert compile_order_by("id") == ("", [], "r.id IS NULL, r.id ASC, r.start_time DESC, r.id", [])


@pytest.mark.parametrize(
    ("order_by", "fragments"),
    [
        ("metrics.acc sideways", ["expected ASC, DESC", "'sideways' at position 13"]),
        ("metrics.acc DESC ASC", ["expected ASC, DESC", "'ASC' at position 18"]),
        ("metrics.acc,", ["expected a key", "end of input after ','"]),
        ("metrics.acc,,params.lr", ["expected a key", "',' at position 13"]),
        ("DESC", ["expected a key", "'DESC' at position 1"]),
        ("colour", ["unknown attribute 'colour'"]),
        ("foo.bar", ["unknown key prefix 'foo'"]),
        ("metrics.acc > 1", ["expected ASC, DESC", "'>' at position 13"]),
        (["metrics.acc", "params.`x"], ["unterminated string", "position 8"]),
        (["metrics.acc", ""], ["an empty sort key"]),
        ("params.lr sideways", ["expected NUMERIC, ASC, DESC", "'sideways' at position 11"]),
        ("metrics.acc NUMERIC", ["NUMERIC applies to params and tags"]),
        ("datasets.name", ["cannot be sorted by datasets.name"]),
    ],
)
def test_bad_order_by(order_by, fragments):
    with pytest.raises(BadInputError) as info:
        compile_order_by(order_by)
    message = str(info.value)
    assert message.startswith("bad order_by: ")
    for fragment in fragments:
        assert fragment in message


def test_order_by_rejects_non_string_items():
    with pytest.raises(BadInputError):
        compile_order_by(["metrics.acc", 3])  # type: ignore[list-item]


def test_random_token_soup_never_crashes(db):
    """Any input either raises BadInputError or becomes a query the index runs."""
    atoms = ["metrics.acc", "params.lr", "tags.x", "status", "dirty", "=", "!=", "<", ">=",
             "LIKE", "ILIKE", "IN", "NOT", "IS", "NULL", "(", ")", ",", "'a'", '"b"', "1",
             "-2.5e3", "true", "AND", "OR", "`", "'", '"', "\\", "metrics.", "params.`x y`",
             ";", "%", "DESC", "foo.bar"]  # fmt: skip
    rng = random.Random(1234)
    compiled = 0
    for _ in range(3000):
        text = " ".join(rng.choice(atoms) for _ in range(rng.randint(0, 7)))
        for argument in ("filter", "order_by"):
            try:
                query = compile_query(**{argument: text})
            except BadInputError:
                continue
            index.search_ids(db, query)
            compiled += 1
    assert compiled > 100


# -- bounds: depth, length, term count; SQL that SQLite accepts within them -----------------------

@pytest.fixture(scope="module")
def strict_db(tmp_path_factory):
    """The fixture db with SQLite's compile-time default limits, which other builds keep (this
    one allows more variables and SQL text): what compiles must run on any SQLite."""
    conn = fixture_db(tmp_path_factory.mktemp("strict") / "index.sqlite")
    conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 32766)
    conn.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, 1_000_000)
    conn.setlimit(sqlite3.SQLITE_LIMIT_EXPR_DEPTH, 1000)
    conn.setlimit(sqlite3.SQLITE_LIMIT_COMPOUND_SELECT, 500)
    yield conn
    conn.close()


def nested(levels: int, inner: str = "metrics.acc > 0.8") -> str:
    """``levels`` parentheses deep, alternating AND and OR (the shape flattening cannot undo)."""
    heads = ["(tags.team = 'nlp' OR " if i % 2 else "(params.lr < 0.05 AND " for i in range(levels)]
    return "".join(reversed(heads)) + inner + ")" * levels


def bad(expr, *fragments, compile_=compile_filter):
    with pytest.raises(BadInputError) as info:
        compile_(expr)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, message
    assert info.value.exit_code == 2
    return message


def test_thousand_term_or_works(strict_db):
    expr = " OR ".join(f"run_id = 'nope{i}'" for i in range(998))
    expr += " OR run_id = 'r4' OR metrics.acc = 0.5"
    assert matching(strict_db, expr) == ["r2", "r4"]
    and_chain = " AND ".join(["metrics.acc > 0.1"] * 1000 + ["params.lr < 0.005"])
    assert matching(strict_db, and_chain) == ["r1"]


def test_long_chains_are_balanced_groups():
    sql, params = compile_filter(" OR ".join(f"status = 's{i}'" for i in range(200)))
    assert params == [f"s{i}" for i in range(200)]
    # 200 operands: four groups of at most 64 under one OR, not one chain 200 deep.
    groups = ["(" + " OR ".join(["(r.status IN (?))"] * n) + ")" for n in (64, 64, 64, 8)]
    assert sql == "(" + " OR ".join(groups) + ")"


@pytest.mark.parametrize("terms", [1000, MAX_TERMS])
def test_long_in_lists_work(strict_db, terms):
    values = ", ".join(f"'v{i}'" for i in range(terms - 2))
    assert matching(strict_db, f"name IN ({values}, 'beta', 'alpha')") == ["r1", "r2"]
    assert matching(strict_db, f"name NOT IN ({values}, 'beta', 'alpha')") == ["r3", "r4", "r5"]
    numbers = ", ".join(str(i + 100) for i in range(terms - 2))
    assert matching(strict_db, f"params.lr IN ({numbers}, 0.01, '0.1')") == ["r2", "r3"]
    assert matching(strict_db, f"params.model.depth NOT IN ({numbers}, 6)") == ["r1", "r3"]
    assert matching(strict_db, f"metrics.acc IN ({numbers}, 0.7)") == ["r3"]


@pytest.mark.parametrize("levels", [1, 4, 5, 20, MAX_DEPTH])
def test_deep_nesting_up_to_the_limit_works(strict_db, levels):
    def fold(inner: set[str]) -> list[str]:
        # The same nesting evaluated in Python: params.lr < 0.05, tags.team = 'nlp'.
        small_lr, nlp = {"r1", "r2", "r4"}, {"r2"}
        for i in range(levels):
            inner = nlp | inner if i % 2 else small_lr & inner
        return sorted(inner)

    assert matching(strict_db, nested(levels)) == fold({"r1", "r5"})
    assert matching(strict_db, nested(levels, "metrics.acc < 0.8")) == fold({"r2", "r3"})
    assert matching(strict_db, nested(levels, "params.lr = 0.001")) == fold({"r1", "r4"})


def test_redundant_and_same_joiner_parentheses_flatten():
    inner = "metrics.acc > 0.5"
    assert compile_filter("(" * MAX_DEPTH + inner + ")" * MAX_DEPTH) == compile_filter(inner)
    flat = compile_filter("status = 'a' OR status = 'b' OR status = 'c'")
    assert compile_filter("status = 'a' OR (status = 'b' OR (status = 'c'))") == flat


@pytest.mark.parametrize("levels", [MAX_DEPTH + 1, 200, 10_000])
def test_too_deep_is_refused_with_position(levels):
    expr = "(" * levels + "metrics.acc > 1" + ")" * levels
    bad(expr, f"more than {MAX_DEPTH} deep", f"at position {MAX_DEPTH + 1}")
    message = bad(nested(levels), f"more than {MAX_DEPTH} deep")
    position = [m.start() for m in re.finditer(r"\(", nested(levels))][MAX_DEPTH] + 1
    assert f"at position {position}" in message


def test_too_many_terms_is_refused_with_position(strict_db):
    within = " OR ".join(["metrics.acc = 0.7"] * MAX_TERMS)
    assert matching(strict_db, within) == ["r3"]
    over = within + " OR metrics.acc = 0.5"
    bad(over, f"more than {MAX_TERMS:,} conditions", f"at position {len(within) + 5}")
    values = ", ".join(["1"] * MAX_TERMS)
    position = len("metrics.acc IN (") + len("1, ") * MAX_TERMS + 1
    bad(f"metrics.acc IN ({values}, 2)", "conditions", f"at position {position}")
    bad(f"metrics.acc > 1 AND metrics.acc IN ({values})", "conditions")


def test_huge_filter_strings():
    # A 1 MB value is data: it is bound, not spliced into the SQL.
    sql, params = compile_filter("params.x = '" + "a" * 1_000_000 + "'")
    assert len(sql) < 200 and params == ["x", "a" * 1_000_000]
    assert compile_filter(" " * 1_000_000) == ("1", [])
    bad("x" * (MAX_FILTER_CHARS + 1), "too long", f"{MAX_FILTER_CHARS + 1:,} characters",
        f"position {MAX_FILTER_CHARS + 1}")
    bad("(" * 1_000_000, f"more than {MAX_DEPTH} deep", f"at position {MAX_DEPTH + 1}")
    bad(")" * 1_000_000, "expected a key", "')' at position 1")
    bad("metrics.acc = 1 OR " * 50_000, "conditions", f"at position {19 * MAX_TERMS + 1}")
    bad("status IN (" + "'a', " * 200_000 + "'b')", "conditions",
        f"at position {len('status IN (') + 5 * MAX_TERMS + 1}")
    bad("status = 'a' " + "@" * 1_000_000, "unexpected character '@' at position 14")
    bad("params.x = '" + "\\" * 300_000, "unterminated string", "position 12")
    # \' does not end a string, but the last quote can: this is one long value, read in linear time.
    assert compile_filter("params.x = '" + "\\'" * 300_000)[1] == ["x", "\\'" * 299_999 + "\\"]


def test_non_string_filters_are_bad_input():
    bad(12, "expected a string, got int")
    bad(["metrics.acc > 1"], "expected a string, got list")
    assert compile_filter(None) == ("1", [])  # type: ignore[arg-type]


def test_deep_filters_match_like_inline_ones(monkeypatch, strict_db):
    """The CTE form used for deep filters selects exactly what the parenthesised form does."""
    rng = random.Random(99)
    leaves = ["metrics.acc > 0.6", "params.lr < 0.05", "tags.team = 'nlp'", "status = 'FINISHED'",
              "name LIKE '%a%'", "metrics.loss IS NULL", "params.optimizer NOT IN ('sgd', 'x')",
              "dirty = 0", "user != 'alice'", "tags.note ILIKE 'good%'"]  # fmt: skip

    def tree(depth: int) -> str:
        if depth == 0 or rng.random() < 0.25:
            return rng.choice(leaves)
        parts = [tree(depth - 1) for _ in range(rng.randint(2, 4))]
        return "(" + rng.choice([" AND ", " OR "]).join(parts) + ")"

    exprs = [tree(rng.randint(2, 7)) for _ in range(60)]
    inline = [matching(strict_db, e) for e in exprs]
    monkeypatch.setattr(index, "_INLINE_NESTING", 0)
    assert all(compile_filter(e)[0].startswith("r.id IN (WITH") for e in exprs if e[0] == "(")
    assert [matching(strict_db, e) for e in exprs] == inline
    assert {tuple(m) for m in inline} > {()}  # the filters do select different runs


def test_many_groups_use_chunked_compounds(strict_db):
    group = "(status = 'FAILED' AND (name = 'beta' OR (user = 'x' AND (branch = 'y' OR dirty = 1))))"
    expr = " OR ".join([group] * 600 + ["metrics.acc = 0.7"])
    sql, _ = compile_filter(expr)
    assert sql.startswith("r.id IN (WITH g1(id) AS")
    assert matching(strict_db, expr) == ["r2", "r3"]


def test_order_by_bounds(db):
    keys = ", ".join(["metrics.acc"] * MAX_ORDER_KEYS)
    joins, _, body, _ = compile_order_by(keys)
    assert joins.count("LEFT JOIN") == index._MAX_SORT_JOINS  # the rest read by subqueries
    assert body.count(" ASC") == MAX_ORDER_KEYS
    # joined and subquery terms sort alike: as many keys as allowed order as one does
    assert ordered(db, keys) == ordered(db, "metrics.acc")
    assert ordered(db, ", ".join(["params.lr DESC"] * MAX_ORDER_KEYS)) == ordered(db, "params.lr DESC")
    bad(keys + ", params.lr", f"more than {MAX_ORDER_KEYS} sort keys", "'params.lr' at position",
        compile_=compile_order_by)
    bad(["start_time"] * (MAX_ORDER_KEYS + 1), "sort keys", compile_=compile_order_by)
    bad({"metrics.acc": 1}, "expected a string or a list, got dict", compile_=compile_order_by)
    bad(7, "got int", compile_=compile_order_by)
    bad(["metrics.acc", b"x"], "expected a string item, got bytes", compile_=compile_order_by)
    bad("metrics.`" + "x" * 1_000_000, "unterminated string", compile_=compile_order_by)
    bad("x" * (MAX_FILTER_CHARS + 1), "bad order_by: too long", compile_=compile_order_by)


def test_search_and_cli_take_a_thousand_term_or(repo):
    """Through the real index and the real CLI: the long OR returns the right runs, a too-deep
    filter is one line and exit code 2."""
    ids = {name: api.commit_run(name=name, metrics={"acc": acc}, repo=repo).id
           for name, acc in (("a", 0.1), ("b", 0.2), ("c", 0.3))}
    expr = " OR ".join([f"run_id = '{i:032x}'" for i in range(998)]
                       + [f"run_id = '{ids['a']}'", "metrics.acc = 0.3"])
    found = api.search_runs(filter=expr, order_by="metrics.acc", repo=repo)
    assert [run.name for run in found] == ["a", "c"]
    result = gitml(repo, "runs", "list", "-f", expr, "-o", "metrics.acc DESC", "--json")
    assert result.code == 0, result.err
    assert [run["name"] for run in json.loads(result.out)] == ["c", "a"]
    deep = "(" * 200 + "metrics.acc > 0" + ")" * 200
    result = gitml(repo, "runs", "list", "-f", deep)
    assert result.code == 2 and result.out == ""
    assert result.err.strip() == (
        f"gitml: error: bad filter: parentheses nested more than {MAX_DEPTH} deep at position "
        f"{MAX_DEPTH + 1} (flatten the filter: AND binds tighter than OR)")
    keys = ",".join(["metrics.acc"] * (MAX_ORDER_KEYS + 1))
    result = gitml(repo, "runs", "list", "-o", keys)
    assert result.code == 2 and "more than 64 sort keys" in result.err


# -- the Query the compiler hands to the index -----------------------------------------------------

def test_a_filter_parses_to_plain_data():
    assert parse_filter("metrics.acc > 0.5 AND (params.lr = 1e-3 OR tags.x IS NOT NULL)") == Group("AND", (
        Condition("metric", "acc", ">", (Value("num", "0.5", 0.5),)),
        Group("OR", (Condition("param", "lr", "=", (Value("num", "1e-3", 0.001),)),
                     Condition("tag", "x", "NULL", (), negate=True))),
    ))
    assert parse_filter("name NOT IN ('a', \"b\")") == Condition(
        "attr", "name", "IN", (Value("str", "'a'", "a"), Value("str", '"b"', "b")), negate=True)
    assert parse_filter("dirty <> true") == Condition("attr", "dirty", "!=", (Value("bool", "true", True),))
    # attribute aliases name one attribute: the index maps it to its column
    assert {parse_filter(f"{a} = 'x'").name for a in ("id", "run_id", "attributes.run_id")} == {"id"}
    assert {parse_filter(f"{a} = 'x'").name for a in ("commit", "source_commit")} == {"commit"}
    assert parse_filter(None) is None and parse_filter(" ") is None


def test_sort_keys_parse_to_plain_data():
    assert parse_order_by("metrics.acc DESC, start_time") == (
        SortKey("metric", "acc", descending=True), SortKey("attr", "start_time"))
    assert parse_order_by(["params.`a b` asc", "run.source_commit desc"]) == (
        SortKey("param", "a b"), SortKey("attr", "commit", descending=True))
    assert parse_order_by(None) == parse_order_by("") == parse_order_by([]) == ()


def test_compile_query_gathers_filter_order_experiments_and_limit():
    query = compile_query("status = 'FINISHED'", "metrics.acc DESC", "exp1", 3)
    assert query == Query(Condition("attr", "status", "=", (Value("str", "'FINISHED'", "FINISHED"),)),
                          (SortKey("metric", "acc", True),), ("exp1",), 3)
    assert compile_query() == Query()
    assert compile_query(experiment=["a", "b"], limit=0).experiments == ("a", "b")
    assert compile_query(limit=0).limit is None
    assert compile_query(limit=2.0).limit == 2 and compile_query(limit=float("inf")).limit == 2**63 - 1
    for bad_args, fragment in (({"limit": "5"}, "bad limit"), ({"limit": True}, "bad limit"),
                               ({"limit": -5}, "whole number"), ({"limit": 2.5}, "whole number"),
                               ({"experiment": ["a", 1]}, "bad experiment")):
        with pytest.raises(BadInputError, match=fragment):
            compile_query(**bad_args)


def test_experiments_and_limit_in_the_index(db):
    assert index.search_ids(db, compile_query(experiment="exp2")) == ["r4", "r3"]
    assert index.search_ids(db, compile_query(experiment=["exp2", "exp1"], order_by="id", limit=3)) == [
        "r1", "r2", "r3"]
    assert index.search_ids(db, compile_query("metrics.acc > 0.6", experiment="exp1")) == ["r1", "r5"]
    assert index.search_ids(db, compile_query(experiment="nope")) == []
    sql, params = index.search_statement(compile_query("metrics.acc > 0.6", "name", ["exp1"], 2), "id")
    assert sql == ("SELECT r.id FROM runs r WHERE (r.rid IN (SELECT m.run FROM metrics m "
                   "WHERE m.key = ? AND m.value > ?)) AND r.experiment IN (?) "
                   "ORDER BY r.name IS NULL, r.name ASC, r.start_time DESC, r.id LIMIT ?")
    assert params == ["acc", 0.6, "exp1", 2]
