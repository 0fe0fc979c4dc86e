"""Issue 11, values: one grammar for values written as text, odd values end to end, flattening
collisions, and the warnings of ``commit-run`` (empty run, params edited after the metrics)."""

from __future__ import annotations

import json
import math
import os

import pytest
from conftest import git, gitml, runs_tip

import gitml as api
from gitml.core.formats import parse_scalar
from gitml.errors import BadInputError


def _record(repo, run_id: str, name: str) -> str:
    return git(repo, "show", f"refs/gitml/runs:runs/{run_id[:2]}/{run_id}/{name}")


def _commit(repo, *args: str) -> str:
    result = gitml(repo, "commit-run", *args)
    assert result.code == 0, result.err
    return result.out.strip()


# -- 1. one grammar: YAML 1.2's core schema ---------------------------------------------------

GRAMMAR = [
    ("1e-5", 1e-05), ("1E5", 100000.0), (".5", 0.5), ("5.", 5.0), ("-2.5e+3", -2500.0),
    ("0o17", 15), ("0x1F", 31), ("007", 7), ("+5", 5), ("-0.0", -0.0),
    ("yes", "yes"), ("on", "on"), ("off", "off"), ("no", "no"), ("1_000", "1_000"),
    ("0b101", "0b101"), ("1:30", "1:30"), ("2026-01-01", "2026-01-01"), ("None", "None"),
    ("true", True), ("False", False), ("null", None), ("~", None),
    ("1e999", math.inf), ("-.inf", -math.inf), ("inf", math.inf), ("-Infinity", -math.inf),
]


@pytest.mark.parametrize(("text", "value"), GRAMMAR)
def test_parse_scalar_is_yaml_12_core(text, value):
    got = parse_scalar(text)
    assert got == value and type(got) is type(value)
    if isinstance(value, float):
        assert math.copysign(1, got) == math.copysign(1, value)  # -0.0 keeps its sign


def test_nan_in_every_spelling():
    for text in (".nan", ".NaN", "nan", "NaN"):
        assert math.isnan(parse_scalar(text))


def test_an_int_of_more_digits_than_python_converts_stays_text():
    text = "1" + "0" * 5000
    assert parse_scalar(text) == text


def test_params_file_and_command_line_read_the_same(repo):
    """The same text gives the same stored value from -p, a YAML file and -m, a metrics file."""
    words = ["1e-5", "yes", "on", "0o17", "0x1F", "1_000", "007", ".5", "-0.0", "null", "'1e-5'"]
    lines = "".join(f"k{i}: {w}\n" for i, w in enumerate(words))
    (repo / "p.yaml").write_text(lines)
    from_file = _commit(repo, "--params", "p.yaml")
    from_flags = _commit(repo, *[a for i, w in enumerate(words[:-1]) for a in ("-p", f"k{i}={w}")],
                         "-p", f"k{len(words) - 1}='1e-5'")
    file_params = api.get_run(from_file, repo=repo).params
    flag_params = api.get_run(from_flags, repo=repo).params
    expected = {"k0": 1e-05, "k1": "yes", "k2": "on", "k3": 15, "k4": 31, "k5": "1_000", "k6": 7,
                "k7": 0.5, "k8": -0.0, "k9": None}
    for key, value in expected.items():
        assert file_params[key] == value and type(file_params[key]) is type(value), key
        assert flag_params[key] == value and type(flag_params[key]) is type(value), key
    assert file_params["k10"] == "1e-5"  # quoted in YAML: text
    assert flag_params["k10"] == "'1e-5'"  # on the command line quotes are part of the text
    assert "k0: 1.0e-05\n" in _record(repo, from_file, "params.yaml")


def test_metrics_file_in_yaml_12_form(repo):
    (repo / "m.yaml").write_text("loss: 1e-5\nacc: .95\nsteps: 0x10\nbad: .nan\ntop: 1" + "0" * 309 + "\n")
    run_id = _commit(repo, "--metrics", "m.yaml")
    metrics = api.get_run(run_id, repo=repo).metrics
    assert metrics["loss"] == 1e-05 and metrics["acc"] == 0.95 and metrics["steps"] == 16.0
    assert math.isnan(metrics["bad"]) and metrics["top"] == math.inf  # past 1.8e308: inf, as 1e999


def test_metric_flag_uses_the_grammar(repo):
    run_id = _commit(repo, "-m", "a=1e-5", "-m", "b=0x10", "-m", "c=nan", "-m", "d=1" + "0" * 309)
    metrics = api.get_run(run_id, repo=repo).metrics
    assert metrics["a"] == 1e-05 and metrics["b"] == 16.0 and math.isnan(metrics["c"])
    assert metrics["d"] == math.inf
    before = runs_tip(repo)
    for bad in ("1_000", "yes", "true", "0b1", ""):
        result = gitml(repo, "commit-run", "-m", f"x={bad}")
        assert result.code == 2 and "metric 'x' must be a number" in result.err, (bad, result.err)
    assert runs_tip(repo) == before


def test_yaml_metrics_text_is_still_refused(repo):
    (repo / "m.yaml").write_text("acc: yes\n")
    result = gitml(repo, "commit-run", "--metrics", "m.yaml")
    assert result.code == 2 and result.err.strip() == "gitml: error: m.yaml: metric 'acc' must be a number, not a string"


# -- 2. odd values end to end -----------------------------------------------------------------

HUGE = 10**309
ODD_PARAMS = {"huge": HUGE, "neg_huge": -HUGE, "big_float": 1e308, "neg_zero": -0.0,
              "nan": math.nan, "inf": math.inf, "ninf": -math.inf, "long": "x" * 6000,
              "unicode": "café ☃ 中文 🎉", "empty": "", "maxint": 2**63, "digits": "1" + "0" * 400}


@pytest.fixture
def odd(repo):
    """Two runs of awkward values (one with huge ints, one with their neighbours)."""
    first = api.commit_run(name="odd", params=ODD_PARAMS, metrics={"m": 1e308, "z": -0.0, "n": math.nan,
                                                                     "i": HUGE}, repo=repo).id
    second = api.commit_run(name="plain", params={"huge": 1, "neg_huge": -HUGE, "nan": 0.5, "unicode": ""},
                            metrics={"m": -1e308, "z": 0.0, "n": 1.0, "i": 1.0}, repo=repo).id
    return repo, first, second


def test_odd_values_list_and_show(odd):
    repo, first, second = odd
    listed = gitml(repo, "runs", "list")
    assert listed.code == 0 and listed.err == "", listed.err
    assert first[:8] in listed.out and second[:8] in listed.out
    doc = json.loads(gitml(repo, "runs", "list", "--json").out)
    params = next(r for r in doc if r["id"] == first)["params"]
    assert params["huge"] == HUGE and params["neg_huge"] == -HUGE and params["long"] == "x" * 6000
    assert params["nan"] == "nan" and params["inf"] == "inf" and params["ninf"] == "-inf"
    assert params["unicode"] == "café ☃ 中文 🎉" and params["empty"] == "" and params["maxint"] == 2**63
    shown = gitml(repo, "runs", "show", first)
    assert shown.code == 0 and shown.err == "", shown.err
    assert str(HUGE) in shown.out and "café ☃ 中文 🎉" in shown.out and "1" + "0" * 400 in shown.out
    again = api.get_run(first, repo=repo)
    assert again.params["huge"] == HUGE and math.copysign(1, again.params["neg_zero"]) == -1
    assert again.metrics["i"] == math.inf and math.copysign(1, again.metrics["z"]) == -1


def test_odd_values_search(odd):
    repo, first, second = odd

    def ids(expr):
        return {r.id for r in api.search_runs(expr, repo=repo)}

    assert ids(f"params.huge = '{HUGE}'") == {first}  # not a finite float: searched as text
    assert ids(f"params.neg_huge = '{-HUGE}'") == {first, second}
    assert ids("params.big_float > 1e307") == {first}
    assert ids("params.huge = 1") == {second}
    assert ids("params.unicode = 'café ☃ 中文 🎉'") == {first}
    assert ids("params.empty = ''") == {first}
    assert ids("params.long = '" + "x" * 6000 + "'") == {first}
    assert ids("metrics.m < -1e307") == {second}
    assert ids("params.digits = '1" + "0" * 400 + "'") == {first}
    ordered = [r.id for r in api.search_runs(order_by=["params.huge DESC"], repo=repo)]
    assert sorted(ordered) == sorted([first, second])
    result = gitml(repo, "runs", "list", "-f", f"params.huge = '{HUGE}'", "--json")
    assert result.code == 0 and [r["id"] for r in json.loads(result.out)] == [first]


def test_odd_values_diff_and_compare(odd):
    repo, first, second = odd
    result = gitml(repo, "diff", f"run:{first}", f"run:{second}", "--json")
    assert result.code == 0 and result.err == "", result.err
    rows = {(r["kind"], r["key"]): r for r in json.loads(result.out)["rows"]}
    assert rows[("param", "huge")]["values"] == [HUGE, 1]
    assert rows[("param", "huge")]["change"] is None  # 1 - 10**309 has no float
    assert ("param", "neg_huge") not in rows  # equal on both sides
    assert rows[("metric", "m")]["change"] == "-inf"  # -1e308 - 1e308 overflows to -inf
    assert rows[("metric", "i")]["values"] == ["inf", 1.0]
    assert ("metric", "z") not in rows  # -0.0 and 0.0 are the same number
    assert rows[("param", "nan")]["values"] == ["nan", 0.5]
    table = gitml(repo, "diff", f"run:{first}", f"run:{second}")
    assert table.code == 0 and table.err == "" and str(HUGE) in table.out, table.err
    for fmt in ("--md", "--csv"):
        out = gitml(repo, "diff", f"run:{first}", f"run:{second}", fmt)
        assert out.code == 0 and str(HUGE) in out.out, out.err
    compared = gitml(repo, "compare", first, second, "--all")
    assert compared.code == 0 and str(HUGE) in compared.out and str(-HUGE) in compared.out


def test_odd_values_push_and_read_back(odd, tmp_path):
    repo, first, _ = odd
    bare = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(repo, "remote", "add", "origin", str(bare))
    pushed = gitml(repo, "push", "origin")
    assert pushed.code == 0, pushed.err
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(bare), str(clone))
    assert gitml(clone, "pull", "origin").code == 0
    run = api.get_run(first, repo=clone)
    assert run.params["huge"] == HUGE and run.params["unicode"] == "café ☃ 中文 🎉"
    assert run.params["long"] == "x" * 6000 and math.isnan(run.params["nan"])
    assert gitml(clone, "runs", "list").code == 0


def test_odd_values_from_the_command_line(repo):
    huge = "1" + "0" * 309
    run_id = _commit(repo, "-p", f"seed={huge}", "-p", "neg=-0.0", "-p", "e=", "-p", "u=ü",
                     "-m", "acc=1")
    assert "seed: " + huge + "\n" in _record(repo, run_id, "params.yaml")
    for args in (["runs", "list"], ["runs", "show", run_id], ["diff", f"run:{run_id}", f"run:{run_id}"]):
        result = gitml(repo, *args)
        assert result.code == 0 and result.err == "", (args, result.err)
    other = _commit(repo, "-p", "seed=1", "-m", "acc=2")
    result = gitml(repo, "diff", f"run:{run_id}", f"run:{other}")
    assert result.code == 0 and huge in result.out, result.err
    assert [r.id for r in api.search_runs(f"params.seed = '{huge}'", repo=repo)] == [run_id]


def test_an_int_python_cannot_write_is_refused(repo):
    before = runs_tip(repo)
    with pytest.raises(BadInputError) as caught:
        api.commit_run(params={"seed": 10**5000}, repo=repo)
    assert "seed" in str(caught.value) and "digits" in str(caught.value)
    assert runs_tip(repo) == before


def test_run_ids_and_numeric_text_are_shown_verbatim():
    import click
    from click.testing import CliRunner

    from gitml.cli.output import echo_table

    @click.command()
    def show():
        echo_table(["id", "value"], [["12345e12", "1e3"], ["abcdef12", 10**400], ["00001234", 0.5]])

    out = CliRunner().invoke(show).output
    assert "12345e12" in out and "1e3" in out and "00001234" in out and str(10**400) in out
    assert "inf" not in out and "1.2345e+16" not in out


# -- 3. flattening collisions -----------------------------------------------------------------

COLLISIONS = [
    ("p.yaml", "train:\n  lr: 0.1\ntrain.lr: 0.2\n", "'train.lr'"),
    ("p.yaml", "train.lr: 0.2\ntrain:\n  lr: 0.1\n", "'train.lr'"),
    ("p.yaml", "a:\n  b.c: 1\na.b:\n  c: 2\n", "'a.b.c'"),
    ("p.yaml", "a:\n  1: x\na.1: y\n", "'a.1'"),  # an int key and a text one
    ("p.json", '{"a": {"b": 1}, "a.b": 2}', "'a.b'"),
]


@pytest.mark.parametrize(("name", "text", "key"), COLLISIONS)
def test_flattening_collision_is_refused(repo, name, text, key):
    (repo / name).write_text(text)
    before = runs_tip(repo)
    result = gitml(repo, "commit-run", "--params", name, "-m", "acc=1")
    assert result.code == 2, result.err
    assert result.err.startswith(f"gitml: error: {name}: key {key} is given twice"), result.err
    assert runs_tip(repo) == before
    active = repo / ".git" / "gitml" / "active"
    assert not active.exists() or not any(active.iterdir())


def test_flattening_collision_in_a_metrics_file(repo):
    (repo / "m.yaml").write_text("val:\n  loss: 0.1\nval.loss: 0.2\n")
    result = gitml(repo, "commit-run", "--metrics", "m.yaml")
    assert result.code == 2 and "m.yaml: key 'val.loss' is given twice" in result.err
    assert runs_tip(repo) == ""


# -- 15. commit-run's warnings ----------------------------------------------------------------


def test_empty_run_warns(repo):
    result = gitml(repo, "commit-run")
    assert result.code == 0 and len(result.out.strip()) == 32
    assert result.err == (f"gitml: warning: run {result.out.strip()[:8]} records no params, metrics or "
                          "artifacts (none of the files gitml.yaml names exists: params.yaml, metrics.json)\n")
    run = api.commit_run(repo=repo)
    assert run.warnings == [f"run {run.id[:8]} records no params, metrics or artifacts (none of the files "
                            "gitml.yaml names exists: params.yaml, metrics.json)"]


def test_empty_files_warn_without_the_missing_note(repo):
    (repo / "params.yaml").write_text("")
    result = gitml(repo, "commit-run")
    assert result.code == 0
    assert result.err == f"gitml: warning: run {result.out.strip()[:8]} records no params, metrics or artifacts\n"


def test_a_tag_alone_is_still_empty_but_an_artifact_is_not(repo):
    result = gitml(repo, "commit-run", "-t", "team=a")
    assert result.code == 0 and "records no params, metrics or artifacts" in result.err
    (repo / "model.pkl").write_bytes(b"model")
    result = gitml(repo, "commit-run", "-a", "model.pkl")
    assert result.code == 0 and result.err == ""


def test_params_newer_than_metrics_warns(repo):
    (repo / "params.yaml").write_text("lr: 0.1\n")
    (repo / "metrics.json").write_text('{"acc": 0.9}')
    os.utime(repo / "metrics.json", ns=(1_700_000_000 * 10**9, 1_700_000_000 * 10**9))
    os.utime(repo / "params.yaml", ns=(1_700_000_100 * 10**9, 1_700_000_100 * 10**9))
    result = gitml(repo, "commit-run")
    assert result.code == 0
    assert result.err == ("gitml: warning: params.yaml was changed after metrics.json was written: its "
                          "metrics may not come from these params (retrain, or touch the metrics file if "
                          "they do)\n")
    run = api.get_run(result.out.strip(), repo=repo)
    assert run.params == {"lr": 0.1} and run.metrics == {"acc": 0.9}  # recorded all the same


def test_params_older_than_metrics_is_quiet(repo):
    (repo / "params.yaml").write_text("lr: 0.1\n")
    (repo / "metrics.json").write_text('{"acc": 0.9}')
    os.utime(repo / "params.yaml", ns=(1_700_000_000 * 10**9, 1_700_000_000 * 10**9))
    os.utime(repo / "metrics.json", ns=(1_700_000_100 * 10**9, 1_700_000_100 * 10**9))
    result = gitml(repo, "commit-run")
    assert result.code == 0 and result.err == ""


def test_stale_params_given_as_options(repo):
    sub = repo / "out"
    sub.mkdir()
    (sub / "p.yaml").write_text("lr: 0.1\n")
    (sub / "m.yaml").write_text("acc: 0.9\n")
    os.utime(sub / "m.yaml", ns=(1_700_000_000 * 10**9, 1_700_000_000 * 10**9))
    os.utime(sub / "p.yaml", ns=(1_700_000_100 * 10**9, 1_700_000_100 * 10**9))
    result = gitml(repo, "commit-run", "--params", "out/p.yaml", "--metrics", "out/m.yaml")
    assert result.code == 0 and result.err.startswith(
        "gitml: warning: out/p.yaml was changed after out/m.yaml was written"), result.err
    run = api.commit_run(params_files=[sub / "p.yaml"], metrics_files=[sub / "m.yaml"], repo=repo)
    assert len(run.warnings) == 1 and run.warnings[0].startswith("out/p.yaml was changed after out/m.yaml")
    assert api.get_run(run.id, repo=repo).warnings == []  # not stored


def test_text_params_compare_as_numbers_by_the_same_grammar(repo):
    """A param stored as text searches as a number exactly when it is plainly one (issue 18).

    Plainly a number: digits with an optional sign, point and exponent, nothing around them;
    any other text compares as text only, as MLflow compares every param.
    """
    run = api.commit_run(name="texts", params={"lr": "1e-5", "n": "1_000", "flag": "yes", "w": " 0.5 "},
                         repo=repo)
    found = {expr: [r.id for r in api.search_runs(expr, repo=repo)]
             for expr in ("params.lr < 0.001", "params.n = 1000", "params.n = '1_000'", "params.flag = 'yes'",
                          "params.w > 0.4", "params.w = ' 0.5 '")}
    assert found == {"params.lr < 0.001": [run.id], "params.n = 1000": [], "params.n = '1_000'": [run.id],
                     "params.flag = 'yes'": [run.id], "params.w > 0.4": [], "params.w = ' 0.5 '": [run.id]}


@pytest.mark.parametrize("written, value", [("1e-5", 1e-5), ("0.5", 0.5), ("2", 2), ("0o17", 15)])
def test_gitml_yaml_numbers_follow_the_same_grammar(written, value):
    from gitml.core.config import parse_config

    config = parse_config("hooks:\n  pre-push:\n    gates:\n      - branches: [main]\n"
                          f"        metrics:\n          loss: {{max: {written}}}\n"
                          f"metrics:\n  loss: {{direction: min, tolerance: {written}}}\n")
    assert config.pre_push["gates"][0]["metrics"]["loss"]["max"] == value
    assert config.goals["loss"].tolerance == value
    with pytest.raises(BadInputError, match="expected a number"):
        parse_config("metrics:\n  loss: {direction: min, tolerance: 1_000}\n")


def test_non_finite_params_come_back_as_floats_from_search_and_get(repo):
    made = gitml(repo, "commit-run", "-p", "v=inf", "-p", "w=nan", "-p", "x=-inf", "-p", "t=inf text")
    assert made.code == 0, made.err
    for run in (api.search_runs(repo=repo)[0], api.get_run(made.out.strip(), repo=repo)):
        assert run.params["v"] == math.inf and run.params["x"] == -math.inf and math.isnan(run.params["w"])
        assert run.params["t"] == "inf text"
    # Searches see the text MLflow would store, str() of the value: 'inf', 'nan', '-inf'; and
    # 'inf' is not plainly a number, so it never compares as one.
    assert [r.id for r in api.search_runs("params.v = 'inf' AND params.w = 'nan'", repo=repo)] == [made.out.strip()]
    assert api.search_runs("params.v > 1e300", repo=repo) == []
