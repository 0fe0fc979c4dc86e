"""Datasets a run read (issue 14): log_input records name, source, digest and schema; searches find them."""

from __future__ import annotations

import hashlib
import json
import subprocess

import numpy as np
import pandas as pd
import pytest
from conftest import git, gitml

import gitml as api
from gitml.core import runsref
from gitml.errors import BadInputError

FRAME = pd.DataFrame({"age": [31, 45], "plan": ["basic", "pro"], "spend": [12.5, 80.0]})


def test_inputs_are_recorded_searched_and_shown(repo):
    (repo / "data").mkdir()
    (repo / "data" / "train.csv").write_text("age,plan\n31,basic\n")
    (repo / "data" / "more.csv").write_text("age,plan\n45,pro\n")
    with api.start_run(name="trained", repo=repo) as run:
        from_file = api.log_input(str(repo / "data" / "train.csv"))
        api.log_input(repo / "data", context="training", name="all-data")
        from_frame = api.log_input(FRAME, "evaluation", name="holdout", source="s3://bucket/holdout.parquet")
        api.log_input(np.zeros((5, 3), dtype="float32"), "training", name="features")
    with api.start_run(name="other", repo=repo):
        api.log_input(FRAME.iloc[:1], "evaluation", name="holdout")  # other content, other digest
    assert from_file["digest"] == hashlib.sha256(b"age,plan\n31,basic\n").hexdigest()
    assert from_file["source"] == "data/train.csv" and from_file["source_type"] == "path"
    assert json.loads(from_frame["schema"]) == {"mlflow_colspec": [
        {"name": "age", "required": True, "type": "long"}, {"name": "plan", "required": True, "type": "string"},
        {"name": "spend", "required": True, "type": "double"}]}
    assert (from_frame["num_rows"], from_frame["num_elements"]) == (2, 6)
    record = api.get_run(run.id, repo=repo)
    assert sorted(record.inputs) == ["evaluation", "training"]
    assert sorted(record.inputs["training"]) == ["all-data", "features", "train.csv"]
    assert record.inputs["training"]["features"]["schema"] == '{"mlflow_tensorspec": {"dtype": "float32", "shape": [-1, 3]}}'

    def names(expr: str) -> list[str]:
        return sorted(r.name for r in api.search_runs(expr, repo=repo))

    assert names(f"datasets.digest = '{from_frame['digest']}'") == ["trained"]
    assert names("datasets.name = 'holdout'") == ["other", "trained"]
    assert names("datasets.context = 'training' AND datasets.name LIKE 'feat%'") == ["trained"]
    assert names("datasets.name IN ('all-data', 'nothing')") == ["trained"]
    assert names("datasets.name ILIKE 'HOLD%' and params.x IS NULL") == ["other", "trained"]
    shown = gitml(repo, "runs", "show", run.id)
    assert "evaluation  holdout" in shown.out and "s3://bucket/holdout.parquet" in shown.out
    as_json = json.loads(gitml(repo, "runs", "show", run.id, "--json").out)
    assert as_json["inputs"]["evaluation"]["holdout"]["digest"] == from_frame["digest"]
    listed = gitml(repo, "runs", "list", "-f", f"datasets.digest = '{from_file['digest']}'", "--json")
    assert [r["name"] for r in json.loads(listed.out)] == ["trained"]
    fsck = subprocess.run(["git", "fsck", "--strict", "--no-progress"], cwd=repo, capture_output=True, text=True)
    assert fsck.returncode == 0 and fsck.stderr == ""


def test_a_digest_follows_content_not_identity(repo):
    with api.start_run(name="x", repo=repo):
        same = api.log_input(FRAME.copy(), name="a")["digest"]
        again = api.log_input(FRAME, name="a")["digest"]
        changed = api.log_input(FRAME.assign(spend=[12.5, 80.5]), name="b")["digest"]
        renamed = api.log_input(FRAME.rename(columns={"age": "years"}), name="c")["digest"]
        array = api.log_input(np.arange(6).reshape(2, 3), name="d")["digest"]
        reshaped = api.log_input(np.arange(6).reshape(3, 2), name="e")["digest"]
    assert same == again and len({same, changed, renamed}) == 3 and array != reshaped


def test_runs_without_inputs_keep_their_files(repo):
    with api.start_run(name="plain", repo=repo) as run:
        api.log_param("a", 1)
    names = git(repo, "ls-tree", "--name-only", f"{runsref.RUNS_REF}:runs/{run.id[:2]}/{run.id}").split()
    assert "inputs.yaml" not in names and api.get_run(run.id, repo=repo).inputs == {}


@pytest.mark.parametrize("dataset, options, words", [
    ("no/such/file.csv", {}, "does not exist"),
    (object(), {}, "takes a path, a pandas DataFrame"),
    (np.array([object()]), {}, "array of Python objects"),
    ({"name": "x"}, {}, "needs a text 'digest'"),
    ({"digest": "abc", "num_rows": -1}, {}, "num_rows must be a count"),
    (FRAME, {"context": ""}, "dataset context"),
    (FRAME, {"name": "a\nb"}, "dataset name"),
])
def test_bad_inputs_log_nothing(repo, dataset, options, words):
    with api.start_run(name="bad", repo=repo) as run:
        with pytest.raises(BadInputError, match=words):
            api.log_input(dataset, **options)
    assert api.get_run(run.id, repo=repo).inputs == {}


@pytest.mark.parametrize("dataset, source", [({"digest": "d" * 8, "num_rows": -1}, None),
                                             ({"digest": "d" * 8, "schema": 5}, None),
                                             ("data.csv", 5)])
def test_bad_dataset_fields_are_refused_when_logged(repo, dataset, source):
    (repo / "data.csv").write_text("a\n1\n")
    with api.start_run(repo=repo) as run:
        with pytest.raises(BadInputError):
            api.log_input(str(repo / dataset) if isinstance(dataset, str) else dataset, "training", source=source)
    assert api.get_run(run.id, repo=repo).inputs == {}
