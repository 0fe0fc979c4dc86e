"""``gitml import mlflow``: real MLflow stores in, gitml runs out (issue 16, part 1).

The stores are made by MLflow itself, in its own virtualenv (``GITML_MLFLOW``), one Python
process per store running tests/mlflow_stores.py: a file store, a sqlite store, and a real
``mlflow server`` on a free loopback port. What MLflow reads back from each is the oracle the
imported records are compared with, field by field. Hostile stores are copies of the real ones
with one thing broken. Locally the test is skipped without MLflow; in CI (``CI`` set) it never is.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import socket
import sqlite3
import subprocess
from pathlib import Path

import pytest
from conftest import GITML as GITML_CMD
from conftest import RUNS_REF, code_repository, git, gitml, mlflow_env, mlflow_python, mlflow_server, runs_tip

import gitml as api
from gitml.interop.importer import iso_ms

MLFLOW = mlflow_python()
HERE = Path(__file__).parent

pytestmark = pytest.mark.interop


def _env() -> dict:
    return mlflow_env()


def _produce(uri: str, work: Path, commit: str) -> subprocess.Popen:
    work.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen([MLFLOW, str(HERE / "mlflow_stores.py"), uri, str(work), commit, str(work / "oracle.json")],
                            env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def _wait(proc: subprocess.Popen, work: Path) -> dict:
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    return json.loads((work / "oracle.json").read_text())


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    """The code repository the runs name, and the file and sqlite stores made from it (in parallel)."""
    base = tmp_path_factory.mktemp("mlflow-stores")
    origin, commit = code_repository(base)
    file_work, sql_work = base / "file", base / "sqlite"
    procs = {"file": _produce((file_work / "mlruns").as_uri(), file_work, commit),
             "sqlite": _produce(f"sqlite:///{sql_work / 'mlflow.db'}", sql_work, commit)}
    return {"origin": origin, "commit": commit,
            "file": (file_work / "mlruns", _wait(procs["file"], file_work)),
            "sqlite": (sql_work / "mlflow.db", _wait(procs["sqlite"], sql_work))}


@pytest.fixture(scope="module")
def server(stores, tmp_path_factory):
    """A real ``mlflow server`` (sqlite backend, proxied artifacts) on a free port, with the same runs."""
    work = tmp_path_factory.mktemp("mlflow-server")
    with mlflow_server(MLFLOW, work, "--backend-store-uri", f"sqlite:///{work / 'server.db'}",
                       "--artifacts-destination", str(work / "artifacts")) as url:
        yield url, _wait(_produce(url, work / "client", stores["commit"]), work / "client")


@pytest.fixture
def repo(stores, tmp_path) -> Path:
    """A clone of the code repository the runs were made from."""
    path = tmp_path / "repo"
    git(tmp_path, "clone", "-q", str(stores["origin"]), str(path))
    return path


def _records(repo: Path) -> dict[str, dict]:
    return {run.id: run for run in api.search_runs(repo=repo)} if runs_tip(repo) else {}


def _check_run(repo: Path, oracle: dict, run_id: str, experiment: str, inf_as_max: bool = False) -> None:
    """The imported run equals what MLflow reads back, field by field."""
    want = oracle["runs"][run_id]
    run = api.get_run(run_id, repo=repo)
    assert run.id == run_id
    assert run.name == want["name"]
    assert run.experiment == experiment
    assert run.status == want["status"]
    assert run.start_time == iso_ms(want["start_time"])
    assert run.end_time == iso_ms(want["end_time"])
    assert run.user == want["user"]
    assert run.params == want["params"]
    tags = {k: v for k, v in want["tags"].items() if k != "mlflow.runName"}
    assert run.tags == tags
    history = {}
    for point in run.history or []:
        history.setdefault(point.key, []).append([repr(point.value), point.step, point.timestamp])
    expected = {key: [[v, s, iso_ms(t)] for v, s, t in points] for key, points in want["metrics"].items()}
    if inf_as_max:  # MLflow's database stores keep ±inf as ±1.7976931348623157e308 (sqlalchemy_store.py)
        assert {v for v, _, _ in expected.get("acc", [])} >= {"1.7976931348623157e+308"} or not expected
    for key in expected:
        assert sorted(history[key], key=lambda p: (p[1], p[2])) == sorted(expected[key], key=lambda p: (p[1], p[2])), key
    assert set(history) == set(expected)
    return run


def _check_import(repo: Path, oracle: dict, commit: str, inf_as_max: bool = False) -> None:
    parent = _check_run(repo, oracle, oracle["parent"], "churn")
    child = _check_run(repo, oracle, oracle["child"], "churn", inf_as_max)
    _check_run(repo, oracle, oracle["old"], "other")
    assert child.tags["mlflow.parentRunId"] == parent.id
    assert parent.source["commit"] == commit and parent.command == "train.py"
    assert len(parent.tags["long"]) == 5000
    assert parent.metrics["loss"] == 0.2 and _records(repo)[child.id].metrics["acc"] == 0.75
    assert parent.artifacts["data"]["kind"] == "dir" and parent.artifacts["data"]["files"] == 2
    assert parent.artifacts["notes.txt"] == {"kind": "file", "size": 16, "sha256": parent.artifacts["notes.txt"]["sha256"]}
    assert parent.artifacts["model"]["kind"] == "dir"  # MLflow 3's logged model, as the run's folder artifact
    cache = repo / ".git" / "gitml" / "cache" / "sha256"
    digest = parent.artifacts["notes.txt"]["sha256"]
    assert (cache / digest[:2] / digest[2:]).read_bytes() == b"a file artifact\n"
    exp = api.get_experiment_by_name("churn", repo=repo)
    assert exp.recorded and exp.description == "Who leaves." and exp.tags["team"] == "growth"
    assert oracle["deleted"] not in _records(repo)
    listed = gitml(repo, "runs", "list")
    assert listed.code == 0 and listed.err == "", listed.err
    assert "parent" in listed.out and "child" in listed.out
    fsck = subprocess.run(["git", "fsck", "--strict"], cwd=repo, capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stderr


@pytest.mark.parametrize("kind", ["file", "sqlite"])
def test_import_is_lossless(stores, repo, kind):
    path, oracle = stores[kind]
    source = str(path) if kind == "file" else f"sqlite:///{path}"
    result = gitml(repo, "import", "mlflow", source)
    assert result.code == 0 and result.err == "", result.err
    assert "imported 3 runs" in result.out
    assert f"run {oracle['deleted']}: deleted in MLflow" in result.out
    _check_import(repo, oracle, stores["commit"], inf_as_max=kind == "sqlite")
    # the run commits are batches, not one per run
    assert int(git(repo, "rev-list", "--count", RUNS_REF)) <= 3
    # the registered model: MLflow's version 1 is v1.0.0, at the run's commit, its alias a stage
    want = oracle["version"]
    from gitml.registry import which

    info = which(f"{want['model']}@{want['alias']}", repo=repo)
    assert (info.version, info.run, info.path, info.commit) == ("v1.0.0", oracle["parent"], "model", stores["commit"])
    assert f"{want['model']}@v1.0.0" in result.out and f"{want['model']}#{want['alias']} (v1.0.0)" in result.out
    tip = git(repo, "for-each-ref", "refs/tags").strip()
    again = gitml(repo, "import", "mlflow", source)  # registered once: nothing new
    assert again.code == 0 and git(repo, "for-each-ref", "refs/tags").strip() == tip


def test_json_summary_and_file_uri(stores, repo):
    path, oracle = stores["file"]
    result = gitml(repo, "import", "mlflow", path.as_uri(), "--json", "--no-registry")
    assert result.code == 0 and result.err == ""
    summary = json.loads(result.out)
    assert summary["imported"] == 3 and summary["found"] == 4
    assert summary["points"] == sum(len(points) for run in oracle["runs"].values() if run["lifecycle_stage"] == "active"
                                    for points in run["metrics"].values())
    assert summary["artifacts"] == 3 and summary["artifact_bytes"] > 0
    assert {"what": f"run {oracle['deleted']}", "why": "deleted in MLflow"} in summary["skipped"]


def test_second_import_writes_nothing(stores, repo):
    path, _ = stores["sqlite"]
    assert gitml(repo, "import", "mlflow", f"sqlite:///{path}").code == 0
    tip = runs_tip(repo)
    again = gitml(repo, "import", "mlflow", f"sqlite:///{path}")
    assert again.code == 0 and again.err == ""
    assert "imported 0 runs" in again.out and "already imported, unchanged: 3 runs" in again.out
    assert runs_tip(repo) == tip


def test_interrupted_import_resumes(stores, repo, monkeypatch):
    from gitml.interop import importer

    path, oracle = stores["file"]
    real = importer.write_runs
    calls = []

    def flaky(*args, **kwargs):
        if calls:
            raise KeyboardInterrupt  # killed after the first batch
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(importer, "write_runs", flaky)
    with pytest.raises(KeyboardInterrupt):
        importer.import_mlflow(str(path), batch_size=1, registry=False, repo=repo)
    first = _records(repo)
    assert len(first) == 1
    monkeypatch.setattr(importer, "write_runs", real)
    summary = importer.import_mlflow(str(path), batch_size=1, registry=False, repo=repo)
    assert summary.unchanged == 1 and summary.imported == 2
    assert set(_records(repo)) == {oracle["parent"], oracle["child"], oracle["old"]}


def _run_files(repo: Path) -> list[str]:
    """Every run's files (mode, blob and path) on the runs ref: what the run records hold."""
    listing = git(repo, "ls-tree", "-r", RUNS_REF).splitlines()
    return sorted(line for line in listing if line.split("\t")[1].startswith("runs/"))


@pytest.mark.parametrize("kind", ["file", "sqlite"])
def test_reader_processes_write_what_one_process_writes(stores, tmp_path, kind):
    """``--jobs 2`` reads the store in two processes, ahead of the writer: the same run records, the same skips."""
    path, oracle = stores[kind]
    source = str(path) if kind == "file" else f"sqlite:///{path}"
    store = tmp_path / "store"
    if kind == "file":  # one run of the copy unreadable: its problem must come back from a reader process
        shutil.copytree(path, store)
        meta = next(p for p in store.glob(f"*/{oracle['old']}/meta.yaml"))
        meta.write_text(re.sub(r"(?m)^status: .*$", "status: 99", meta.read_text()))
        source = str(store)
    results = {}
    for jobs, batch in (("1", "500"), ("2", "1")):
        clone = tmp_path / f"jobs-{jobs}"
        git(tmp_path, "clone", "-q", str(stores["origin"]), str(clone))
        result = gitml(clone, "import", "mlflow", source, "--jobs", jobs, "--batch", batch, "--json", "--no-registry")
        assert result.code == 0 and result.err == "", result.err
        summary = json.loads(result.out)
        results[jobs] = (_run_files(clone), summary["imported"], summary["points"], sorted(map(str, summary["skipped"])))
        assert int(git(clone, "rev-list", "--count", RUNS_REF)) == 1 + (summary["imported"] if jobs == "2" else 1)
    assert results["1"] == results["2"]
    assert results["2"][1] == (2 if kind == "file" else 3) and results["2"][0]
    if kind == "file":
        assert any(oracle["old"] in why for why in results["2"][3])


def _copies(db: Path, run_id: str, count: int, points: int) -> None:
    """``count`` copies of MLflow run ``run_id`` in the sqlite store ``db``, each with ``points`` points of one metric."""
    conn = sqlite3.connect(db)
    columns = [row[1] for row in conn.execute("PRAGMA table_info(runs)")]
    picked = ", ".join("?" if c in ("run_uuid", "name", "artifact_uri") else c for c in columns)
    for n in range(count):
        copy = f"{n:032x}"
        conn.execute(f"INSERT INTO runs ({', '.join(columns)}) SELECT {picked} FROM runs WHERE run_uuid = ?",
                     [{"run_uuid": copy, "name": f"copy-{n}", "artifact_uri": None}[c] for c in columns
                      if c in ("run_uuid", "name", "artifact_uri")] + [run_id])
        conn.executemany("INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?,?,?,?,?,0)",
                         [("loss", 1 / (i + 1), 1_790_000_000_000 + i, copy, i) for i in range(points)])
    conn.commit()
    conn.close()


def _stray_processes(mark: str) -> list[str]:
    """Processes whose environment holds ``mark`` (reader processes of a stopped import would)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            if proc.name.isdigit() and mark.encode() in (proc / "environ").read_bytes():
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace"))
        except OSError:
            continue
    return found


@pytest.mark.skipif(not Path("/proc/self/environ").exists(), reason="finds processes through /proc")
def test_interrupted_parallel_import_stops_its_readers_and_resumes(stores, repo, tmp_path):
    """Ctrl-C during an import read by two processes: exit 130, whole batches kept, no process left, then resumed."""
    import os
    import signal
    import time
    import uuid

    path, oracle = stores["sqlite"]
    db = tmp_path / "big.db"
    shutil.copy(path, db)
    _copies(db, oracle["parent"], 1200, 300)
    mark = f"GITML_TEST_{uuid.uuid4().hex}"
    env = {**os.environ, mark: "1"}
    cmd = [*GITML_CMD, "import", "mlflow", f"sqlite:///{db}", "--jobs", "2", "--batch", "100", "--no-registry"]
    proc = subprocess.Popen(cmd, cwd=repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while int(git(repo, "rev-list", "--count", RUNS_REF) if runs_tip(repo) else 0) < 3:  # experiments + 2 batches
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()[1][-2000:]
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err[-2000:]
    deadline = time.monotonic() + 10
    while _stray_processes(mark) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _stray_processes(mark) == []
    kept = len(_records(repo))
    assert 0 < kept < 1200 and kept % 100 == 0  # whole batches only
    fsck = subprocess.run(["git", "fsck", "--strict"], cwd=repo, capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stderr
    again = gitml(repo, "import", "mlflow", f"sqlite:///{db}", "--json", "--no-registry")
    assert again.code == 0 and again.err == "", again.err
    summary = json.loads(again.out)
    assert summary["unchanged"] == kept and summary["imported"] >= 1200 - kept
    # the store's own runs come too, but the one whose artifacts stayed beside the original store
    assert len(_records(repo)) == kept + summary["imported"] == 1200 + 2


def test_dry_run_writes_nothing(stores, repo):
    path, _ = stores["file"]
    before = sorted(p.relative_to(repo) for p in (repo / ".git").rglob("*"))
    result = gitml(repo, "import", "mlflow", str(path), "--dry-run")
    assert result.code == 0 and result.err == ""
    assert "would import 3 runs" in result.out and "would create experiments" in result.out
    assert runs_tip(repo) == ""
    after = sorted(p.relative_to(repo) for p in (repo / ".git").rglob("*"))
    assert [p for p in after if p not in before and "gitml/index" not in str(p)] == []


def test_experiment_and_since(stores, repo):
    path, oracle = stores["sqlite"]
    future = gitml(repo, "import", "mlflow", f"sqlite:///{path}", "--since", "2100-01-01", "--no-registry")
    assert future.code == 0 and "imported 0 runs" in future.out and "created experiments" not in future.out
    assert runs_tip(repo) == ""  # no run after --since: no experiment record either
    only = gitml(repo, "import", "mlflow", f"sqlite:///{path}", "--experiment", "other", "--no-registry")
    assert only.code == 0 and "imported 1 runs" in only.out
    assert set(_records(repo)) == {oracle["old"]}
    recent = gitml(repo, "import", "mlflow", f"sqlite:///{path}", "--since", "2026-09-01", "--no-registry")
    assert recent.code == 0 and "imported 2 runs" in recent.out, recent.out
    assert "started before --since: 1 runs" in recent.out  # the old run is already there and older anyway
    assert set(_records(repo)) == {oracle["old"], oracle["parent"], oracle["child"]}
    missing = gitml(repo, "import", "mlflow", f"sqlite:///{path}", "--experiment", "nope")
    assert missing.code == 2 and missing.err.count("\n") == 1 and "no experiment 'nope'" in missing.err


def _copy_store(stores, tmp_path, kind="file") -> tuple[Path, dict]:
    path, oracle = stores[kind]
    copy = tmp_path / ("mlruns" if kind == "file" else "db")
    if kind == "file":
        shutil.copytree(path, copy, symlinks=True)
        return copy, oracle
    shutil.copytree(path.parent, copy, symlinks=True)
    return copy / path.name, oracle


def _run_dir(store: Path, oracle: dict, run: str) -> Path:
    exp = oracle["runs"][oracle[run]]["experiment_id"]
    return store / exp / oracle[run]


def test_hostile_file_store(stores, repo, tmp_path):
    store, oracle = _copy_store(stores, tmp_path)
    secret = tmp_path / "secret.txt"
    secret.write_text("not yours\n")
    # an artifact that is a symbolic link out of the run's folder
    (_run_dir(store, oracle, "parent") / "artifacts" / "escape.txt").symlink_to(secret)
    # a run whose artifacts are said to live outside the store
    child_meta = _run_dir(store, oracle, "child") / "meta.yaml"
    text = child_meta.read_text()
    start = text.index("artifact_uri:")
    end = text.index("\n", start)
    child_meta.write_text(text[:start] + f"artifact_uri: {tmp_path.as_uri()}" + text[end:])
    # a half-deleted run: its meta.yaml is gone
    (_run_dir(store, oracle, "old") / "meta.yaml").unlink()
    result = gitml(repo, "import", "mlflow", str(store), "--no-registry")
    assert result.code == 0 and result.err == "", result.err
    lines = result.out.splitlines()
    assert "imported 0 runs" in lines[0]
    assert any(oracle["parent"] in line and "symbolic link leading out" in line for line in lines)
    assert any(oracle["child"] in line and "outside the store's artifact root" in line for line in lines)
    assert any(oracle["old"] in line and "meta.yaml is missing" in line for line in lines)
    assert any(oracle["deleted"] in line and "deleted in MLflow" in line for line in lines)
    assert runs_tip(repo) == "" or _records(repo) == {}
    cache = repo / ".git" / "gitml" / "cache" / "sha256"
    assert not any(p.is_file() and p.read_bytes() == b"not yours\n" for p in cache.rglob("*")) if cache.exists() else True


def test_hostile_values_are_kept_or_refused(stores, repo, tmp_path):
    store, oracle = _copy_store(stores, tmp_path)
    parent = _run_dir(store, oracle, "parent")
    (parent / "params" / "huge").write_text("y" * 6001)  # over gitml's (and MLflow's) 6000
    result = gitml(repo, "import", "mlflow", str(store), "--no-registry")
    assert result.code == 0
    assert any(oracle["parent"] in line and "longer than 6000" in line for line in result.out.splitlines())
    runs = _records(repo)
    assert oracle["parent"] not in runs and oracle["child"] in runs  # whole runs or nothing
    child = runs[oracle["child"]]
    history = [p.value for p in api.get_run(child.id, repo=repo).history]
    assert math.isnan(history[1]) and history[2] == math.inf and history[3] == -math.inf


def test_wrong_store_versions_abort_before_writing(stores, repo, tmp_path):
    db, _ = _copy_store(stores, tmp_path, "sqlite")
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")
    result = gitml(repo, "import", "mlflow", f"sqlite:///{db}")
    assert result.code == 2 and result.out == ""
    assert result.err.count("\n") == 1 and "unknown MLflow schema version 'ffffffffffff'" in result.err
    store, oracle = _copy_store(stores, tmp_path / "f")
    meta = store / oracle["experiments"]["churn"] / "meta.yaml"
    meta.write_text("\n".join(line for line in meta.read_text().splitlines() if not line.startswith("name:")) + "\n")
    result = gitml(repo, "import", "mlflow", str(store))
    assert result.code == 2 and result.err.count("\n") == 1 and "lacks 'name'" in result.err
    not_a_store = gitml(repo, "import", "mlflow", str(tmp_path))
    assert not_a_store.code == 2 and "holds no MLflow experiment" in not_a_store.err
    assert runs_tip(repo) == ""


def test_sqlite_artifact_uri_outside_its_root_is_refused(stores, repo, tmp_path):
    db, oracle = _copy_store(stores, tmp_path, "sqlite")
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE runs SET artifact_uri = ? WHERE run_uuid = ?", (str(Path.home()), oracle["child"]))
    result = gitml(repo, "import", "mlflow", f"sqlite:///{db}", "--no-registry")
    assert result.code == 0
    assert any(oracle["child"] in line and "outside" in line for line in result.out.splitlines())
    assert oracle["child"] not in _records(repo) and oracle["parent"] in _records(repo)


def test_moved_sqlite_store_imports_every_run(stores, repo, tmp_path):
    """A store copied elsewhere: artifacts found beside it again, and a run whose artifact folder is nowhere has none."""
    db, oracle = _copy_store(stores, tmp_path, "sqlite")
    with sqlite3.connect(db) as conn:  # a run that logged nothing: MLflow never made its folder
        conn.execute("UPDATE runs SET artifact_uri = ? WHERE run_uuid = ?",
                     (str(tmp_path / "gone" / "1" / oracle["old"] / "artifacts"), oracle["old"]))
    result = gitml(repo, "import", "mlflow", f"sqlite:///{db}", "--json", "--no-registry")
    assert result.code == 0 and result.err == "", result.err
    summary = json.loads(result.out)
    assert summary["imported"] == 3, summary["skipped"]
    records = _records(repo)
    assert records[oracle["parent"]].artifacts["notes.txt"]["size"] == 16  # found in the moved store
    assert records[oracle["old"]].artifacts == {}


def test_version_source_under_the_runs_artifact_location(stores, repo, tmp_path):
    """MLflow records a version's files as ``<run's artifact location>/<path>``: that path is the artifact registered."""
    db, oracle = _copy_store(stores, tmp_path, "sqlite")
    with sqlite3.connect(db) as conn:
        (location,) = conn.execute("SELECT artifact_uri FROM runs WHERE run_uuid = ?", (oracle["parent"],)).fetchone()
        conn.execute("UPDATE model_versions SET source = ?", (f"{location}/data",))
    dry = gitml(repo, "import", "mlflow", f"sqlite:///{db}", "--dry-run")
    want = oracle["version"]
    assert dry.code == 0 and f"{want['model']}@v1.0.0" in dry.out and "not in this repository" not in dry.out, dry.out
    result = gitml(repo, "import", "mlflow", f"sqlite:///{db}")
    assert result.code == 0 and result.err == "", result.err
    from gitml.registry import which

    info = which(f"{want['model']}@{want['alias']}", repo=repo)
    assert (info.version, info.run, info.path) == ("v1.0.0", oracle["parent"], "data")


def test_tracking_server(server, repo, stores):
    url, oracle = server
    result = gitml(repo, "import", "mlflow", url)
    assert result.code == 0 and result.err == "", result.err
    assert "imported 3 runs" in result.out, result.out
    _check_import(repo, oracle, stores["commit"], inf_as_max=True)
    tip = runs_tip(repo)
    assert "already imported, unchanged: 3 runs" in gitml(repo, "import", "mlflow", url).out
    assert runs_tip(repo) == tip


def test_unknown_source_kinds(repo):
    result = gitml(repo, "import", "mlflow", "postgresql://u@h/db")
    assert result.code == 2 and "postgresql:// stores are not read" in result.err
    unreachable = gitml(repo, "import", "mlflow", f"http://127.0.0.1:{_free_port()}")
    assert unreachable.code == 1 and "cannot be reached" in unreachable.err, unreachable.err  # a remote failed
    assert runs_tip(repo) == ""
