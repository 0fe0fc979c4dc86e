"""``gitml export mlflow DEST``: back into MLflow, and the round trip import → export → import.

MLflow makes the source store (tests/mlflow_stores.py, in its own virtualenv); gitml imports it;
``gitml export`` runs in MLflow's virtualenv (where `.ci/run` installs gitml beside MLflow) into a
new sqlite store, a file store and a real ``mlflow server``; MLflow reads what was exported, and a
second gitml import of the exported store must give the same records as the first.
"""

from __future__ import annotations

import json
import socket
import subprocess
from pathlib import Path

import pytest
from conftest import code_repository, git, gitml, mlflow_env, mlflow_python, mlflow_server, runs_tip

import gitml as api

MLFLOW = mlflow_python()
HERE = Path(__file__).parent

pytestmark = pytest.mark.interop


def _env() -> dict:
    return mlflow_env()


def _export(repo: Path, *args: str) -> subprocess.CompletedProcess:
    """``gitml export mlflow …`` run by MLflow's interpreter (gitml is installed there too), from
    an empty folder that must stay empty (MLflow's defaults would put mlflow.db or mlruns/ there)."""
    cwd = repo.parent / f"cwd-{repo.name}"
    cwd.mkdir(exist_ok=True)
    done = subprocess.run([MLFLOW, "-m", "gitml", "-C", str(repo), "export", "mlflow", *args], env=_env(),
                          capture_output=True, text=True, timeout=300, cwd=cwd)
    assert list(cwd.iterdir()) == [], list(cwd.iterdir())
    return done


def _read(uri: str) -> dict:
    """What MLflow itself reads from a store: runs (info, params, tags, histories), the registry."""
    script = """
import json, sys
import mlflow
from mlflow import MlflowClient
uri = sys.argv[1]
c = MlflowClient(uri, registry_uri=uri)
runs, ids = {}, {}
for exp in c.search_experiments():
    for r in c.search_runs([exp.experiment_id], max_results=1000):
        ids[r.data.tags.get("gitml_run_id", r.info.run_id)] = r.info.run_id
        runs[r.data.tags.get("gitml_run_id", r.info.run_id)] = {
            "name": r.info.run_name, "experiment": exp.name, "status": r.info.status, "start": r.info.start_time,
            "end": r.info.end_time, "user": r.info.user_id, "params": r.data.params,
            "tags": {k: v for k, v in r.data.tags.items() if k != "gitml_run_id"},
            "points": {k: len(c.get_metric_history(r.info.run_id, k)) for k in r.data.metrics},
            "artifacts": sorted(f.path for f in c.list_artifacts(r.info.run_id))}
models = {}
for m in c.search_registered_models():
    models[m.name] = {"aliases": dict(m.aliases),
                      "versions": sorted([v.version, v.tags.get("gitml_version"), v.run_id]
                                         for v in c.search_model_versions(f"name = '{m.name}'"))}
print(json.dumps({"runs": runs, "models": models, "server_ids": ids}))
"""
    proc = subprocess.run([MLFLOW, "-c", script, uri], env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    """A code repository and an MLflow sqlite store made from it by MLflow (runs, a model, an alias)."""
    base = tmp_path_factory.mktemp("export-source")
    origin, commit = code_repository(base)
    work = base / "store"
    work.mkdir()
    proc = subprocess.run([MLFLOW, str(HERE / "mlflow_stores.py"), f"sqlite:///{work / 'mlflow.db'}", str(work),
                           commit, str(work / "oracle.json")], env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return {"origin": origin, "db": work / "mlflow.db", "oracle": json.loads((work / "oracle.json").read_text())}


def _clone(source, where: Path) -> Path:
    git(where.parent, "clone", "-q", str(source["origin"]), str(where))
    return where


def _imported(source, tmp_path: Path, name: str, uri: str) -> Path:
    repo = _clone(source, tmp_path / name)
    result = gitml(repo, "import", "mlflow", uri)
    assert result.code == 0, result.err
    return repo


def _records(repo: Path) -> dict[str, dict]:
    out = {}
    for listed in api.search_runs(repo=repo):
        run = api.get_run(listed.id, repo=repo).to_dict(history=True)
        run.pop("gitml_version")
        run.pop("updated")
        out[listed.id] = run
    return out


def _registry(repo: Path) -> list:
    """The registry as `gitml registry show --json` gives it, without registration times (an
    import registers when it runs)."""
    shown = json.loads(gitml(repo, "registry", "show", "--json").out or "[]")
    for model in shown:
        for version in model["versions"].values():
            version.pop("registered_at")
    return shown


def test_import_export_import_gives_the_same_records(source, tmp_path):
    first = _imported(source, tmp_path, "first", f"sqlite:///{source['db']}")
    dest = tmp_path / "exported.db"
    exported = _export(first, f"sqlite:///{dest}", "--json")
    assert exported.returncode == 0, exported.stderr[-3000:]
    summary = json.loads(exported.stdout)
    assert summary["runs"] == len(_records(first)) and summary["versions"] >= 1 and summary["aliases"] >= 1
    # MLflow reads the runs back under their ids, with every point and the artifacts
    read = _read(f"sqlite:///{dest}")
    oracle = source["oracle"]
    assert set(read["runs"]) == set(_records(first))
    parent = read["runs"][oracle["parent"]]
    assert parent["params"] == oracle["runs"][oracle["parent"]]["params"]
    assert parent["points"]["loss"] == len(oracle["runs"][oracle["parent"]]["metrics"]["loss"])
    assert {"data", "model", "notes.txt"} <= set(parent["artifacts"])
    # and gitml imports the exported store into the same records
    second = _imported(source, tmp_path, "second", f"sqlite:///{dest}")
    assert _records(second) == _records(first)
    assert _registry(second) == _registry(first) and _registry(first)[0]["stages"] == {"champion": "v1.0.0"}
    git(second, "fsck", "--strict")
    again = _export(first, f"sqlite:///{dest}", "--json")  # idempotent
    assert again.returncode == 0 and json.loads(again.stdout)["runs"] == 0


def test_a_file_store_and_dry_run_and_experiment(source, tmp_path):
    repo = _imported(source, tmp_path, "repo", f"sqlite:///{source['db']}")
    dry = _export(repo, str(tmp_path / "mlruns"), "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    assert not (tmp_path / "mlruns").exists()
    predicted = json.loads(dry.stdout)
    real = json.loads(_export(repo, str(tmp_path / "all"), "--json").stdout)
    for key in ("runs", "points", "artifacts", "bytes", "versions", "aliases"):
        assert predicted[key] == real[key], (key, predicted, real)  # the dry run says what the export does
    one = _export(repo, str(tmp_path / "mlruns"), "-e", "other", "--no-registry")
    assert one.returncode == 0, one.stderr
    read = _read((tmp_path / "mlruns").as_uri())
    assert {r["experiment"] for r in read["runs"].values()} == {"other"} and read["models"] == {}
    assert list(read["runs"]) == [source["oracle"]["old"]]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_tag_mlflow_would_cut_stops_the_export_before_anything_is_written(source, tmp_path):
    repo = _imported(source, tmp_path, "repo", f"sqlite:///{source['db']}")
    child, old = source["oracle"]["child"], source["oracle"]["old"]  # old and the parent start before child
    assert gitml(repo, "runs", "tag", child, f"big={'z' * 9000}").code == 0
    for dest in (f"sqlite:///{tmp_path / 'e.db'}", str(tmp_path / "mlruns")):
        result = _export(repo, dest)
        assert result.returncode == 1 and f"run {child[:8]}: tag 'big' is 9,000 characters" in result.stderr, \
            result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cwd-repo", "repo"]  # no database, folder, mlartifacts
    # into a store that exists: none of the runs goes, not only the refused one
    assert _export(repo, f"sqlite:///{tmp_path / 'e.db'}", "-e", "other").returncode == 0
    assert _export(repo, f"sqlite:///{tmp_path / 'e.db'}").returncode == 1
    assert list(_read(f"sqlite:///{tmp_path / 'e.db'}")["runs"]) == [old]
    not_a_folder = tmp_path / "file.txt"
    not_a_folder.write_text("mine\n")
    refused = _export(repo, str(not_a_folder))
    assert refused.returncode == 2 and "is a file" in refused.stderr and not_a_folder.read_text() == "mine\n"


def test_a_tracking_server_gets_new_ids_and_the_gitml_run_id_tag(source, tmp_path):
    repo = _imported(source, tmp_path, "repo", f"sqlite:///{source['db']}")
    work = tmp_path / "server"
    work.mkdir()
    with mlflow_server(MLFLOW, work, "--backend-store-uri", f"sqlite:///{work / 'server.db'}",
                       "--artifacts-destination", str(work / "art")) as url:
        result = _export(repo, url, "--json")
        assert result.returncode == 0, result.stderr[-3000:]
        read = _read(url)
        records = _records(repo)
        assert set(read["runs"]) == set(records)  # keyed by the gitml_run_id tag
        oracle = source["oracle"]
        assert read["runs"][oracle["parent"]]["points"]["loss"] == len(oracle["runs"][oracle["parent"]]["metrics"]["loss"])
        assert {"data", "model", "notes.txt"} <= set(read["runs"][oracle["parent"]]["artifacts"])
        again = _export(repo, url, "--json")
        assert again.returncode == 0 and json.loads(again.stdout)["runs"] == 0
        # the child names its parent by the id the server gave it, so MLflow's UI nests them
        child, parent = read["runs"][oracle["child"]], read["server_ids"][oracle["parent"]]
        assert child["tags"]["mlflow.parentRunId"] == parent
        # importing the server back here adds nothing: those runs are this repository's
        back = gitml(repo, "import", "mlflow", url, "--json")
        assert back.code == 0, back.err
        assert json.loads(back.out)["imported"] == 0, back.out


def test_bad_destinations_are_one_line_and_write_nothing(source, tmp_path):
    repo = _imported(source, tmp_path, "repo", f"sqlite:///{source['db']}")
    tip = runs_tip(repo)
    for args, code, words in [(["ftp://example.com/x"], 2, "cannot export to 'ftp://example.com/x'"),
                              ([f"sqlite:///{tmp_path / 'a.db'}", "-e", "nope"], 2, "no experiment 'nope'"),
                              ([f"http://127.0.0.1:{_free_port()}"], 1, "cannot reach the MLflow server")]:
        result = _export(repo, *args)
        assert result.returncode == code, result.stderr
        assert result.stderr.strip().startswith("gitml: error:") and words in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert not (tmp_path / "a.db").exists() and runs_tip(repo) == tip
    # a DEST that holds something else than an MLflow store is refused, and left as it was
    folder = tmp_path / "project"
    (folder / "models").mkdir(parents=True)  # a models/ folder is not MLflow's registry
    (folder / "README.md").write_text("mine\n")
    text = tmp_path / "afile.txt"
    text.write_text("not a database\n")
    other = tmp_path / "other.db"
    subprocess.run([MLFLOW, "-c", f"import sqlite3; sqlite3.connect({str(other)!r}).execute('CREATE TABLE t (x)')"],
                   check=True)
    (tmp_path / "folder.db").mkdir()
    before = {path: path.read_bytes() for path in (folder / "README.md", text, other)}
    listing = sorted(p.name for p in repo.iterdir()), git(repo, "status", "--porcelain", "--ignored")
    for args, words in [([str(folder)], "is not empty and not an MLflow file store"),
                        ([str(folder), "--dry-run"], "is not empty and not an MLflow file store"),
                        ([folder.as_uri()], "is not empty and not an MLflow file store"),
                        ([""], "give DEST"),
                        ([f"sqlite:///{text}"], f"{text} is not an MLflow sqlite store (file is not a database)"),
                        ([f"sqlite:///{text}", "--dry-run"], "is not an MLflow sqlite store"),
                        ([f"sqlite:///{other}"], "is a database but not an MLflow store"),
                        ([f"sqlite:///{tmp_path / 'folder.db'}"], "is a folder, not a database file"),
                        ([f"sqlite:///{tmp_path / 'nowhere' / 'x.db'}"], "no such folder")]:
        result = _export(repo, *args)
        assert result.returncode == 2, (args, result.stderr)
        assert result.stderr.startswith("gitml: error:") and words in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "models"] and not any((folder / "models").iterdir())
    assert {path: path.read_bytes() for path in before} == before
    assert (sorted(p.name for p in repo.iterdir()), git(repo, "status", "--porcelain", "--ignored")) == listing
    assert not (tmp_path / "nowhere").exists() and not any((tmp_path / "folder.db").iterdir())
    # in gitml's own environment, without MLflow: the extra to install
    without = gitml(repo, "export", "mlflow", f"sqlite:///{tmp_path / 'b.db'}")
    if without.code == 2:
        assert "pip install 'gitml[mlflow]'" in without.err


def test_a_run_mlflow_refuses_is_not_left_half_written(tmp_path):
    """gitml keys are free text; MLflow's stores refuse a metric key with `@`. The run is
    written up to that metric, refused, and must then be removed whole; the export stops there."""
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "commit", "-q", "--allow-empty", "-m", "init")
    with api.start_run(name="fine", repo=repo):
        api.log_metric("loss", 0.5)
    with api.start_run(name="refused", repo=repo):
        api.log_param("lr", 0.1)
        api.log_metric("loss@val", 0.4)
    dest = tmp_path / "out.db"
    result = _export(repo, f"sqlite:///{dest}")
    assert result.returncode == 1 and result.stderr.startswith("gitml: error: MLflow refused the export"), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    read = _read(f"sqlite:///{dest}")
    assert [r["name"] for r in read["runs"].values()] == ["fine"]  # not a half-written "refused"


def _fresh_repo(where: Path) -> Path:
    """A repository of three runs made with gitml's API: two in ``default``, one in ``other``."""
    where.mkdir()
    git(where, "init", "-q")
    git(where, "commit", "-q", "--allow-empty", "-m", "init")
    for name, experiment in (("a", "default"), ("b", "other"), ("c", "default")):  # named: another test may
        # have set this process's active experiment (gitml.set_experiment)
        with api.start_run(name=name, experiment=experiment, repo=where):
            api.log_metric("loss", 0.5)
    return where


def test_an_empty_folder_is_a_new_file_store(tmp_path):
    """MLflow's FileStore makes its Default experiment (id 0) only in a root it creates itself:
    an empty folder (or one MLflow left with only .trash/) gets it from the export all the same."""
    repo = _fresh_repo(tmp_path / "repo")
    for folder in (tmp_path / "empty", tmp_path / "left"):
        folder.mkdir()
        if folder.name == "left":
            (folder / ".trash").mkdir()
        dry = _export(repo, str(folder), "--dry-run", "--json")
        assert dry.returncode == 0 and json.loads(dry.stdout)["runs"] == 3, dry.stderr
        assert sorted(p.name for p in folder.iterdir()) == ([".trash"] if folder.name == "left" else [])
        result = _export(repo, str(folder), "--json")
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["runs"] == 3
        read = _read(folder.as_uri())
        assert sorted((r["experiment"], r["name"]) for r in read["runs"].values()) == \
            [("Default", "a"), ("Default", "c"), ("other", "b")]
        again = _export(repo, str(folder), "--json")
        assert again.returncode == 0 and json.loads(again.stdout)["present"] == 3, again.stderr
    script = "import sys; from mlflow import MlflowClient; print(MlflowClient(sys.argv[1]).get_experiment('0').name)"
    made = subprocess.run([MLFLOW, "-c", script, (tmp_path / "empty").as_uri()], env=_env(), capture_output=True,
                          text=True, timeout=300)
    assert made.stdout.strip() == "Default", made.stderr[-3000:]


def _models(uri: str, where: Path) -> dict:
    """MLflow's registry in a store: each model's aliases and versions (source, run, the run's
    artifact URI), and the files a client loading ``models:/<model>/1`` gets."""
    script = """
import json, os, sys
import mlflow
from mlflow import MlflowClient
uri, where = sys.argv[1], sys.argv[2]
mlflow.set_tracking_uri(uri)
mlflow.set_registry_uri(uri)
c = MlflowClient(uri, registry_uri=uri)
out = {}
for m in c.search_registered_models():
    versions = {v.version: {"source": v.source, "run_id": v.run_id, "tag": v.tags.get("gitml_version"),
                            "artifact_uri": c.get_run(v.run_id).info.artifact_uri if v.run_id else None}
                for v in c.search_model_versions(f"name = '{m.name}'")}
    out[m.name] = {"aliases": {k: str(v) for k, v in m.aliases.items()}, "versions": versions}
    if m.name == "churn-model":
        got = mlflow.artifacts.download_artifacts(f"models:/{m.name}/1", dst_path=os.path.join(where, m.name))
        out[m.name]["loaded"] = sorted(os.listdir(got))
print(json.dumps(out))
"""
    proc = subprocess.run([MLFLOW, "-c", script, uri, str(where)], env=_env(), capture_output=True, text=True,
                          timeout=300, cwd=where)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_second_export_makes_the_aliases_the_stages_gitml_has_now(source, tmp_path):
    repo = _imported(source, tmp_path, "repo", f"sqlite:///{source['db']}")
    parent = source["oracle"]["parent"]
    for args in (["register", "churn-model", "--run", parent, "--path", "notes.txt", "--version", "v2.0.0"],
                 ["assign", "churn-model", "--version", "v2.0.0", "--stage", "challenger"]):
        done = gitml(repo, "registry", *args)
        assert done.code == 0, done.err
    dest = f"sqlite:///{tmp_path / 'e.db'}"
    first = _export(repo, dest, "--json")
    assert first.returncode == 0, first.stderr[-3000:]
    assert json.loads(first.stdout)["versions"] == 2 and json.loads(first.stdout)["aliases"] == 2
    # a model of MLflow's own, which gitml does not have, with an alias
    script = """
import sys
from mlflow import MlflowClient
c = MlflowClient(sys.argv[1], registry_uri=sys.argv[1])
c.create_registered_model("theirs")
c.create_model_version("theirs", "file:///nowhere/model", await_creation_for=0)
c.set_registered_model_alias("theirs", "prod", "1")
"""
    theirs = subprocess.run([MLFLOW, "-c", script, dest], env=_env(), capture_output=True, text=True, timeout=300)
    assert theirs.returncode == 0, theirs.stderr[-3000:]
    scratch = tmp_path / "read"
    scratch.mkdir()
    models = _models(dest, scratch)
    assert models["churn-model"]["aliases"] == {"champion": "1", "challenger": "2"}
    # the source is the artifact's location in DEST, as MLflow's register_model("runs:/…") records it,
    # and a client loads models:/churn-model/1 from it
    for number, path in (("1", "model"), ("2", "notes.txt")):
        version = models["churn-model"]["versions"][number]
        assert version["run_id"] == parent and version["source"] == f"{version['artifact_uri']}/{path}", version
    assert "MLmodel" in models["churn-model"]["loaded"]
    unchanged = _export(repo, dest)  # nothing changed: no alias is counted
    assert unchanged.returncode == 0 and "aliases" not in unchanged.stdout, unchanged.stdout
    assert gitml(repo, "registry", "deregister", "churn-model", "--version", "v2.0.0").code == 0
    dry = _export(repo, dest, "--dry-run", "--json")
    assert dry.returncode == 0 and json.loads(dry.stdout)["aliases"] == 1, dry.stdout
    after = _export(repo, dest, "--json")
    assert after.returncode == 0 and json.loads(after.stdout)["aliases"] == 1, after.stdout
    models = _models(dest, scratch)
    assert models["churn-model"]["aliases"] == {"champion": "1"} and set(models["churn-model"]["versions"]) == {"1", "2"}
    assert gitml(repo, "registry", "unassign", "churn-model", "--version", "v1.0.0", "--stage", "champion").code == 0
    assert json.loads(_export(repo, dest, "--json").stdout)["aliases"] == 1
    models = _models(dest, scratch)
    assert models["churn-model"]["aliases"] == {} and models["theirs"]["aliases"] == {"prod": "1"}
