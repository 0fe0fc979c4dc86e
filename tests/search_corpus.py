"""The dataset and the searches of the differential suite (tests/test_search_mlflow.py).

``RUNS`` is what is logged, the same way, into gitml (through its fluent API) and into MLflow
(through ``MlflowClient``). ``FILTERS`` and ``ORDERS`` are the searches: MLflow's documented
forms, every operator on every kind of key, and the edge cases users hit (values spelled as
MLflow stores them, NaN, quotes and LIKE escapes, text that only looks like a number, ties).

A search is a :class:`Search`. Without ``differs`` it must return exactly MLflow's runs in
MLflow's order, or fail when MLflow fails. ``differs`` names an entry of :data:`DIFFERENCES`,
the deliberate differences docs/tracking.md lists: there gitml accepts what MLflow refuses, and
``same_as`` (when given) gives MLflow filters whose runs, together, are the runs gitml must
return, in MLflow's order for the search's ``order_by``; ``refused`` says gitml refuses what
MLflow accepts.

Filters may name times as ``{start:<run name>}`` (that run's start, epoch milliseconds) or
``{iso:<run name>}`` (the same instant as ISO 8601 text); the test fills them in.
"""

from __future__ import annotations

import math
from typing import NamedTuple

NAN, INF = math.nan, math.inf
_T = 1_796_013_000_123  # a metric timestamp, milliseconds since 1970

#: Deliberate differences from MLflow: name -> the reason (docs/tracking.md lists each name).
DIFFERENCES = {
    "or": "OR and parentheses: MLflow accepts only AND-ed comparisons",
    "in-any-key": "IN and NOT IN on any key: MLflow allows them on run_id only",
    "null-any-key": "IS [NOT] NULL on metrics and attributes: MLflow allows it on params and tags only",
    "not-like": "NOT LIKE and NOT ILIKE: MLflow refuses them",
    "operator-spellings": "== and <> for = and !=: MLflow refuses them",
    "number-literals": "numbers for params and tags (compared as numbers): MLflow wants quoted text",
    "iso-times": "ISO 8601 text for start_time and end_time: MLflow wants milliseconds",
    "gitml-attributes": "the attributes experiment, branch, commit and dirty, which MLflow runs lack",
    "key-characters": "unquoted key names with - / : (MLflow's parser splits them)",
    "order-lists": "several sort keys in one order_by string, and the NUMERIC sort of params and tags",
    "text-numbers": "a string literal compared with <, >: MLflow refuses it for params and tags",
    "key-spellings": "prefixes and attribute names in any case, and `Run name` as a sort key",
    "strict-syntax": "malformed filters MLflow's parser lets through (a dangling AND) are refused",
    "running-runs": "runs in progress are not searched (MLflow's searches include them)",
    "system-tags": "every gitml run answers to MLflow's system tags (mlflow.source.git.commit …)",
    "params-from-text": "params read from text are typed by YAML 1.2, and nested mappings flattened",
    "own-ids": "each tool makes its own run ids, so sorting by run_id or artifact_uri cannot agree",
}


class Search(NamedTuple):
    filter: str = ""
    order_by: tuple[str, ...] = ()
    differs: str | None = None
    same_as: tuple[str, ...] | None = None
    refused: bool = False  # for a difference: gitml refuses what MLflow accepts


# -- the dataset ------------------------------------------------------------------------------
# Each run: name, user (git user.name / MLflow's mlflow.user), status, params (the objects
# logged), metrics ({key: value} or {key: [(value, step[, timestamp ms]), ...]} in logging
# order), tags.

def _base_runs() -> list[dict]:
    n_estimators = [100, 200, 300, 50, "200", "1e2"]
    lrs = [0.1, 0.01, 0.001, 1e-05, 0.5, "0.10"]
    models = ["rf", "logreg", "RF", "rf-200", "xgb", "Logreg"]
    accs = [0.9, 0.8, 0.9, 0.7, NAN, 0.95, None, 0.85]
    teams = ["growth", "risk", "Growth", None]
    users = ["alice", "bob", "Alice"]
    runs = []
    for i in range(24):
        metrics: dict = {"loss": [(1.0 / (i + 1), 0), (0.5 / (i + 1), 1)]}
        if accs[i % len(accs)] is not None:
            metrics["acc"] = accs[i % len(accs)]
        tags = {"priority": str([1, 10, 2][i % 3])}
        if teams[i % len(teams)] is not None:
            tags["team"] = teams[i % len(teams)]
        status = "FAILED" if i % 7 == 3 else "KILLED" if i % 11 == 5 else "FINISHED"
        runs.append({
            "name": f"r{i:02d}", "user": users[i % 3], "status": status, "tags": tags, "metrics": metrics,
            "params": {"n_estimators": n_estimators[i % 6], "lr": lrs[i % 6], "model": models[i % 6]},
        })  # fmt: skip
    return runs


def _special(name: str, params: dict | None = None, metrics: dict | None = None,
             tags: dict | None = None, user: str = "carol", status: str = "FINISHED") -> dict:
    return {"name": name, "user": user, "status": status, "params": params or {},
            "metrics": metrics or {}, "tags": tags or {}}


RUNS: list[dict] = _base_runs() + [
    _special("flag-true", {"flag": True, "opt": None}),
    _special("flag-str", {"flag": "True", "opt": "None"}),
    _special("flag-lower", {"flag": "true", "opt": "null"}),
    _special("flag-false", {"flag": False, "opt": "adam"}),
    _special("seed-1000", {"seed": 1000}, {"m": 5.0}),
    _special("seed-1_000", {"seed": "1_000"}, {"m": NAN}),
    _special("seed-space3", {"seed": " 3"}, {"m": INF}),
    _special("seed-3", {"seed": 3}, {"m": -INF}),
    _special("seed-inf", {"seed": "inf"}, {"m": 0.0}),
    _special("seed-hex", {"seed": "0x10"}, {"m": -0.0}),
    _special("seed-plus", {"seed": "+7"}, {"m": 5}),
    _special("seed-float", {"seed": 1000.0}, {"m": NAN}),
    _special("O'Neil", tags={"quote": "O'Neil", "pct": "5_0"}),
    _special("O''Neil", tags={"quote": "O''Neil", "pct": "5\\_0"}),
    _special("back\\slash", {"path": "C:\\data"}, tags={"bs": "a\\b", "pct": "50"}),
    _special("two\\\\slashes", {"path": "C:\\\\data"}, tags={"bs": "a\\\\b", "pct": "5%0"}),
    _special('say "hi"', {"layers": [64, 32], "cfg": {"a": 1, "b": "x"}, "names": ("x", "y")},
             tags={"quote": 'say "hi"'}),
    _special("café", {"model": "café"}, tags={"team": "Équipe"}, user="Émile"),
    _special("empty", {"empty": ""}, tags={"empty": ""}, status="KILLED"),
    _special("steps", metrics={"loss": [(0.3, 5), (0.1, 3)], "acc": [(0.5, 1), (0.6, 1)]}),
    # MLflow's latest value: highest step, then latest timestamp, then highest value.
    _special("same-ms", metrics={"acc": [(0.6, 1, _T), (0.5, 1, _T)], "loss": [(0.2, 3, _T + 100), (0.3, 3, _T)],
                                 "m": [(NAN, 2, _T), (0.4, 2, _T)], "big": [(7.0, 0, _T + 5), (1.0, 0, _T + 9)]}),
    # NaN counts as 0 when points tie on step and timestamp; ±inf compare as ±1.797e308.
    _special("nan-tie", metrics={"loss": [(NAN, 1, _T), (0.5, 1, _T)], "m": [(NAN, 1, _T), (-1.0, 1, _T)]}),
    _special("nan-tie-2", metrics={"loss": [(0.5, 1, _T), (NAN, 1, _T)], "m": [(-1.0, 1, _T), (NAN, 1, _T)]}),
    # The tags mlflow.runName and mlflow.user are the run's name and user.
    _special("orig", tags={"mlflow.runName": "renamed"}),
    _special("user-tag", tags={"mlflow.user": "override"}, metrics={"m": 2.0}),
    _special("dotted", {"train.lr": 0.2}, {"val loss": 0.25, "a.b": 1.5}, {"mlflow.note.content": "hi"}),
    _special("big", metrics={"big": 1e300, "acc": 0.9}, tags={"team": "risk"}, user="bob"),
]

# -- the searches -----------------------------------------------------------------------------

_OPS = ("=", "!=", "<", "<=", ">", ">=")


def _filters() -> list[Search]:
    out: list[Search] = []
    add = out.append
    # Metrics: every comparison, with NaN, infinities, ties and missing values in the data.
    for key in ("acc", "m", "loss", "big", "`val loss`", "a.b", "nope"):
        for op in _OPS:
            for value in ("0.9", "5", "0", "-1"):
                add(Search(f"metrics.{key} {op} {value}"))
    for text in ("metric.acc > 0.85", "metrics.acc>=0.9", "metrics.acc > .5",
                 "metrics.acc > 5e-1", "metrics.acc > -0.5", "metrics.m = -0.0", "metrics.m != 5.0",
                 "metrics.`acc` > 0.8", 'metrics."acc" > 0.8', "metrics.'acc' > 0.8", "`metrics`.acc > 0.8",
                 "`metric`.acc >= 0.1", "metrics.acc > 0.8 and metrics.loss < 0.1",
                 "metrics.m < 1e400", "metrics.m > -1e400", "metrics.m >= 1e999",
                 "metrics.m = 1.7976931348623157e308", "metrics.loss = 0.5", "metrics.m = 0", "metrics.m = -1",
                 "metrics.loss > 0.4",
                 "metrics.acc > '0.8'", "metrics.acc LIKE '0.9'", "metrics.acc > true", "metrics.acc",
                 "metrics.acc > ",):
        add(Search(text))
    # Params: values as MLflow stores them (str() of what was logged).
    values = {
        "flag": ("'True'", "'true'", "'False'", "'1'"), "opt": ("'None'", "'null'", "'adam'", "''"),
        "seed": ("'1000'", "'1_000'", "' 3'", "'3'", "'inf'", "'0x10'", "'+7'", "'1000.0'", "'1e3'"),
        "lr": ("'0.1'", "'0.10'", "'1e-05'", "'1e-5'", "'0.001'", "'1e-3'"),
        "n_estimators": ("'200'", "'1e2'", "'100'"), "model": ("'rf'", "'RF'", "'café'", "'Café'"),
        "empty": ("''", "' '"), "layers": ("'[64, 32]'", "'[64,32]'"),
        "cfg": ("\"{'a': 1, 'b': 'x'}\"", "'{\"a\": 1, \"b\": \"x\"}'"), "names": ("\"('x', 'y')\"",),
        "path": ("'C:\\data'", "'C:\\\\data'"),
    }
    for key, texts in values.items():
        for value in texts:
            for op in ("=", "!="):
                add(Search(f"params.{key} {op} {value}"))
    for text in ("params.model LIKE 'rf%'", "params.model LIKE 'RF%'", "params.model ILIKE 'rf%'",
                 "params.model LIKE '%f'", "params.model LIKE 'r_'", "params.model LIKE '%'",
                 "params.model ILIKE 'CAF%'", "params.model ILIKE 'café'", "params.model ILIKE 'CAFÉ'",
                 "params.model LIKE 'rf-%'", "params.lr LIKE '0.%'", "params.lr LIKE '1e%'",
                 "params.seed LIKE '%_%'", "params.seed LIKE '1\\_000'", "params.path LIKE 'C:\\%'",
                 "params.path LIKE 'C:\\\\%'", "params.empty LIKE ''", "params.empty LIKE '%'",
                 "param.model = 'rf'", "parameter.model = 'rf'", "parameters.model = 'rf'",
                 "`param`.model = 'rf'", "`params`.model = 'rf'", "params.`train.lr` = '0.2'",
                 "params.train.lr = '0.2'", 'params."train.lr" = \'0.2\'', "params.model = \"rf\"",
                 "params.model IS NULL", "params.model IS NOT NULL", "params.flag is null",
                 "params.nope IS NULL", "params.model = 'rf' AND params.lr = '0.1'",
                 "params.model = 'rf' and params.n_estimators = '100' and metrics.acc > 0.5",
                 "params.model RLIKE 'rf'", "params.model = rf", "params.model = "):
        add(Search(text))
    # Tags, including MLflow's system tags.
    for text in ("tags.team = 'growth'", "tags.team != 'growth'", "tags.team = 'Growth'",
                 "tags.team LIKE 'gr%'", "tags.team LIKE 'Gr%'", "tags.team ILIKE 'gr%'",
                 "tags.team ILIKE 'ÉQUIPE'", "tags.team ILIKE 'équipe'", "tags.team IS NULL",
                 "tags.team IS NOT NULL", "tag.team = 'risk'", "tags.priority = '1'",
                 "tags.priority != '1'", "tags.priority LIKE '1%'", "tags.quote = 'O''Neil'",
                 "tags.quote = \"O'Neil\"", "tags.quote = 'O\\'Neil'", "tags.quote LIKE 'O%Neil'",
                 "tags.quote = 'say \"hi\"'", "tags.quote LIKE '%\"%'", "tags.pct LIKE '5\\_0'",
                 "tags.pct LIKE '5_0'", "tags.pct = '5\\_0'", "tags.pct LIKE '5%0'", "tags.pct LIKE '5\\%0'",
                 "tags.bs = 'a\\b'", "tags.bs = 'a\\\\b'", "tags.bs LIKE 'a\\\\b'", "tags.bs LIKE 'a%b'",
                 "tags.empty = ''", "tags.empty != ''", "tags.`mlflow.runName` = 'r01'",
                 "tags.mlflow.runName = 'r01'", "tags.mlflow.runName LIKE 'r0%'",
                 "tags.`mlflow.user` = 'alice'", "tags.mlflow.user ILIKE 'alice'",
                 "tags.mlflow.note.content = 'hi'", "tags.mlflow.runName IS NULL",
                 "tags.team = 'risk' AND tags.priority = '10'"):
        add(Search(text))
    # Attributes.
    for text in ("attributes.status = 'FINISHED'", "status = 'FAILED'", "status != 'FINISHED'", "status = 'RUNNING'",
                 "attribute.status LIKE 'F%'", "attr.status ILIKE 'killed'", "run.status = 'KILLED'",
                 "status = 'finished'", "run_name = 'r03'", "attributes.run_name LIKE 'r1%'",
                 "run_name ILIKE 'R1%'", "run_name = 'O''Neil'", "run_name = \"O'Neil\"",
                 "run_name = 'O\\'Neil'", "run_name LIKE 'O%'", "run_name = 'back\\slash'",
                 "run_name = 'back\\\\slash'", "run_name = 'two\\\\slashes'", "run_name LIKE '%\\%'",
                 "`Run name` = 'r03'", "`Run Name` = 'r03'", "`run name` = 'r03'", "\"Run name\" = 'r03'",
                 "user_id = 'alice'", "user_id = 'override'", "run_name = 'renamed'", "run_name = 'orig'",
                 "tags.mlflow.runName = 'renamed'", "user_id != 'alice'", "user_id ILIKE 'alice'", "user_id LIKE 'É%'",
                 "attributes.user_id = 'bob'", "artifact_uri LIKE '%'", "artifact_uri != ''",
                 "run_id != 'x'", "run_id IN ('x', 'y')", "run_id NOT IN ('x')", "run_id LIKE '%'",
                 "attributes.run_id = ''", "start_time > 0", "start_time < 0", "end_time > 0",
                 "start_time > 2000000000000", "start_time < 2000000000000", "created > 0",
                 "Created > 0", "attributes.start_time >= 1", "start_time = 'x'", "start_time > '0'",
                 "lifecycle_stage = 'active'",
                 "nope = 'x'", "attributes.nope = 'x'", "status = FINISHED", "status",
                 "status = 'FINISHED' AND metrics.acc > 0.8 AND params.model = 'rf' AND tags.team = 'growth'"):
        add(Search(text))
    for run in ("r00", "r05", "r12", "r23", "flag-true", "big"):
        for op in _OPS:
            add(Search(f"start_time {op} {{start:{run}}}"))
        add(Search(f"end_time >= {{start:{run}}}"))
        add(Search(f"start_time > {{start:{run}}}.5"))
        add(Search(f"start_time >= {{start:{run}}}.5"))
    # Datasets: no run here logged one, so each finds nothing in either tool.
    for text in ("dataset.name = 'd'", "datasets.digest = 'abc'", "dataset.context = 'training'",
                 "datasets.name IN ('a', 'b')", "dataset.name LIKE '%'", "dataset.nope = 'x'"):
        add(Search(text))
    # Syntax MLflow refuses and gitml too.
    for text in ("(metrics.acc > 0.5", "metrics.acc > 0.5)", "nope.acc > 1", "metrics.acc >> 1",
                 "params.model = 'rf", "1 = 1",
                 "metrics.acc > 0.5; metrics.m > 1", "params.model = 'a' 'b'"):
        add(Search(text))
    # Deliberate differences: what gitml accepts beyond MLflow, each with MLflow's equivalent.
    differ = [
        ("or", "params.model = 'rf' OR params.model = 'RF'", ("params.model = 'rf'", "params.model = 'RF'")),
        ("or", "(metrics.acc > 0.9 OR metrics.m = 5) AND status = 'FINISHED'",
         ("metrics.acc > 0.9 AND status = 'FINISHED'", "metrics.m = 5 AND status = 'FINISHED'")),
        ("or", "tags.team = 'risk' or tags.team = 'growth' or run_name = 'big'",
         ("tags.team = 'risk'", "tags.team = 'growth'", "run_name = 'big'")),
        ("in-any-key", "params.model IN ('rf', 'RF')", ("params.model = 'rf'", "params.model = 'RF'")),
        ("in-any-key", "tags.priority IN ('1', '2')", ("tags.priority = '1'", "tags.priority = '2'")),
        ("in-any-key", "tags.priority NOT IN ('1', '2')", ("tags.priority = '10'",)),
        ("in-any-key", "metrics.m IN (5, 0)", ("metrics.m = 5", "metrics.m = 0")),
        ("in-any-key", "run_name IN ('r01', 'r02')", ("run_name = 'r01'", "run_name = 'r02'")),
        ("in-any-key", "status NOT IN ('FINISHED')", ("status != 'FINISHED'",)),
        ("null-any-key", "metrics.acc IS NULL", None),
        ("null-any-key", "end_time IS NULL", ()),
        ("null-any-key", "metrics.m IS NOT NULL", ("metrics.m > 0", "metrics.m <= 0", "metrics.m != 0")),
        ("not-like", "params.model NOT LIKE 'rf%'", ("params.model = 'logreg'", "params.model = 'RF'",
                                                     "params.model = 'xgb'", "params.model = 'Logreg'",
                                                     "params.model = 'café'")),
        ("not-like", "tags.team NOT ILIKE 'gr%'", ("tags.team = 'risk'", "tags.team = 'Équipe'")),
        ("operator-spellings", "params.model == 'rf'", ("params.model = 'rf'",)),
        ("operator-spellings", "params.model <> 'rf'", ("params.model != 'rf'",)),
        ("operator-spellings", "metrics.acc == 0.9", ("metrics.acc = 0.9",)),
        ("number-literals", "params.seed = 1000", ("params.seed = '1000'", "params.seed = '1000.0'")),
        ("number-literals", "params.seed = 3", ("params.seed = '3'",)),
        ("number-literals", "params.seed > 1e10", ()),
        ("number-literals", "params.seed >= 7", ("params.seed = '1000'", "params.seed = '1000.0'",
                                                  "params.seed = '+7'")),
        ("number-literals", "params.lr = 0.1", ("params.lr = '0.1'", "params.lr = '0.10'")),
        ("number-literals", "params.lr < 0.01", ("params.lr = '0.001'", "params.lr = '1e-05'")),
        ("number-literals", "params.n_estimators = 100", ("params.n_estimators = '100'", "params.n_estimators = '1e2'")),
        ("number-literals", "params.n_estimators != 100", ("params.n_estimators = '200'",
                                                           "params.n_estimators = '300'",
                                                           "params.n_estimators = '50'")),
        ("number-literals", "tags.priority = 1", ("tags.priority = '1'",)),
        ("number-literals", "params.flag = 1", ()),
        ("iso-times", "start_time >= '{iso:r12}'", ("start_time >= {start:r12}",)),
        ("iso-times", "start_time < '{iso:r12}'", ("start_time < {start:r12}",)),
        ("iso-times", "start_time LIKE '1%'", ()),
        ("key-spellings", "METRICS.acc > 0.5", ("metrics.acc > 0.5",)),
        ("key-spellings", "Status = 'FAILED'", ("status = 'FAILED'",)),
        ("gitml-attributes", "experiment = 'differential'", ("start_time > 0",)),
        ("gitml-attributes", "dirty = false", ("start_time > 0",)),
        ("gitml-attributes", "branch = 'main'", ("start_time > 0",)),
        ("gitml-attributes", "commit LIKE '%'", ("start_time > 0",)),
        ("key-characters", "metrics.val-loss > 0", ()),
        ("text-numbers", "params.model > 'rf'", ("params.model = 'xgb'", "params.model = 'rf-200'")),
        ("text-numbers", "tags.priority < '10'", ("tags.priority = '1'",)),
    ]
    out += [Search(text, differs=name, same_as=same) for name, text, same in differ]
    # Malformed filters MLflow's parser lets through (a dangling or doubled AND; two comparisons
    # without AND, which finds nothing; no key name), which gitml refuses.
    out += [Search(text, differs="strict-syntax", refused=True)
            for text in ("metrics.acc > 0.5 AND", "AND metrics.acc > 0.5", "metrics.acc > 0.5 metrics.m > 1",
                         "params.model = 'rf' AND AND params.lr = '0.1'", "metrics. > 1")]
    return out


def _orders() -> list[Search]:
    keys = ("metrics.acc", "metrics.m", "metrics.loss", "metrics.`val loss`", "params.lr", "params.seed",
            "params.n_estimators", "params.model", "params.flag", "tags.team", "tags.priority", "tags.quote",
            "start_time", "end_time", "run_name", "status", "user_id", "attributes.run_name", "created",
            "tags.mlflow.runName", "metrics.nope")
    out: list[Search] = []
    for key in keys:
        for suffix in ("", " ASC", " DESC"):
            out.append(Search(order_by=(key + suffix,)))
    for order in (("metrics.acc DESC", "params.model"), ("params.model", "metrics.acc DESC"),
                  ("tags.team", "metrics.acc"), ("status", "run_name DESC"), ("metrics.acc desc",),
                  ("metrics.acc Desc", "start_time asc"), ("user_id", "metrics.m DESC"),
                  ("metrics.acc", "metrics.acc DESC"), ("nope.x",), ("metrics.acc SIDEWAYS",),
                  ("metrics.acc DESC ASC",), ("",), ("dataset.name",), ("lifecycle_stage",)):
        out.append(Search(order_by=order))
    filtered = [("metrics.acc > 0.5", ("metrics.acc DESC",)), ("params.model = 'rf'", ("metrics.acc",)),
                ("tags.team = 'growth'", ("params.lr DESC",)), ("status != 'FINISHED'", ("run_name",)),
                ("metrics.m != 5", ("metrics.m DESC",)), ("metrics.m != 5", ("metrics.m",))]
    out += [Search(f, o) for f, o in filtered]
    out += [
        Search(order_by=("metrics.acc DESC, start_time",), differs="order-lists",
               same_as=None),
        Search(order_by=("params.seed NUMERIC",), differs="order-lists"),
        Search(order_by=("`Run name` DESC",), differs="key-spellings"),
        Search(order_by=("run_id",), differs="own-ids"),
        Search(order_by=("artifact_uri DESC",), differs="own-ids"),
        Search(order_by=("params.n_estimators NUMERIC DESC",), differs="order-lists"),
    ]
    return out


def _generated(count: int = 200, seed: int = 18) -> list[Search]:
    """Random searches MLflow accepts: 1 to 3 AND-ed comparisons and 0 to 3 sort keys.

    Drawn (with a fixed seed, so every run asks the same) from the keys and values the dataset
    holds, to meet combinations no one wrote by hand.
    """
    import random

    rng = random.Random(seed)
    metrics = ("acc", "m", "loss", "big", "`val loss`")
    numbers = ("0", "0.5", "0.9", "5", "-1", "0.85", "1e-3", "2", "1e300")
    params = {"model": ("'rf'", "'RF'", "'logreg'", "'café'"), "lr": ("'0.1'", "'0.001'", "'1e-05'"),
              "n_estimators": ("'100'", "'200'", "'1e2'"), "seed": ("'1000'", "'3'", "' 3'", "'inf'"),
              "flag": ("'True'", "'true'"), "opt": ("'None'", "'adam'")}
    tags = {"team": ("'growth'", "'risk'", "'Growth'"), "priority": ("'1'", "'10'", "'2'"),
            "pct": ("'5_0'", "'5\\_0'", "'50'")}
    patterns = ("'r%'", "'%f'", "'R_'", "'%'", "'%0'", "'gr%'", "'5_0'")
    texts = {"status": ("'FINISHED'", "'FAILED'", "'KILLED'"), "run_name": ("'r01'", "'big'", "'O''Neil'"),
             "user_id": ("'alice'", "'bob'", "'carol'")}

    def comparison() -> str:
        kind = rng.choice(("metric", "metric", "param", "param", "tag", "attr"))
        if kind == "metric":
            return f"metrics.{rng.choice(metrics)} {rng.choice(_OPS)} {rng.choice(numbers)}"
        pool = {"param": params, "tag": tags, "attr": texts}[kind]
        key = rng.choice(sorted(pool))
        prefix = {"param": "params.", "tag": "tags.", "attr": ""}[kind]
        op = rng.choice(("=", "!=", "LIKE", "ILIKE") + (("IS NULL", "IS NOT NULL") if kind != "attr" else ()))
        if op.startswith("IS"):
            return f"{prefix}{key} {op}"
        value = rng.choice(patterns) if "LIKE" in op else rng.choice(pool[key])
        return f"{prefix}{key} {op} {value}"

    sort_keys = ("metrics.acc", "metrics.m", "metrics.loss", "params.lr", "params.seed", "params.model",
                 "tags.team", "tags.priority", "start_time", "end_time", "run_name", "status", "user_id")
    out = []
    for _ in range(count):
        where = " AND ".join(comparison() for _ in range(rng.randint(1, 3)))
        keys = rng.sample(sort_keys, rng.randint(0, 3))
        out.append(Search(where, tuple(f"{k}{rng.choice(('', ' ASC', ' DESC'))}" for k in keys)))
    return out


FILTERS = _filters()
ORDERS = _orders()
SEARCHES: list[Search] = FILTERS + ORDERS + _generated()
