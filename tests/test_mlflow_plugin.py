"""MLflow's own client writing to gitml through the tracking-store plugin (``gitml:`` URIs).

MLflow runs in its own virtualenv (``GITML_MLFLOW``), where `.ci/run` installs gitml with the
``[mlflow]`` extra's entry point: these tests run real MLflow scripts in that Python against real
repositories, then read what they made with gitml (API, CLI, ``git fsck``, ``git push``).
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import textwrap
import urllib.request
from pathlib import Path

import pytest
from conftest import git, gitml, mlflow_python, mlflow_server

import gitml as api

MLFLOW = mlflow_python()

pytestmark = pytest.mark.interop


def _mlflow(script: str, cwd: Path, check: bool = True) -> subprocess.CompletedProcess:
    env = {**os.environ, "GIT_AUTHOR_NAME": "Test User", "GIT_AUTHOR_EMAIL": "t@example.com",
           "GIT_COMMITTER_NAME": "Test User", "GIT_COMMITTER_EMAIL": "t@example.com",
           "MLFLOW_TRACKING_URI": "", "PYTHONWARNINGS": "ignore"}
    env.pop("MLFLOW_TRACKING_URI")
    proc = subprocess.run([MLFLOW, "-c", textwrap.dedent(script)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=300)
    if check:
        assert proc.returncode == 0, proc.stderr[-4000:]
    return proc


@pytest.fixture(scope="module", autouse=True)
def plugin_installed():
    proc = subprocess.run([MLFLOW, "-c", "import gitml.interop.mlflow_plugin, importlib.metadata as m; "
                                         "print([e.name for e in m.entry_points(group='mlflow.tracking_store')])"],
                          capture_output=True, text=True)
    if proc.returncode != 0 or "gitml" not in proc.stdout:
        message = f"gitml is not installed in MLflow's virtualenv ({MLFLOW}): pip install -e '.[mlflow]' there"
        if os.environ.get("CI"):
            raise RuntimeError(message)
        pytest.skip(message)


@pytest.fixture
def repo(tmp_path):
    path = tmp_path / "repo"
    path.mkdir()
    git(path, "init", "-q")
    git(path, "commit", "-q", "--allow-empty", "-m", "init")
    return path


FLUENT = """
    import json, mlflow
    mlflow.set_tracking_uri("gitml:.")
    with mlflow.start_run(run_name="parent") as run:
        mlflow.log_param("lr", 0.1)
        mlflow.log_params({"depth": 3, "kind": "rf"})
        for i in range(5):
            mlflow.log_metric("loss", 1.0 / (i + 1), step=i, timestamp=1_700_000_000_000 + i)
        mlflow.log_metrics({"acc": 0.5, "f1": 0.25}, step=7)
        mlflow.set_tags({"team": "ml", "stage": "dev"})
        mlflow.log_text("hello", "notes/hello.txt")
        mlflow.log_dict({"a": 1}, "cfg/a.json")
        with mlflow.start_run(nested=True, run_name="child") as child:
            mlflow.log_metric("x", 1)
        during = mlflow.get_run(run.info.run_id)
    after = mlflow.get_run(run.info.run_id)
    client = mlflow.MlflowClient()
    print(json.dumps({
        "parent": run.info.run_id, "child": child.info.run_id,
        "during": [during.info.status, during.data.params, during.data.metrics],
        "after": [after.info.status, after.data.params, after.data.metrics, after.data.tags.get("team")],
        "history": [[m.step, m.value, m.timestamp] for m in client.get_metric_history(run.info.run_id, "loss")],
        "search": [r.info.run_name for r in mlflow.search_runs(filter_string="metrics.loss < 0.5",
                                                                  output_format="list")],
        "artifacts": sorted(f.path for f in client.list_artifacts(run.info.run_id, "notes")),
        "text": mlflow.artifacts.load_text(f"runs:/{run.info.run_id}/notes/hello.txt"),
    }))
"""


def test_mlflows_fluent_api_makes_ordinary_gitml_runs(repo, tmp_path):
    out = json.loads(_mlflow(FLUENT, repo).stdout.strip().splitlines()[-1])
    assert out["during"] == ["RUNNING", {"lr": "0.1", "depth": "3", "kind": "rf"}, {"loss": 0.2, "acc": 0.5, "f1": 0.25}]
    assert out["after"][0] == "FINISHED" and out["after"][3] == "ml"
    assert out["history"] == [[i, 1.0 / (i + 1), 1_700_000_000_000 + i] for i in range(5)]
    assert out["search"] == ["parent"] and out["artifacts"] == ["notes/hello.txt"] and out["text"] == "hello"
    # gitml reads the same runs: every point, the parent link, the artifacts in the content store
    run = api.get_run(out["parent"], repo=repo)
    # MLflow sends params as text, and they are kept as text (MLflow's params are strings)
    assert run.status == "FINISHED" and run.name == "parent" and run.params == {"lr": "0.1", "depth": "3", "kind": "rf"}
    assert [(p.step, p.value) for p in run.history if p.key == "loss"] == [(i, 1.0 / (i + 1)) for i in range(5)]
    assert set(run.artifacts) == {"notes", "cfg"} and run.tags["team"] == "ml"  # top-level folders, as import makes
    assert run.artifacts["notes"]["kind"] == "dir" and run.artifacts["notes"]["files"] == 1
    child = api.get_run(out["child"], repo=repo)
    assert child.tags["mlflow.parentRunId"] == run.id and child.metrics == {"x": 1.0}
    listed = gitml(repo, "runs", "list", "--tree")
    assert listed.code == 0 and "parent" in listed.out and "child" in listed.out
    git(repo, "fsck", "--strict")
    # shared by a push, bytes included
    bare = tmp_path / "shared.git"
    git(tmp_path, "init", "-q", "--bare", str(bare))
    git(repo, "remote", "add", "origin", str(bare))
    (repo / "gitml.yaml").write_text(f"remotes:\n  team: {tmp_path / 'store'}\ndefault_remote: team\n")
    pushed = gitml(repo, "push", "origin")
    assert pushed.code == 0, pushed.err
    assert git(bare, "rev-parse", "refs/gitml/runs").strip() == git(repo, "rev-parse", "refs/gitml/runs").strip()
    sha = hashlib.sha256(b"hello").hexdigest()
    assert (tmp_path / "store" / "sha256" / sha[:2] / sha[2:]).read_bytes() == b"hello"
    # a clone that has not pulled the bytes: MLflow's client gets them from the artifact remote
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(bare), str(clone))
    (clone / "gitml.yaml").write_text((repo / "gitml.yaml").read_text())
    assert gitml(clone, "pull", "origin").code == 0
    read = _mlflow(f"""
        import mlflow
        mlflow.set_tracking_uri("gitml:///{clone}")
        print(sorted(f.path for f in mlflow.MlflowClient().list_artifacts("{run.id}", "notes")))
        print(mlflow.artifacts.load_text("runs:/{run.id}/notes/hello.txt"))
    """, tmp_path)
    assert read.stdout.split() == ["['notes/hello.txt']", "hello"], read.stderr[-2000:]


AUTOLOG = """
    import json, mlflow
    mlflow.set_tracking_uri("gitml:///{repo}")
    mlflow.set_experiment("autolog")
    mlflow.sklearn.autolog()
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    X, y = load_iris(return_X_y=True)
    make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(X, y)
    run = mlflow.last_active_run()
    model = mlflow.pyfunc.load_model(f"runs:/{{run.info.run_id}}/model")
    print(json.dumps({{"id": run.info.run_id, "pred": model.predict(X[:3]).tolist(),
                      "exp": mlflow.get_experiment_by_name("autolog").experiment_id}}))
"""


def test_sklearn_autolog_through_the_plugin_logs_a_model_gitml_loads(repo, tmp_path):
    out = json.loads(_mlflow(AUTOLOG.format(repo=repo), tmp_path).stdout.strip().splitlines()[-1])
    assert out["pred"] == [0, 0, 0]
    run = api.get_run(out["id"], repo=repo)
    assert run.experiment == "autolog" and run.status == "FINISHED"
    assert run.tags["mlflow.autologging"] == "sklearn" and run.metrics["training_accuracy_score"] > 0.9
    assert run.params["logisticregression__max_iter"] == "300"
    assert run.artifacts["model"]["kind"] == "dir"  # the model is one folder artifact: it registers as it is
    assert api.get_experiment_by_name("autolog", repo=repo).experiment_id == out["exp"]
    from gitml.models import load_model

    model = load_model(f"runs:/{run.id}/model", repo=repo)  # bytes verified against their hashes
    assert model.predict([[5.1, 3.5, 1.4, 0.2]]).tolist() == [0]
    registered = gitml(repo, "registry", "register", "iris", "--run", run.id, "--path", "model")
    assert registered.code == 0, registered.err
    assert load_model("models:/iris@latest", repo=repo).predict([[5.1, 3.5, 1.4, 0.2]]).tolist() == [0]
    git(repo, "fsck", "--strict")


CRASH = """
    import os, mlflow
    mlflow.set_tracking_uri("gitml:.")
    run = mlflow.start_run(run_name="crashed")
    mlflow.log_param("lr", 0.1)
    mlflow.log_text("partial", "out/log.txt")
    print(run.info.run_id, flush=True)
    os._exit(1)
"""


def test_a_crashed_runs_artifacts_are_committed_by_commit_run_resume(repo):
    """What MLflow's client wrote before its process died is the run's when ``gitml commit-run --resume`` commits it."""
    proc = _mlflow(CRASH, repo, check=False)
    assert proc.returncode == 1
    run_id = proc.stdout.split()[0]
    resumed = gitml(repo, "commit-run", "--resume", run_id[:8], "--status", "KILLED")
    assert resumed.code == 0, resumed.err
    run = api.get_run(run_id, repo=repo)
    assert run.status == "KILLED" and run.params == {"lr": "0.1"} and run.artifacts["out"]["files"] == 1
    listed = gitml(repo, "artifacts", "ls", run_id[:8])
    assert listed.code == 0 and "out/log.txt" in listed.out, listed.out


PARAM_CHANGE = """
    import mlflow
    from mlflow.exceptions import MlflowException
    mlflow.set_tracking_uri("gitml:.")
    with mlflow.start_run() as run:
        mlflow.log_param("p", 1)
        mlflow.log_param("p", 1)  # the same value again: allowed, as in MLflow
        try:
            mlflow.log_params({"q": 5, "p": 2})
        except MlflowException as exc:
            print(exc.error_code, "Changing param values is not allowed" in exc.message)
    print(run.info.run_id)
"""


def test_a_param_cannot_change_its_value(repo):
    out = _mlflow(PARAM_CHANGE, repo).stdout.split()
    assert out[:2] == ["INVALID_PARAMETER_VALUE", "True"]
    assert api.get_run(out[2], repo=repo).params == {"p": "1"}  # nothing of the refused batch was logged


def test_mlflow_server_browses_a_gitml_repository(repo):
    _mlflow(FLUENT, repo)
    work = repo.parent / "server"
    work.mkdir()
    with mlflow_server(MLFLOW, work, "--backend-store-uri", f"gitml://{repo}") as base:
        def post(path: str, body: dict) -> dict:
            request = urllib.request.Request(f"{base}/api/2.0/mlflow/{path}", json.dumps(body).encode(),
                                             {"Content-Type": "application/json"})
            return json.loads(urllib.request.urlopen(request, timeout=30).read())

        found = post("runs/search", {"experiment_ids": ["0"], "filter": "params.kind = 'rf'"})
        assert [r["info"]["run_name"] for r in found["runs"]] == ["parent"]
        run = found["runs"][0]
        assert {p["key"]: p["value"] for p in run["data"]["params"]} == {"lr": "0.1", "depth": "3", "kind": "rf"}
        history = json.loads(urllib.request.urlopen(
            f"{base}/api/2.0/mlflow/metrics/get-history?run_id={run['info']['run_id']}&metric_key=loss").read())
        assert [m["value"] for m in history["metrics"]] == [1.0 / (i + 1) for i in range(5)]
        names = [e["name"] for e in post("experiments/search", {"max_results": 100})["experiments"]]
        assert names == ["default"]
        assert b"<html" in urllib.request.urlopen(f"{base}/", timeout=10).read()[:200].lower()


def test_what_the_plugin_cannot_do_raises_mlflows_not_implemented_error(repo):
    out = _mlflow("""
        import json, mlflow
        from mlflow.exceptions import MlflowNotImplementedException, MlflowException
        mlflow.set_tracking_uri("gitml:.")
        client = mlflow.MlflowClient()
        seen = {}
        with mlflow.start_run() as run:
            pass
        for name, call in [("delete_experiment", lambda: client.delete_experiment("0")),
                           ("restore_run", lambda: client.restore_run(run.info.run_id)),
                           ("log_metric", lambda: client.log_metric(run.info.run_id, "late", 1.0))]:
            try:
                call()
                seen[name] = "no error"
            except MlflowNotImplementedException as exc:
                seen[name] = str(exc)
        try:
            client.get_run("0" * 32)
        except MlflowException as exc:
            seen["missing"] = exc.error_code
        print(json.dumps(seen))
    """, repo)
    seen = json.loads(out.stdout.strip().splitlines()[-1])
    assert "delete_experiment is not supported by the gitml tracking store" in seen["delete_experiment"]
    assert "restore_run is not supported" in seen["restore_run"]
    assert "into the committed run" in seen["log_metric"]
    assert seen["missing"] == "RESOURCE_DOES_NOT_EXIST"


def test_keys_gitml_or_mlflow_refuse_are_refused_when_logged(repo):
    """A key that names no file of a run (`../x`) or that MLflow's stores refuse (`a//b`) is an
    MlflowException at log time: nothing unreadable is committed, and push is not blocked."""
    out = _mlflow("""
        import json, mlflow
        from mlflow.exceptions import MlflowException
        mlflow.set_tracking_uri("gitml:.")
        client = mlflow.MlflowClient()
        seen = {}
        with mlflow.start_run() as run:
            for name, call in [("param", lambda: mlflow.log_param("../x", 1)),
                               ("metric", lambda: mlflow.log_metric("/abs", 1.0)),
                               ("tag", lambda: mlflow.set_tag(".", "v")),
                               ("double slash", lambda: mlflow.log_metric("a//b", 1.0))]:
                try:
                    call()
                    seen[name] = "no error"
                except MlflowException as exc:
                    seen[name] = exc.error_code
            mlflow.log_metric("fine", 1.0)
        for bad in ("nope", run.info.run_id[:8]):
            try:
                client.get_run(bad)
                seen[bad] = "found"
            except MlflowException as exc:
                seen[bad] = exc.error_code
        print(json.dumps({"seen": seen, "id": run.info.run_id}))
    """, repo)
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert set(got["seen"].values()) <= {"INVALID_PARAMETER_VALUE", "RESOURCE_DOES_NOT_EXIST"}, got
    run = api.get_run(got["id"], repo=repo)
    assert run.metrics == {"fine": 1.0} and run.params == {} and run.status == "FINISHED"
    assert gitml(repo, "check").code == 0


def test_parallel_processes_setting_one_new_experiment_all_run(repo):
    procs = [subprocess.Popen([MLFLOW, "-c", "import mlflow\nmlflow.set_tracking_uri('gitml:.')\n"
                               "mlflow.set_experiment('par')\nwith mlflow.start_run():\n    mlflow.log_metric('m', 1)\n"],
                              cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(4)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], [err[-800:] for _, err in outs]
    # every run is committed; a process that lost the creation race gets RESOURCE_ALREADY_EXISTS,
    # as from MLflow's own stores, on which MLflow 3.17's set_experiment returns without making
    # the experiment active (its runs then go to the default experiment, as they would in sqlite)
    runs = api.search_runs(repo=repo)
    assert len(runs) == 4 and {r.experiment for r in runs} <= {"par", "default"}
    assert any(r.experiment == "par" for r in runs)


def test_a_uri_that_names_no_repository_is_one_mlflow_error(tmp_path):
    proc = _mlflow(f"""
        import mlflow
        mlflow.set_tracking_uri("gitml://{tmp_path}/nowhere")
        mlflow.start_run()
    """, tmp_path, check=False)
    assert proc.returncode == 1 and "MlflowException" in proc.stderr and "nowhere" in proc.stderr
