"""Models (issue 13): MLflow's model format saved, logged, registered and loaded with real scikit-learn.

Real estimators, real repositories, a real artifact remote (a folder) and a fresh clone that
pulls; MLflow itself (its own virtualenv, ``GITML_MLFLOW``) loads what gitml saved and saves
what gitml loads. Bad input: one clear error, nothing loaded.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import git, gitml
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import gitml as api
from gitml import registry, sync
from gitml.errors import BadInputError, ModelFormatError, SchemaError, TamperedError
from gitml.models import PythonModel
from gitml.models.signature import ModelSignature, infer_signature

MLFLOW = os.environ.get("GITML_MLFLOW")
X, Y = load_iris(return_X_y=True, as_frame=True)
X = X.rename(columns=lambda c: c.replace(" (cm)", "").replace(" ", "_"))


@pytest.fixture(scope="module")
def forest():
    return RandomForestClassifier(n_estimators=10, random_state=0).fit(X, Y)


@pytest.fixture(scope="module")
def pipeline():
    return make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(X, Y)


class Scaled(PythonModel):
    """A custom model reading its factor from an artifact and taking a ``mult`` param."""

    def load_context(self, context):
        with open(context.artifacts["cfg"]) as f:
            self.factor = json.load(f)["factor"]

    def predict(self, context, model_input, params=None):
        return model_input["x"] * self.factor * (params or {}).get("mult", 1)


class Failing(PythonModel):
    def predict(self, context, model_input, params=None):
        raise ValueError("no negatives")


def test_save_writes_mlflows_layout_and_predicts_the_same(tmp_path, forest):
    saved = api.save_model(forest, tmp_path / "rf", input_example=X[:3])
    folder = tmp_path / "rf"
    assert sorted(p.name for p in folder.iterdir()) == [
        "MLmodel", "conda.yaml", "input_example.json", "model.pkl", "python_env.yaml", "requirements.txt",
        "serving_input_example.json"]
    import sklearn
    import yaml

    mlmodel = yaml.safe_load((folder / "MLmodel").read_text())
    assert mlmodel["flavors"]["python_function"]["loader_module"] == "mlflow.sklearn"
    assert mlmodel["flavors"]["sklearn"] == {"pickled_model": "model.pkl", "serialization_format": "pickle",
                                             "sklearn_version": sklearn.__version__, "code": None,
                                             "skops_trusted_types": None}
    assert len(mlmodel["model_uuid"]) == 32 and mlmodel["model_uuid"] == saved.model_uuid
    assert json.loads(mlmodel["signature"]["inputs"]) == [
        {"type": "double", "name": c, "required": True} for c in X.columns]
    assert json.loads(mlmodel["signature"]["outputs"]) == [{"type": "long", "required": True}]
    assert mlmodel["saved_input_example_info"] == {
        "artifact_path": "input_example.json", "type": "dataframe", "pandas_orient": "split",
        "serving_input_path": "serving_input_example.json"}
    assert (folder / "requirements.txt").read_text() == f"scikit-learn=={sklearn.__version__}\n"
    env = yaml.safe_load((folder / "python_env.yaml").read_text())
    assert env["dependencies"] == ["-r requirements.txt"] and env["python"] == ".".join(map(str, sys.version_info[:3]))
    assert json.loads((folder / "serving_input_example.json").read_text())["dataframe_split"]["columns"] == list(X.columns)
    model = api.load_model(folder)
    assert (model.predict(X) == forest.predict(X)).all()
    assert type(api.models.sklearn.load_model(folder)) is RandomForestClassifier


def test_signature_is_enforced_at_predict(tmp_path, pipeline):
    api.save_model(pipeline, tmp_path / "m", input_example=X[:2])
    model = api.load_model(tmp_path / "m")
    with pytest.raises(SchemaError, match=r"Model is missing inputs \['petal_width'\]"):
        model.predict(X.drop(columns=["petal_width"]))
    as_int = X.round().astype("int64")  # integers widen to the double columns
    assert (model.predict(as_int) == pipeline.predict(as_int.astype(float))).all()
    reordered = X[list(reversed(X.columns))].assign(extra=1)  # order fixed, extra column dropped
    assert (model.predict(reordered) == pipeline.predict(X)).all()
    with pytest.raises(SchemaError, match="can not safely convert"):
        model.predict(X.astype(str))  # text is never read as a number
    records = X[:3].to_dict(orient="records")  # a list of rows works as a DataFrame would
    assert (model.predict(records) == pipeline.predict(X[:3])).all()
    with pytest.raises(SchemaError, match="required but has missing values"):
        model.predict(X[:3].assign(sepal_length=np.nan))


SCALARS = st.one_of(st.floats(allow_nan=False, allow_infinity=False), st.integers(-2**70, 2**70), st.booleans(),
                    st.none(), st.text(max_size=2))
TABLES = st.integers(1, 3).flatmap(lambda width: st.tuples(
    st.lists(st.lists(SCALARS, min_size=width, max_size=width), min_size=1, max_size=4),
    st.one_of(st.none(), st.lists(st.tuples(st.sampled_from(["double", "float", "long", "integer", "string",
                                                             "boolean"]), st.booleans()),
                                  min_size=width, max_size=width))))


def _outcome(read):
    try:
        return read()
    except (BadInputError, ValueError, TypeError) as exc:
        return type(exc).__name__


@settings(max_examples=300, deadline=None)
@given(TABLES)
def test_scoring_reads_rows_exactly_as_pandas_and_the_full_check_would(table):
    """The server's shortcuts (rows of numbers as one array, a frame already of the signature's
    dtypes let through) give what pandas' own reading and the column-by-column check give."""
    from gitml.models import scoring
    from gitml.models import signature as signatures

    rows, types = table
    columns = [f"c{i}" for i in range(len(rows[0]))]
    sig = ModelSignature([{"name": c, "type": t, "required": r} for c, (t, r) in zip(columns, types, strict=True)]
                         ) if types else None
    body = json.dumps({"dataframe_split": {"columns": columns, "data": rows}})

    def fast():
        data, _ = scoring.parse_json(body, sig)
        return signatures.enforce(sig, data)

    def reference():
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(signatures, "_numbers_as_specified", lambda specs, data: False)
            patch.setattr(scoring, "_number_rows", lambda data, columns, signature: None)
            return fast()

    got, want = _outcome(fast), _outcome(reference)
    if isinstance(want, str) or isinstance(got, str):
        assert (got if isinstance(got, str) else "read") == (want if isinstance(want, str) else "read")
    else:
        pd.testing.assert_frame_equal(got, want)


def test_number_rows_that_pandas_must_read():
    from gitml.models import scoring

    sig = ModelSignature([{"name": "a", "type": "double"}, {"name": "b", "type": "double"}])
    assert scoring._number_rows([[1.0, 2.0], [3.0, 4.5]], ["a", "b"], sig).dtype == np.float64
    assert scoring._number_rows([[1, 2]], ["a", "b"], None).dtype == np.int64
    assert scoring._number_rows([[1, 2.5]], ["a", "b"], sig).dtype == np.float64  # every column a double
    for rows, columns, signature in (([[1, 2.5]], ["a", "b"], None),  # a mix without a signature: per column
                                     ([[1, 2.5]], ["a", "c"], sig),  # a column the signature does not type
                                     ([[True, 1.0]], ["a", "b"], sig), ([[None, 1.0]], ["a", "b"], sig),
                                     ([[1.0, 2.0], [3.0]], ["a", "b"], sig), ([[2**64, 1]], ["a", "b"], sig),
                                     ([{"a": 1.0}], ["a"], sig), ([1.0, 2.0], ["a"], sig), ([], ["a"], sig)):
        assert scoring._number_rows(rows, columns, signature) is None, rows
    with pytest.raises(scoring.ProtocolError, match="not a table"):  # too few names for the values
        scoring.parse_json(json.dumps({"dataframe_split": {"columns": ["a"], "data": [[1.0, 2.0]]}}), sig)


def test_infer_signature_kinds():
    frame = pd.DataFrame({"a": [1, 2], "b": [0.5, None], "c": ["x", "y"], "d": [True, False],
                          "e": np.array([1, 2], dtype="int32")})
    assert infer_signature(frame).inputs == [
        {"type": "long", "name": "a", "required": True}, {"type": "double", "name": "b", "required": False},
        {"type": "string", "name": "c", "required": True}, {"type": "boolean", "name": "d", "required": True},
        {"type": "integer", "name": "e", "required": True}]
    assert infer_signature(np.zeros((3, 4), dtype="float32")).inputs == [
        {"type": "tensor", "tensor-spec": {"dtype": "float32", "shape": [-1, 4]}}]
    assert infer_signature([{"a": 1, "b": "x"}, {"a": 2}]).inputs == [
        {"type": "long", "name": "a", "required": True}, {"type": "string", "name": "b", "required": False}]
    sig = infer_signature(frame[["a"]], params={"k": 3, "w": 0.5, "on": True, "names": ["x"]})
    assert sig.params == [{"name": "k", "type": "long", "default": 3, "shape": None},
                          {"name": "w", "type": "double", "default": 0.5, "shape": None},
                          {"name": "on", "type": "boolean", "default": True, "shape": None},
                          {"name": "names", "type": "string", "default": ["x"], "shape": [-1]}]
    assert ModelSignature.from_dict(sig.to_dict()) == sig
    with pytest.raises(BadInputError, match="cannot infer"):
        infer_signature(object())


def test_a_custom_model_with_artifacts_and_params(tmp_path):
    cfg = tmp_path / "cfg.json"
    cfg.write_text('{"factor": 3}')
    example = pd.DataFrame({"x": [1.0, 2.0]})
    sig = infer_signature(example, params={"mult": 1})
    api.save_model(Scaled(), tmp_path / "custom", artifacts={"cfg": str(cfg)}, signature=sig, input_example=example)
    cfg.write_text('{"factor": 100}')  # the model holds its own copy
    model = api.load_model(tmp_path / "custom")
    assert model.predict(pd.DataFrame({"x": [1.0, 5.0]}), params={"mult": 2}).tolist() == [6.0, 30.0]
    assert model.predict(pd.DataFrame({"x": [1, 5]})).tolist() == [3.0, 15.0]  # default param, int widened
    with pytest.raises(SchemaError, match="param 'mult'"):
        model.predict(example, params={"mult": "two"})
    assert model.unwrap_python_model().factor == 3
    api.save_model(LogisticRegression(max_iter=500).fit(X, Y), tmp_path / "lr")
    with pytest.raises(BadInputError, match="not a custom Python model"):
        api.load_model(tmp_path / "lr").unwrap_python_model()


def test_log_model_logs_registers_and_loads_by_every_uri(repo, forest):
    with api.start_run(name="rf", repo=repo) as run:
        info = api.log_model(forest, "models/rf", input_example=X[:3], registered_model_name="churn")
    assert info.model_uri == f"runs:/{run.id}/models/rf" and info.run_id == run.id
    assert registry.which("churn@latest", repo=repo).version == "v0.0.1"
    shown = json.loads(gitml(repo, "runs", "show", run.id, "--json").out)
    assert shown["artifacts"]["models/rf"]["kind"] == "dir" and shown["artifacts"]["models/rf"]["sha256"] == info.sha256
    registry.assign("churn", "v0.0.1", "prod", repo=repo)
    for uri in (info.model_uri, "models:/churn@prod", "models:/churn/v0.0.1", "models:/churn/latest",
                f"runs:/{run.id[:8]}/models/rf"):
        model = api.load_model(uri, repo=repo)
        assert (model.predict(X) == forest.predict(X)).all(), uri
        assert model.metadata.run_id == run.id and model.metadata.artifact_path == "models/rf"
    assert type(api.models.sklearn.load_model("models:/churn@prod", repo=repo)) is RandomForestClassifier
    fsck = subprocess.run(["git", "fsck", "--strict", "--no-progress"], cwd=repo, capture_output=True, text=True)
    assert fsck.returncode == 0 and fsck.stderr == ""


def test_a_logged_model_whose_bytes_changed_is_refused(repo, pipeline):
    with api.start_run(name="lr", repo=repo):
        info = api.log_model(pipeline, "model")
    folder = api.models.model_folder(info.model_uri, repo=repo)
    pickled = folder / "model.pkl"
    os.chmod(pickled, 0o644)
    good = pickled.read_bytes()
    pickled.write_bytes(good[:-1] + b"\x00")  # someone edits the local copy
    with pytest.raises(TamperedError, match="does not match its recorded sha256"):
        api.load_model(info.model_uri, repo=repo)


def test_a_model_whose_cached_bytes_went_bad_is_refused_then_fetched_again(repo, pipeline, tmp_path):
    import hashlib
    import shutil

    from gitml.core import store
    from gitml.core.workspace import open_workspace

    assert gitml(repo, "remote", "add", "store", str(tmp_path / "store")).code == 0
    with api.start_run(name="lr", repo=repo):
        info = api.log_model(pipeline, "model")
    assert gitml(repo, "artifacts", "push").code == 0
    folder = api.models.model_folder(info.model_uri, repo=repo)
    with open_workspace(repo) as ws:
        cached = store.object_path(ws.cache, hashlib.sha256((folder / "model.pkl").read_bytes()).hexdigest())
    shutil.rmtree(folder)  # the next load builds its copy from the cache again
    os.chmod(cached, 0o644)
    cached.write_bytes(cached.read_bytes()[:-1] + b"\x00")  # the disk, or someone, changed the cache
    with pytest.raises(TamperedError, match="cached bytes of model/model.pkl") as caught:
        api.load_model(info.model_uri, repo=repo)
    assert "verify --delete-bad" in caught.value.hint and not folder.exists()  # nothing half-built is left
    bad = gitml(repo, "models", "predict", "-m", info.model_uri, "-i", "nothing.csv")
    assert bad.code == 1 and bad.err.count("\n") == 1 and "cached bytes" in bad.err and "--delete-bad" in bad.err
    assert gitml(repo, "artifacts", "verify", "--delete-bad").code == 1  # it found (and dropped) the bad object
    model = api.load_model(info.model_uri, repo=repo)  # fetched again from the remote, checked
    assert (model.predict(X) == pipeline.predict(X)).all()
    # a remote named but not configured is a typo, refused even when the cache has every byte
    with pytest.raises(BadInputError, match="no artifact remote named 'stor'"):
        api.load_model(info.model_uri, remote="stor", repo=repo)
    for argv in (("models", "info", info.model_uri, "--remote", "stor"),
                 ("artifacts", "get", info.model_uri, "--remote", "stor")):
        typo = gitml(repo, *argv)
        assert (typo.code, typo.out) == (2, "") and "no artifact remote named 'stor'" in typo.err, argv


def test_a_fresh_clone_loads_the_prod_model_from_the_remote(clones, forest, tmp_path):
    origin, a, b = clones
    store = tmp_path / "store"
    assert gitml(a, "remote", "add", "store", str(store)).code == 0
    git(a, "add", "gitml.yaml")
    git(a, "commit", "-qm", "artifact store")
    with api.start_run(name="rf", repo=a):
        api.log_model(forest, "model", registered_model_name="churn")
    registry.assign("churn", "v0.0.1", "prod", repo=a)
    git(a, "push", "-q", "origin", "main")
    sync.push(repo=a)
    git(b, "pull", "-q", "origin", "main")
    sync.pull(repo=b)
    model = api.load_model("models:/churn@prod", repo=b)  # bytes fetched from the store, verified
    assert (model.predict(X) == forest.predict(X)).all()
    assert str(model.path).startswith(str(b / ".git"))


@pytest.mark.parametrize("uri, error, words", [
    ("models:/nope@prod", BadInputError, "nope"),
    ("runs:/" + "ab" * 16 + "/model", BadInputError, "no run"),
    ("models:/churn@staging", Exception, "staging"),
])
def test_uris_that_name_nothing(repo, pipeline, uri, error, words):
    with api.start_run(name="lr", repo=repo):
        api.log_model(pipeline, "model", registered_model_name="churn")
    with pytest.raises(error, match=words):
        api.load_model(uri, repo=repo)


def test_bad_model_folders_are_refused_with_one_clear_error(repo, tmp_path, pipeline):
    with api.start_run(name="lr", repo=repo) as run:
        api.log_model(pipeline, "model")
    with pytest.raises(BadInputError, match="has no artifact 'other'"):
        api.load_model(f"runs:/{run.id}/other", repo=repo)
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelFormatError, match="has no MLmodel file"):
        api.load_model(tmp_path / "empty")
    api.save_model(pipeline, tmp_path / "m")
    import yaml

    text = (tmp_path / "m" / "MLmodel").read_text()

    def edited(flavor: str, key: str, value: str) -> str:
        data = yaml.safe_load(text)
        data["flavors"][flavor][key] = value
        return yaml.safe_dump(data)

    (tmp_path / "m" / "MLmodel").write_text(edited("python_function", "loader_module", "evil.module"))
    with pytest.raises(ModelFormatError, match="unknown model flavor .loader_module 'evil.module'"):
        api.load_model(tmp_path / "m")
    (tmp_path / "m" / "MLmodel").write_text(edited("python_function", "loader_module", "os"))  # importable: still refused
    with pytest.raises(ModelFormatError, match="unknown model flavor .loader_module 'os'"):
        api.load_model(tmp_path / "m")
    (tmp_path / "m" / "MLmodel").write_text(edited("sklearn", "serialization_format", "joblib"))
    with pytest.raises(ModelFormatError, match="unknown sklearn serialization_format 'joblib'"):
        api.load_model(tmp_path / "m")
    (tmp_path / "m" / "MLmodel").write_text(text)
    (tmp_path / "m" / "model.pkl").write_bytes(b"not a pickle")
    with pytest.raises(ModelFormatError, match="not a readable pickle"):
        api.load_model(tmp_path / "m")
    (tmp_path / "m" / "MLmodel").write_text("a: &x [1]\nb: *x\n")
    with pytest.raises(ModelFormatError, match="alias"):
        api.load_model(tmp_path / "m")
    with pytest.raises(BadInputError, match="already exists"):
        api.save_model(pipeline, tmp_path / "m")
    with pytest.raises(BadInputError, match="no model flavor knows how to save"):
        api.save_model(object(), tmp_path / "n")
    with pytest.raises(BadInputError, match="signature must be a gitml.models.ModelSignature"):
        api.save_model(pipeline, tmp_path / "n", signature="abc")
    assert not (tmp_path / "n").exists()
    api.save_model(pipeline, tmp_path / "m2", input_example=X[:2])
    with pytest.raises(SchemaError, match="more than once"):
        api.load_model(tmp_path / "m2").predict(pd.DataFrame([[1.0] * 4], columns=["sepal_length"] * 4))


def test_skops_is_the_safe_path(tmp_path, forest, pipeline):
    api.save_model(pipeline, tmp_path / "lr", serialization_format="skops")
    assert (api.load_model(tmp_path / "lr").predict(X) == pipeline.predict(X)).all()
    with pytest.raises(BadInputError, match="does not trust: sklearn.tree._tree.Tree"):
        api.save_model(forest, tmp_path / "rf", serialization_format="skops")
    assert not (tmp_path / "rf").exists()
    trusted = ["sklearn.tree._tree.Tree"]
    api.save_model(forest, tmp_path / "rf", serialization_format="skops", skops_trusted_types=trusted,
                   input_example=X[:2])  # its outputs inferred by loading it with the trust given
    with pytest.raises(BadInputError, match="does not trust"):  # the file's own list vouches for nothing
        api.load_model(tmp_path / "rf")
    model = api.load_model(tmp_path / "rf", skops_trusted_types=trusted)
    assert (model.predict(X) == forest.predict(X)).all()
    X[:3].to_csv(tmp_path / "rows.csv", index=False)  # the command line names the trusted types too
    refused = gitml(tmp_path, "models", "predict", "-m", "rf", "-i", "rows.csv")
    assert refused.code == 2 and "--skops-trusted-type" in refused.err and refused.out == ""
    allowed = gitml(tmp_path, "models", "predict", "-m", "rf", "-i", "rows.csv", "--skops-trusted-type", trusted[0])
    assert (allowed.code, json.loads(allowed.out)) == (0, {"predictions": forest.predict(X[:3]).tolist()})


def test_import_gitml_loads_no_model_library():
    code = "import sys, gitml, gitml.models; gitml.models.__dir__(); print(sorted(m for m in ('pandas', 'sklearn', 'numpy', 'cloudpickle') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.interop
@pytest.mark.skipif(not MLFLOW and not os.environ.get("CI"), reason="MLflow not available (GITML_MLFLOW)")
def test_mlflow_loads_gitmls_models_and_gitml_loads_mlflows(tmp_path, forest):
    assert MLFLOW, "GITML_MLFLOW must be set in CI"
    api.save_model(forest, tmp_path / "rf", input_example=X[:2])
    cfg = tmp_path / "cfg.json"
    cfg.write_text('{"factor": 3}')
    api.save_model(Scaled(), tmp_path / "custom", artifacts={"cfg": str(cfg)},
                   signature=infer_signature(pd.DataFrame({"x": [1.0]}), params={"mult": 1}))
    X.to_csv(tmp_path / "x.csv", index=False)
    script = textwrap.dedent(f"""
        import json, sys, pandas as pd, mlflow.pyfunc, mlflow.sklearn
        from sklearn.linear_model import LogisticRegression
        X = pd.read_csv({str(tmp_path / "x.csv")!r})
        out = {{"rf": mlflow.pyfunc.load_model({str(tmp_path / "rf")!r}).predict(X).tolist(),
               "custom": mlflow.pyfunc.load_model({str(tmp_path / "custom")!r}).predict(
                   pd.DataFrame({{"x": [1.0, 5.0]}}), params={{"mult": 2}}).tolist()}}
        lr = LogisticRegression(max_iter=500).fit(X, {Y.tolist()!r})
        mlflow.sklearn.save_model(lr, {str(tmp_path / "from-mlflow")!r}, serialization_format="cloudpickle",
                                  pip_requirements=["scikit-learn"], input_example=X[:2])
        out["mlflow"] = lr.predict(X).tolist()
        json.dump(out, sys.stdout)
    """)
    proc = subprocess.run([MLFLOW, "-c", script], capture_output=True, text=True, cwd=tmp_path,
                          env={**os.environ, "MLFLOW_TRACKING_URI": str(tmp_path / "mlruns")})
    assert proc.returncode == 0, proc.stderr[-2000:]
    got = json.loads(proc.stdout)
    assert got["rf"] == forest.predict(X).tolist()
    assert got["custom"] == [6.0, 30.0]
    model = api.load_model(tmp_path / "from-mlflow")  # MLflow's own save, loaded by gitml
    assert model.predict(X).tolist() == got["mlflow"]
    assert model.metadata.signature is not None and Path(model.path) == tmp_path / "from-mlflow"


def test_describe_and_dockerfile_name_what_the_model_is_and_needs(repo, tmp_path, pipeline):
    import sklearn

    with api.start_run(name="lr", repo=repo) as run:
        api.log_model(pipeline, "model", input_example=X[:2], registered_model_name="churn")
    head = git(repo, "rev-parse", "HEAD").strip()
    card = api.models.describe("models:/churn@latest", repo=repo)
    assert (card.flavors, card.loader_module, card.serialization_format) == (
        ["python_function", "sklearn"], "mlflow.sklearn", "pickle")
    assert card.requirements == [f"scikit-learn=={sklearn.__version__}"]
    assert [spec["name"] for spec in card.inputs] == list(X.columns)
    assert (card.run_id, card.artifact_path, card.source_commit) == (run.id, "model", head)
    assert card.size_bytes == sum(p.stat().st_size for p in Path(card.folder).rglob("*") if p.is_file())
    written = api.models.dockerfile("models:/churn@latest", tmp_path / "image", repo=repo)
    text = (tmp_path / "image" / "Dockerfile").read_text()
    assert written == [tmp_path / "image" / "Dockerfile", tmp_path / "image" / "model"]
    assert f"FROM python:{sys.version_info[0]}.{sys.version_info[1]}-slim" in text
    assert f"'gitml[serve]=={api.__version__}'" in text and '"--host", "0.0.0.0"' in text
    assert sorted(p.name for p in (tmp_path / "image" / "model").iterdir()) == sorted(
        p.name for p in Path(card.folder).iterdir())
    copied = api.load_model(tmp_path / "image" / "model")  # the build context holds a loadable model
    assert (copied.predict(X) == pipeline.predict(X)).all()
    with pytest.raises(BadInputError, match="already exists"):
        api.models.dockerfile("models:/churn@latest", tmp_path / "image", repo=repo)


def test_models_cli_predict_info_dockerfile(repo, pipeline, tmp_path):
    with api.start_run(name="lr", repo=repo) as run:
        api.log_model(pipeline, "model", input_example=X[:2], registered_model_name="churn")
    body = {"dataframe_split": {"columns": list(X.columns), "data": X[:3].to_numpy().tolist()}, "params": None}
    (repo / "in.json").write_text(json.dumps({k: v for k, v in body.items() if v is not None}))
    X[:3].to_csv(repo / "in.csv", index=False)
    X[:3].to_parquet(repo / "in.parquet")
    (repo / "bad.parquet").write_bytes(b"PAR1 but no more")
    expected = pipeline.predict(X[:3]).tolist()
    for name in ("in.json", "in.csv", "in.parquet"):
        got = gitml(repo, "models", "predict", "-m", "models:/churn@latest", "-i", name)
        assert (got.code, got.err, json.loads(got.out)) == (0, "", {"predictions": expected}), name
    written = gitml(repo, "models", "predict", "-m", f"runs:/{run.id}/model", "-i", "in.csv", "-o", "out.json")
    assert written.code == 0 and json.loads((repo / "out.json").read_text()) == {"predictions": expected}
    X[:3].drop(columns=["petal_width"]).to_csv(repo / "short.csv", index=False)
    (repo / "bad.json").write_text("{not json")
    (repo / "in.txt").write_text("x")
    for args, words in [(("-i", "short.csv"), "Model is missing inputs ['petal_width']"),
                        (("-i", "bad.json"), "not valid JSON"),
                        (("-i", "in.txt"), "cannot tell the input's format"),
                        (("-i", "bad.parquet"), "not Parquet"),
                        (("-i", "missing.csv"), "does not exist")]:
        got = gitml(repo, "models", "predict", "-m", "models:/churn@latest", *args)
        assert got.code == 2 and got.err.startswith("gitml: error: ") and words in got.err and got.out == "", args
        assert len(got.err.splitlines()) == 1
    nothing = gitml(repo, "models", "predict", "-m", "models:/nope@prod", "-i", "in.csv")
    assert nothing.code == 2 and "nope" in nothing.err
    # -o writes to what is there: a symlink's file, a pipe, a device; never replaces them
    (repo / "target.json").write_text("old")
    (repo / "link.json").symlink_to("target.json")
    assert gitml(repo, "models", "predict", "-m", "models:/churn@latest", "-i", "in.csv", "-o", "link.json").code == 0
    assert (repo / "link.json").is_symlink() and json.loads((repo / "target.json").read_text()) == {
        "predictions": expected}
    assert gitml(repo, "models", "predict", "-m", "models:/churn@latest", "-i", "in.csv", "-o", "/dev/null").code == 0
    assert stat.S_ISCHR(os.stat("/dev/null").st_mode)
    os.mkfifo(repo / "pipe.json")
    import threading

    received = []
    reader = threading.Thread(target=lambda: received.append((repo / "pipe.json").read_text()))
    reader.start()
    assert gitml(repo, "models", "predict", "-m", "models:/churn@latest", "-i", "in.csv", "-o", "pipe.json").code == 0
    reader.join(30)
    assert json.loads(received[0]) == {"predictions": expected} and stat.S_ISFIFO(os.stat(repo / "pipe.json").st_mode)
    (repo / "adir").mkdir()
    folder = gitml(repo, "models", "predict", "-m", "models:/churn@latest", "-i", "in.csv", "-o", "adir")
    assert folder.code == 2 and "is a directory" in folder.err
    numbered = gitml(repo, "models", "info", "models:/churn/1")  # MLflow's integer version
    assert numbered.code == 2 and "semver tags like v0.0.1" in numbered.err and "v0.0.1" in numbered.err
    nowhere = gitml(repo, "models", "predict", "-m", "models:/churn@latest", "-i", "in.csv", "-o", "no/such/dir/o.json")
    assert (nowhere.code, nowhere.out) == (2, "") and nowhere.err.startswith("gitml: error: cannot write")
    api.save_model(Failing(), repo / "failing")
    failed = gitml(repo, "models", "predict", "-m", "failing", "-i", "in.csv")  # the model's own error: exit 1
    assert failed.code == 1 and failed.err == "gitml: error: the model failed: ValueError: no negatives\n"
    info = gitml(repo, "models", "info", "models:/churn@latest", "--json")
    card = json.loads(info.out)
    assert (card["run_id"], card["loader_module"], card["source_commit"]) == (
        run.id, "mlflow.sklearn", git(repo, "rev-parse", "HEAD").strip())
    shown = gitml(repo, "models", "info", "models:/churn@latest").out
    assert "loader        mlflow.sklearn (pickle)" in shown and "sepal_length: double" in shown
    made = gitml(repo, "models", "dockerfile", "models:/churn@latest", "-o", "image")
    assert made.code == 0 and (repo / "image" / "Dockerfile").is_file() and (repo / "image" / "model" / "MLmodel").is_file()
    again = gitml(repo, "models", "dockerfile", "models:/churn@latest", "-o", "image")
    assert again.code == 2 and "already exists" in again.err
    outside = tmp_path / "outside"  # a model folder needs no repository; a URI does
    api.save_model(pipeline, outside / "m", input_example=X[:2])
    X[:3].to_csv(outside / "in.csv", index=False)
    plain = gitml(outside, "models", "info", "m", "--json")
    assert plain.code == 0 and json.loads(plain.out)["source_commit"] is None, plain.err
    assert gitml(outside, "models", "dockerfile", "m", "-o", "image").code == 0
    assert json.loads(gitml(outside, "models", "predict", "-m", "m", "-i", "in.csv").out) == {"predictions": expected}
    uri = gitml(outside, "models", "info", "models:/churn@latest")
    assert uri.code == 2 and uri.err.startswith("gitml: error: not a git repository")
