"""Tests for gitml.core.filter: filters and sort keys run against a real in-memory SQLite db."""

from __future__ import annotations

import random
import sqlite3

import pytest

from gitml.core.errors import BadInputError
from gitml.core.filter import compile_filter, compile_order_by

SCHEMA = """
CREATE TABLE runs(id TEXT PRIMARY KEY, name TEXT, experiment TEXT, status TEXT, start_time TEXT,
    end_time TEXT, user TEXT, source_commit TEXT, branch TEXT, dirty INTEGER, doc TEXT);
CREATE TABLE params(run_id TEXT, key TEXT, value TEXT, num REAL);
CREATE TABLE metrics(run_id TEXT, key TEXT, value REAL, step INTEGER, timestamp TEXT);
CREATE TABLE tags(run_id TEXT, key TEXT, value TEXT);
CREATE INDEX params_key ON params(key, run_id);
CREATE INDEX metrics_key ON metrics(key, value);
CREATE INDEX tags_key ON tags(key, run_id);
"""

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


@pytest.fixture(scope="module")
def db():
    conn = sqlite3.connect(":memory:")
    conn.executescript(SCHEMA)
    conn.executemany("INSERT INTO runs VALUES (?,?,?,?,?,?,?,?,?,?,NULL)", RUNS)
    conn.executemany("INSERT INTO metrics VALUES (?,?,?,0,NULL)", METRICS)
    conn.executemany("INSERT INTO params VALUES (?,?,?,?)", PARAMS)
    conn.executemany("INSERT INTO tags VALUES (?,?,?)", TAGS)
    yield conn
    conn.close()


def matching(db, expr):
    sql, params = compile_filter(expr)
    rows = db.execute(f"SELECT r.id FROM runs r WHERE {sql} ORDER BY r.id", params)
    return [row[0] for row in rows]


def ordered(db, order_by):
    sql, params = compile_order_by(order_by)
    return [row[0] for row in db.execute(f"SELECT r.id FROM runs r ORDER BY {sql}", params)]


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
        ("name LIKE 'eps\\%%'", ["r5"]),
        ("name LIKE 'eps\\%'", []),
        ("name ILIKE 'EPS\\%ILON'", ["r5"]),
        ("name ILIKE '%\\_%'", []),
        ("name LIKE '%a%'", ["r1", "r2", "r3", "r4"]),
        ("name LIKE '%A%'", []),
        # tags: text
        ("tags.note = 'good run'", ["r1"]),
        ("tags.note ILIKE 'good%'", ["r1", "r3"]),
        ("tags.note != 'bad'", ["r1", "r3", "r4"]),
        ("tag.team IS NULL", ["r3", "r4", "r5"]),
        ("tags.team IS NOT NULL", ["r1", "r2"]),
        ("tags.note = 'it''s'", ["r4"]),
        ("tags.note = 'it\\'s'", ["r4"]),
        ('tags.note = "it\'s"', ["r4"]),
        ('tags.note = "it""s"', []),
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
        "EXISTS (SELECT 1 FROM metrics m WHERE m.run_id = r.id AND +m.key = ? AND m.value > ?)"
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
    sql, _ = compile_order_by("metrics.zzkey DESC, params.yykey, tags.wwkey")
    assert "zzkey" not in sql and "yykey" not in sql and "wwkey" not in sql


@pytest.mark.parametrize(
    ("expr", "fragments"),
    [
        ("foo.bar = 1", ["unknown key prefix 'foo'", "position 1"]),
        ("metrics.acc 0.5", ["expected an operator", "'0.5' at position 13"]),
        ("metrics.acc", ["expected an operator", "end of input after 'metrics.acc'"]),
        ("params.lr = 'abc", ["unterminated string", "position 13"]),
        ('params."lr = 1', ["unterminated string", "position 8"]),
        ("metrics.acc > 0.5 AND", ["expected a key", "end of input after 'AND'", "position 22"]),
        ("AND metrics.acc > 0.5", ["expected a key", "'AND' at position 1"]),
        ("metrics.acc > 0.5 AND OR x = 1", ["expected a key", "'OR' at position 23"]),
        ("metrics.acc > 'high'", ["compares numerically", "\"'high'\" at position 15"]),
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
        ("`val loss` > 1", ["unexpected character '`'", "position 1"]),
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
    assert compile_order_by(None) == ("r.start_time DESC, r.id", [])
    assert compile_order_by("") == ("r.start_time DESC, r.id", [])
    assert compile_order_by([]) == ("r.start_time DESC, r.id", [])
    assert ordered(db, None) == ["r4", "r3", "r2", "r1", "r5"]


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        ("metrics.acc", ["r2", "r3", "r1", "r5", "r4"]),
        ("metrics.acc ASC", ["r2", "r3", "r1", "r5", "r4"]),
        ("metrics.acc DESC", ["r1", "r5", "r3", "r2", "r4"]),
        ("metrics.`val loss` desc", ["r3", "r1", "r2", "r4", "r5"]),
        ("params.lr DESC", ["r3", "r2", "r1", "r4", "r5"]),
        # numeric params sort by number (6 before 12), then text, missing last
        ("params.model.depth ASC", ["r2", "r1", "r3", "r4", "r5"]),
        ("params.model.depth DESC", ["r3", "r1", "r2", "r4", "r5"]),
        ("tags.note", ["r3", "r2", "r1", "r4", "r5"]),  # sqlite text order: "G" < "b" < "g"
        ("tags.team DESC", ["r1", "r2", "r3", "r4", "r5"]),
        ("start_time ASC", ["r1", "r2", "r3", "r4", "r5"]),
        ("attributes.start_time DESC", ["r4", "r3", "r2", "r1", "r5"]),
        ("branch DESC", ["r1", "r3", "r5", "r2", "r4"]),
        ("dirty DESC, id DESC", ["r2", "r4", "r3", "r1", "r5"]),
        ("tags.team, metrics.loss DESC", ["r2", "r1", "r4", "r3", "r5"]),
        (["tags.team", "metrics.loss DESC"], ["r2", "r1", "r4", "r3", "r5"]),
        (["tags.team DESC", "", "metrics.acc"], ["r1", "r2", "r3", "r5", "r4"]),
    ],
)
def test_order_by(db, order_by, expected):
    assert ordered(db, order_by) == expected


def test_order_by_sql_shape():
    sql, params = compile_order_by("metrics.acc DESC")
    value = "(SELECT m.value FROM metrics m WHERE m.run_id = r.id AND m.key = ?)"
    assert sql == f"{value} IS NULL, {value} DESC, r.id"
    assert params == ["acc", "acc"]
    assert compile_order_by("id") == ("r.id IS NULL, r.id ASC, r.id", [])


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
    """Any input either raises BadInputError or compiles to SQL that sqlite accepts."""
    atoms = ["metrics.acc", "params.lr", "tags.x", "status", "dirty", "=", "!=", "<", ">=",
             "LIKE", "ILIKE", "IN", "NOT", "IS", "NULL", "(", ")", ",", "'a'", '"b"', "1",
             "-2.5e3", "true", "AND", "OR", "`", "'", '"', "\\", "metrics.", "params.`x y`",
             ";", "%", "DESC", "foo.bar"]  # fmt: skip
    rng = random.Random(1234)
    compiled = 0
    for _ in range(3000):
        text = " ".join(rng.choice(atoms) for _ in range(rng.randint(0, 7)))
        for compile_, query in (
            (compile_filter, "SELECT r.id FROM runs r WHERE {}"),
            (compile_order_by, "SELECT r.id FROM runs r ORDER BY {}"),
        ):
            try:
                sql, params = compile_(text)
            except BadInputError:
                continue
            db.execute(query.format(sql), params).fetchall()
            compiled += 1
    assert compiled > 100
