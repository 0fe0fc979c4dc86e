"""gitml.yaml is checked against a schema: unknown keys and wrong types name the key's path."""

from __future__ import annotations

import pytest
from conftest import git, gitml

from gitml.core.config import MAX_CONFIG_BYTES, Goal, load_config, load_config_at, parse_config
from gitml.core.errors import BadInputError
from gitml.core.gitrepo import GitRepo

FULL = """\
params: [params.yaml]
metrics_files: [metrics.json, eval/metrics.json]
metrics:
  accuracy: max
  val_loss: {direction: min, tolerance: 0.01}
  latency_ms: {direction: min, tolerance: 0.05, relative: true}
experiment: churn
remotes:
  storage:
    url: s3://ml-artifacts/churn
    options: {endpoint_url: "http://127.0.0.1:9000", anon: false, retries: 3}
  archive: gs://ml-archive/churn
default_remote: storage
registry:
  stages: [dev, staging, prod]
  promotion: [dev, staging, prod]
  one_stage_per_version: false
hooks:
  pre-push:
    upload: true
    on_unreachable: {origin: block, default: warn}
    gates:
      - branches: [main, release/*]
        require_run: true
        metrics:
          accuracy: {min: 0.90}
          val_loss: {max_regression: 0.02, against: main}
"""


def test_the_documented_example_is_valid():
    config = parse_config(FULL)
    assert config.params == ["params.yaml"] and config.metrics == ["metrics.json", "eval/metrics.json"]
    assert config.experiment == "churn"
    assert config.goals == {"accuracy": Goal("max"), "val_loss": Goal("min", 0.01),
                            "latency_ms": Goal("min", 0.05, True)}
    assert config.pre_push["gates"][0]["branches"] == ["main", "release/*"]
    assert config.raw["remotes"]["archive"] == "gs://ml-archive/churn"
    assert parse_config("").raw == {} and parse_config("# only a comment\n").params == ["params.yaml"]


@pytest.mark.parametrize("text, key, expected", [
    ("params: p.yaml\n", ("params",), ["p.yaml"]),
    ("metrics: m.json\n", ("metrics",), ["m.json"]),
    ("metrics_files: m.json\nmetrics: {acc: max}\n", ("metrics_files",), ["m.json"]),
    ("registry: {stages: prod, promotion: prod}\n", ("registry", "stages"), ["prod"]),
    ("registry: {promotion: prod}\n", ("registry", "promotion"), ["prod"]),
    ("hooks:\n  pre-push:\n    gates:\n      - {branches: main, require_run: true}\n",
     ("hooks", "pre-push", "gates", 0, "branches"), ["main"]),
])
def test_one_string_is_a_one_item_list(text, key, expected):
    value = parse_config(text).raw
    for part in key:
        value = value[part]
    assert value == expected


def test_files_fields_follow_the_normalized_lists():
    assert parse_config("params: p.yaml\nmetrics: m.json\n").metrics == ["m.json"]
    assert parse_config("metrics: {acc: max}\n").metrics == ["metrics.json"]
    assert parse_config("params:\nexperiment:\n").params == ["params.yaml"]  # null: not given


GATE = "hooks:\n  pre-push:\n    gates:\n      - branches: [main]\n        metrics:\n          acc: "


@pytest.mark.parametrize("text, message", [
    ("foo: 1\n", "foo: unknown key (expected one of: default_remote, experiment, hooks, metrics, "
                 "metrics_files, params, project, registry, remotes)"),
    ("params: 3\n", "params: expected a list of file names, got a number (3)"),
    ("params: [a, '']\n", "params[1]: must not be empty"),
    ("experiment: [a]\n", "experiment: expected text, got a list"),
    ('experiment: "a\\nb"\n', "experiment: invalid experiment: 'a\\nb'"),
    ('registry:\n  stages: ["bad stage!", prod]\n',
     "registry.stages[0]: invalid stage name 'bad stage!' (letters, digits and '-', starting with a "
     "letter, not like a version; any case, read as lowercase: Production is production)"),
    ("registry:\n  promotion: [dev, v1]\n",
     "registry.promotion[1]: invalid stage name 'v1' (letters, digits and '-', starting with "
     "a letter, not like a version; any case, read as lowercase: Production is production)"),
    ("metrics: {acc: up}\n", "metrics.acc: expected max or min, got text ('up')"),
    ("metrics: {val/loss: {direction: min, tolerance: -1}}\n",
     'metrics["val/loss"].tolerance: expected a number >= 0, got -1'),
    ("metrics: {acc: {direction: max, relative: 'yes'}}\n",
     "metrics.acc.relative: expected true or false, got text ('yes')"),
    ("metrics: {acc: {tolerance: 0.1}}\n", "metrics.acc.direction: required"),
    ("metrics: {true: max}\n", "metrics[True]: a key here must be non-empty text (quote it)"),
    ("metrics: [m.json]\nmetrics_files: [n.json]\n",
     "metrics: a list of files and metrics_files both name the metrics files; keep one "
     "(metrics_files goes with a mapping of goals)"),
    ("remotes: [s3://x]\n", "remotes: expected a mapping of artifact remotes, got a list"),
    ("remotes: {s: {uri: s3://x}}\n", "remotes.s.uri: unknown key (expected one of: options, url)"),
    ("remotes: {s: {options: {a: 1}}}\n", "remotes.s.url: required"),
    ("remotes: {s: {url: x, options: {a: {b: 1}}}}\n",
     "remotes.s.options.a: expected text, a number or true/false, got a mapping"),
    ("default_remote: 3\n", "default_remote: expected text, got a number (3)"),
    ("registry: {stage: [prod]}\n",
     "registry.stage: unknown key (expected one of: one_stage_per_version, promotion, stages)"),
    ("registry: {one_stage_per_version: 1}\n",
     "registry.one_stage_per_version: expected true or false, got a number (1)"),
    ("hooks: {pre_push: {}}\n", "hooks.pre_push: unknown key (expected one of: pre-push)"),
    ("hooks: {pre-push: {upload: 'no'}}\n", "hooks.pre-push.upload: expected true or false, got text ('no')"),
    ("hooks: {pre-push: {on_unreachable: ignore}}\n",
     "hooks.pre-push.on_unreachable: expected block or warn, got text ('ignore')"),
    ("hooks: {pre-push: {on_unreachable: {origin: allow}}}\n",
     "hooks.pre-push.on_unreachable.origin: expected block or warn, got text ('allow')"),
    ("hooks: {pre-push: {gates: [{branches: []}]}}\n",
     "hooks.pre-push.gates[0].branches: expected a list of branch patterns, got an empty list"),
    ("hooks: {pre-push: {gates: [{branches: main}]}}\n",
     "hooks.pre-push.gates[0]: a gate checks nothing without require_run: true or metrics"),
    ("hooks: {pre-push: {gates: [{branches: main, require_run: true, metric: {}}]}}\n",
     "hooks.pre-push.gates[0].metric: unknown key (expected one of: branches, metrics, require_run)"),
    (GATE + "{minimum: 0.9}\n", "hooks.pre-push.gates[0].metrics.acc.minimum: unknown key "
                                "(expected one of: against, max, max_regression, min)"),
    (GATE + "0.9\n", "hooks.pre-push.gates[0].metrics.acc: expected a mapping with min, max, "
                     "max_regression or against, got a number (0.9)"),
    (GATE + "{min: '0.9'}\n", "hooks.pre-push.gates[0].metrics.acc.min: expected a number, got text ('0.9')"),
    (GATE + "{min: .nan}\n", "hooks.pre-push.gates[0].metrics.acc.min: expected a finite number, got nan"),
    (GATE + "{min: true}\n", "hooks.pre-push.gates[0].metrics.acc.min: expected a number, got true/false (true)"),
    (GATE + "{max_regression: -0.1}\n",
     "hooks.pre-push.gates[0].metrics.acc.max_regression: expected a number >= 0, got -0.1"),
    (GATE + "{}\n", "hooks.pre-push.gates[0].metrics.acc: a metric rule needs min, max or max_regression"),
    (GATE + "{min: 0.5, against: main}\n",
     "hooks.pre-push.gates[0].metrics.acc.against: only means something with max_regression"),
    (GATE + "{min: 0.9, max: 0.5}\n",
     "hooks.pre-push.gates[0].metrics.acc: min 0.9 is above max 0.5: no value can pass"),
])
def test_unknown_keys_and_wrong_types_name_the_path(text, message):
    with pytest.raises(BadInputError) as caught:
        parse_config(text)
    assert str(caught.value) == f"gitml.yaml: {message}"


@pytest.mark.parametrize("text, message", [
    ("- a list\n", "gitml.yaml: expected a mapping at the top level, got a list"),
    ("params: [oops\n", "gitml.yaml line 2: invalid YAML: did not find expected ',' or ']'"),
    ("base: &b [x]\nparams: *b\n", "gitml.yaml line 1: invalid YAML: anchors and aliases (&, *) are not allowed"),
    ("params: [a]\nexperiment: e\nparams: [b]\n", "gitml.yaml line 3: invalid YAML: key 'params' given twice"),
    ("hooks:\n  <<: {pre-push: {upload: false}}\n", "gitml.yaml line 2: invalid YAML: merge keys (<<) are not allowed"),
    ("experiment: !!timestamp 2024-01-01\n", "gitml.yaml: experiment: expected text, got a date"),
    ("hooks:\n  pre-push:\n    upload: true\n    upload: false\n",
     "gitml.yaml line 4: invalid YAML: key 'upload' given twice"),
    ("params: !!python/name:os.system\n",
     "gitml.yaml line 1: invalid YAML: could not determine a constructor for the tag "
     "'tag:yaml.org,2002:python/name:os.system'"),
])
def test_yaml_that_is_not_a_plain_document_is_refused(text, message):
    with pytest.raises(BadInputError) as caught:
        parse_config(text)
    assert str(caught.value) == message


def test_size_and_encoding_are_bounded(repo):
    (repo / "gitml.yaml").write_text("params: [p.yaml]\n" + "#" * MAX_CONFIG_BYTES + "\n")
    with pytest.raises(BadInputError, match=r"^gitml.yaml: larger than 1 MiB, not a configuration file$"):
        load_config(repo)
    (repo / "gitml.yaml").write_bytes(b"experiment: caf\xe9\n")
    with pytest.raises(BadInputError, match="^gitml.yaml: not UTF-8 text"):
        load_config(repo)


def test_cli_reports_one_line_exit_2_and_changes_nothing(repo):
    (repo / "gitml.yaml").write_text(GATE + "{minimum: 0.9}\n")
    out = gitml(repo, "commit-run", "-m", "acc=1")
    assert out.code == 2
    assert out.err.splitlines() == ["gitml: error: gitml.yaml: hooks.pre-push.gates[0].metrics.acc.minimum: "
                                    "unknown key (expected one of: against, max, max_regression, min)"]
    assert git(repo, "rev-parse", "-q", "--verify", "refs/gitml/runs", check=False) == ""


def test_config_at_a_commit(repo):
    first = git(repo, "rev-parse", "HEAD").strip()
    (repo / "gitml.yaml").write_text("experiment: committed\n")
    git(repo, "add", "gitml.yaml")
    git(repo, "commit", "-qm", "config")
    second = git(repo, "rev-parse", "HEAD").strip()
    (repo / "gitml.yaml").write_text("experiment: work-tree\n")
    (repo / "broken").mkdir()
    with GitRepo(repo) as g:
        assert load_config_at(g, first) is None
        assert load_config_at(g, second).experiment == "committed"
    assert load_config(repo).experiment == "work-tree"
    (repo / "gitml.yaml").unlink()
    (repo / "gitml.yaml").symlink_to("broken")
    git(repo, "add", "gitml.yaml")
    git(repo, "commit", "-qm", "a symlink")
    third = git(repo, "rev-parse", "HEAD").strip()
    with GitRepo(repo) as g, pytest.raises(BadInputError, match=rf"^gitml.yaml at {third[:7]}: not a regular file$"):
        load_config_at(g, third)
    git(repo, "rm", "-q", "--cached", "gitml.yaml")
    (repo / "gitml.yaml").unlink()
    (repo / "gitml.yaml").write_text("params: {a: 1}\n")
    git(repo, "add", "gitml.yaml")
    git(repo, "commit", "-qm", "bad")
    fourth = git(repo, "rev-parse", "HEAD").strip()
    with GitRepo(repo) as g, pytest.raises(BadInputError) as caught:
        load_config_at(g, fourth)
    assert str(caught.value) == f"gitml.yaml at {fourth[:7]}: params: expected a list of file names, got a mapping"
