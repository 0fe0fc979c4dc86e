"""The ``gitml`` command line's happy paths: real processes, real repositories, real ``git`` reading.

Every command here runs as its own process (``python -m gitml`` via :func:`conftest.gitml`), and
what it wrote is checked with the git CLI, not with gitml's own readers, wherever git can say.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import Result, console_script, git, gitml, runs_tip

import gitml as api

RUN_ID_LINE = re.compile(r"[0-9a-f]{32}\n")
ISO_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z")
FETCH_SPEC = "refs/gitml/runs*:refs/gitml/remotes/origin/runs*"
RUN_KEYS = {"id", "name", "experiment", "status", "start_time", "end_time", "params", "metrics",
            "tags", "artifacts", "source"}
# and the rest of docs/formats.md's "runs list --json" shape: run.yaml's fields, metric_info, patch
DOCUMENTED_KEYS = RUN_KEYS | {"updated", "user", "command", "entry_point", "description", "gitml_version",
                              "metric_info", "patch"}


# -- helpers -----------------------------------------------------------------------------------


def ok(cwd: Path | str, *args: str) -> Result:
    """Run gitml and insist on success: exit 0 and, as DESIGN.md §6 says, an empty stderr."""
    result = gitml(cwd, *args)
    assert result.code == 0, f"gitml {' '.join(args)} -> {result.code}\n{result.err}"
    assert result.err == "", result.err
    return result


def commit(cwd: Path | str, *args: str) -> str:
    """``gitml commit-run ARGS``; its stdout must be the run id and a newline, nothing else."""
    result = ok(cwd, "commit-run", *args)
    assert RUN_ID_LINE.fullmatch(result.out), repr(result.out)
    return result.out.strip()


def show(cwd: Path | str, run: str) -> dict:
    return json.loads(ok(cwd, "runs", "show", run, "--json").out)


def listing(cwd: Path | str, *args: str) -> list[dict]:
    return json.loads(ok(cwd, "runs", "list", "--json", *args).out)


def run_dir(run_id: str) -> str:
    return f"runs/{run_id[:2]}/{run_id}"


def on_ref(repo: Path, run_id: str, name: str) -> str:
    """A run file as the real git CLI reads it from the runs ref."""
    return git(repo, "show", f"refs/gitml/runs:{run_dir(run_id)}/{name}")


def active_dirs(repo: Path) -> list[str]:
    root = repo / ".git" / "gitml" / "active"
    return sorted(p.name for p in root.iterdir()) if root.is_dir() else []


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def git_state(repo: Path) -> tuple[str, str, str]:
    """What commit-run must never change: HEAD, the index, the work tree's status."""
    return (git(repo, "rev-parse", "HEAD"), git(repo, "ls-files", "-s"),
            git(repo, "status", "--porcelain", "--untracked-files=all"))


MODEL_BYTES = bytes(range(256)) * 40

FULL_ARGS = ("-n", "rf-200", "-e", "churn", "-p", "n_estimators=200", "-p", "model=rf",
             "--params", "params.yaml", "--metrics", "metrics.json", "-a", "model.pkl",
             "--tag", "team=growth")


def _training_outputs(repo: Path) -> None:
    write(repo / "params.yaml", "train:\n  lr: 0.1\n  epochs: 3\n  optimizer:\n    name: adam\nseed: 7\n")
    write(repo / "metrics.json", json.dumps({"acc": 0.91, "val": {"loss": 0.25}}))
    write(repo / "model.pkl", MODEL_BYTES)


# -- the program -------------------------------------------------------------------------------


def test_version(tmp_path):
    result = ok(tmp_path, "--version")
    assert api.__version__ in result.out and "gitml" in result.out


def test_help_lists_every_command(tmp_path):
    for flag in ("--help", "-h"):
        result = ok(tmp_path, flag)
        for command in ("commit-run", "runs", "index", "init", "demo"):
            assert re.search(rf"^\s+{re.escape(command)}\s", result.out, re.M), (command, result.out)


def test_python_dash_m_and_console_script(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "gitml", "--help"], cwd=tmp_path,
                          capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stderr == "" and "commit-run" in proc.stdout
    script = console_script()  # next to the interpreter, or where its pip puts scripts
    if script is None:
        pytest.skip(f"no gitml console script for {sys.executable}")
    proc = subprocess.run([str(script), "--version"], cwd=tmp_path, capture_output=True, text=True)
    assert proc.returncode == 0 and api.__version__ in proc.stdout and proc.stderr == ""


@pytest.mark.parametrize(
    "command",
    [["init"], ["commit-run"], ["runs"], ["runs", "list"], ["runs", "show"], ["runs", "delete"],
     ["index"], ["index", "rebuild"], ["demo"]],
    ids=lambda c: "-".join(c),
)
def test_every_subcommand_has_help(tmp_path, command):
    result = ok(tmp_path, *command, "--help")  # outside any repository: help needs none
    assert result.out.startswith("Usage: gitml " + " ".join(command))


# -- gitml init ---------------------------------------------------------------------------------


def test_init_writes_commented_config_and_refspec_once(repo, tmp_path):
    git(tmp_path, "init", "-q", "--bare", "origin.git")
    git(repo, "remote", "add", "origin", str(tmp_path / "origin.git"))
    first = ok(repo, "init")
    assert "gitml.yaml" in first.out
    text = (repo / "gitml.yaml").read_text()
    assert any(line.startswith("#") for line in text.splitlines())  # commented for people
    doc = yaml.safe_load(text)
    assert doc["params"] == ["params.yaml"] and doc["metrics"] == ["metrics.json"]
    specs = git(repo, "config", "--get-all", "remote.origin.fetch").split()
    assert specs.count(FETCH_SPEC) == 1
    assert "+" + FETCH_SPEC not in specs  # non-forced: a diverged remote never overwrites ours
    assert "+refs/heads/*:refs/remotes/origin/*" in specs  # git's own refspec left alone

    again = ok(repo, "init")
    assert again.out == ""
    assert (repo / "gitml.yaml").read_text() == text
    assert git(repo, "config", "--get-all", "remote.origin.fetch").split() == specs


def test_init_keeps_an_existing_config_and_works_without_remotes(repo):
    write(repo / "gitml.yaml", "# ours\nparams: [conf/p.yaml]\n")
    ok(repo, "init")
    assert (repo / "gitml.yaml").read_text() == "# ours\nparams: [conf/p.yaml]\n"
    assert git(repo, "config", "--get-all", "remote.origin.fetch", check=False) == ""


def test_plain_git_fetch_brings_the_runs_ref_after_init(repo, tmp_path):
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(origin))
    git(repo, "remote", "add", "origin", str(origin))
    run_id = commit(repo, "-n", "shared", "-m", "acc=0.5")
    git(repo, "push", "-q", "origin", "main", "refs/gitml/runs")
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", str(origin), str(clone))
    ok(clone, "init")
    git(clone, "fetch", "-q")
    assert git(clone, "rev-parse", "refs/gitml/remotes/origin/runs").strip() == runs_tip(repo)
    assert run_id in git(clone, "log", "--format=%s", "refs/gitml/remotes/origin/runs")


def test_plain_git_fetch_still_works_when_the_remote_has_no_runs(repo, tmp_path):
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(origin))
    git(repo, "remote", "add", "origin", str(origin))
    git(repo, "push", "-q", "-u", "origin", "main")
    ok(repo, "init")
    proc = subprocess.run(["git", "fetch", "origin"], cwd=repo, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    proc = subprocess.run(["git", "pull", "-q"], cwd=repo, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr


# -- gitml commit-run ---------------------------------------------------------------------------


def test_commit_run_records_typed_values(repo):
    _training_outputs(repo)
    run_id = commit(repo, *FULL_ARGS)
    run = show(repo, run_id)
    assert (run["id"], run["name"], run["experiment"], run["status"]) == (run_id, "rf-200", "churn", "FINISHED")
    params = run["params"]
    assert params["n_estimators"] == 200 and type(params["n_estimators"]) is int
    assert params["model"] == "rf"
    # params.yaml's nested keys flattened with dots, with their YAML types
    assert params["train.lr"] == 0.1 and type(params["train.lr"]) is float
    assert params["train.epochs"] == 3 and type(params["train.epochs"]) is int
    assert params["train.optimizer.name"] == "adam" and params["seed"] == 7
    assert run["metrics"] == {"acc": 0.91, "val.loss": 0.25}
    assert run["tags"] == {"team": "growth"}
    artifact = run["artifacts"]["model.pkl"]
    assert artifact["kind"] == "file"
    assert artifact["sha256"] == hashlib.sha256(MODEL_BYTES).hexdigest()
    assert artifact["size"] == len(MODEL_BYTES)
    digest = artifact["sha256"]
    cached = repo / ".git" / "gitml" / "cache" / "sha256" / digest[:2] / digest[2:]
    assert cached.read_bytes() == MODEL_BYTES
    source = run["source"]
    assert source["commit"] == git(repo, "rev-parse", "HEAD").strip()
    assert source["branch"] == "main" and source["dirty"] is False
    assert ISO_UTC.fullmatch(run["start_time"]) and ISO_UTC.fullmatch(run["end_time"])
    assert run["start_time"] <= run["end_time"]
    assert run["user"] == "Test User" and run["gitml_version"] == api.__version__
    assert "commit-run" in run["command"]

    # what git itself reads back: canonical YAML files with the same values
    assert yaml.safe_load(on_ref(repo, run_id, "params.yaml")) == params
    assert yaml.safe_load(on_ref(repo, run_id, "tags.yaml")) == {"team": "growth"}
    head = yaml.safe_load(on_ref(repo, run_id, "run.yaml"))
    assert head["id"] == run_id and head["name"] == "rf-200" and head["status"] == "FINISHED"
    metrics = yaml.safe_load(on_ref(repo, run_id, "metrics.yaml"))
    assert metrics["acc"]["value"] == 0.91

    text = ok(repo, "runs", "show", run_id).out
    for needle in (run_id, "rf-200", "churn", "n_estimators", "val.loss", "team", "model.pkl", "growth"):
        assert needle in text


def test_commit_run_touches_only_the_runs_ref(repo):
    _training_outputs(repo)
    before = git_state(repo)
    run_id = commit(repo, *FULL_ARGS)
    assert git_state(repo) == before
    fsck = subprocess.run(["git", "fsck", "--strict", "--no-progress"], cwd=repo, capture_output=True, text=True)
    assert fsck.returncode == 0 and fsck.stderr == "", fsck.stderr
    assert git(repo, "log", "--format=%an%n%ae%n%s", "refs/gitml/runs") == (
        f"Test User\ntest@example.com\nrun {run_id}: rf-200\n")
    assert git(repo, "rev-list", "--count", "refs/gitml/runs").strip() == "1"
    names = set(git(repo, "ls-tree", "-r", "--name-only", "refs/gitml/runs").split())
    base = run_dir(run_id)
    head = git(repo, "rev-parse", "HEAD").strip()
    start = json.loads(ok(repo, "runs", "show", run_id, "--json").out)["start_time"]
    runs_tree = git(repo, "rev-parse", "refs/gitml/runs:runs").strip()  # named by maps/runs-<id>
    assert {f"{base}/{n}" for n in ("run.yaml", "params.yaml", "metrics.yaml", "tags.yaml",
                                    "artifacts.yaml")} | {  # clean tree: no patch.diff
        f"maps/commits/{head[:2]}/{head}/{run_id[:2]}/{run_id}",
        f"maps/started/{start[:10]}/{start[11:13]}/{start[14:16]}/{run_id[:2]}/{start[17:23]}-{run_id}",
        f"maps/runs-{runs_tree}"} == names
    # the runs ref is never a branch and never checked out
    assert git(repo, "for-each-ref", "--format=%(refname)", "refs/heads").split() == ["refs/heads/main"]
    assert active_dirs(repo) == []

    second = commit(repo, "-n", "second", "-m", "acc=0.1")
    assert git(repo, "rev-parse", "refs/gitml/runs^").strip() != runs_tip(repo)
    assert git(repo, "log", "-1", "--format=%s", "refs/gitml/runs").strip() == f"run {second}: second"
    # five files a run, and each run in the two lookup maps, plus maps/runs-<id>
    assert len(set(git(repo, "ls-tree", "-r", "--name-only", "refs/gitml/runs").split())) == 15
    assert git_state(repo) == before


def test_commit_run_directory_artifact(repo):
    write(repo / "model" / "weights.bin", b"\x01" * 1000)
    write(repo / "model" / "conf" / "config.json", '{"layers": 3}')
    run_id = commit(repo, "-a", "model", "-m", "acc=1")
    entry = show(repo, run_id)["artifacts"]["model"]
    assert entry["kind"] == "dir" and entry["size"] == 1000 + len('{"layers": 3}')
    digest = entry["sha256"]
    manifest = repo / ".git" / "gitml" / "cache" / "sha256" / digest[:2] / digest[2:]
    assert hashlib.sha256(manifest.read_bytes()).hexdigest() == digest
    files = {f["path"]: f["sha256"] for f in json.loads(manifest.read_bytes())["files"]}
    assert files == {
        "weights.bin": hashlib.sha256(b"\x01" * 1000).hexdigest(),
        "conf/config.json": hashlib.sha256(b'{"layers": 3}').hexdigest(),
    }
    assert yaml.safe_load(on_ref(repo, run_id, "artifacts.yaml"))["model"]["kind"] == "dir"


TRAIN_PY = """\
import json
import yaml

params = yaml.safe_load(open("params.yaml"))
json.dump({"accuracy": 0.5 + params["lr"], "loss": {"train": 0.3}}, open("metrics.json", "w"))
"""


def test_train_then_bare_commit_run_reads_the_default_files(repo):
    write(repo / "train.py", TRAIN_PY)
    write(repo / "params.yaml", "lr: 0.25\nmodel: rf\n")
    write(repo / ".gitignore", "metrics.json\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "train")
    subprocess.run([sys.executable, "train.py"], cwd=repo, check=True)
    run_id = commit(repo)
    run = show(repo, run_id)
    assert run["params"] == {"lr": 0.25, "model": "rf"}
    assert run["metrics"] == {"accuracy": 0.75, "loss.train": 0.3}
    assert run["experiment"] == "default" and run["source"]["dirty"] is False


def test_commit_run_honours_the_files_gitml_yaml_names(repo):
    write(repo / "gitml.yaml", "params: [conf/p.yaml]\nmetrics: [out/m.json]\nexperiment: from-config\n")
    write(repo / "conf" / "p.yaml", "depth: 8\nopt:\n  lr: 0.01\n")
    write(repo / "out" / "m.json", '{"f1": 0.8}')
    write(repo / "params.yaml", "ignored: 1\n")  # the defaults are not read when gitml.yaml names others
    write(repo / "metrics.json", '{"ignored": 1}')
    run_id = commit(repo / "conf")  # from a subdirectory: the names are relative to the root
    run = show(repo, run_id)
    assert run["params"] == {"depth": 8, "opt.lr": 0.01}
    assert run["metrics"] == {"f1": 0.8}
    assert run["experiment"] == "from-config"


def test_dirty_worktree_is_recorded_as_a_patch(repo):
    write(repo / "train.py", "print('training')\nprint('changed')\n")
    write(repo / "notes.txt", "scratch\n")
    before = git_state(repo)
    run_id = commit(repo, "-n", "dirty", "-m", "acc=1")
    assert git_state(repo) == before
    run = show(repo, run_id)
    assert run["source"]["dirty"] is True and run["patch"] is True
    patch = on_ref(repo, run_id, "patch.diff")
    assert "+print('changed')" in patch and "train.py" in patch
    assert "notes.txt" in patch  # untracked files are listed
    assert "patch.diff" in git(repo, "ls-tree", "--name-only", f"refs/gitml/runs:{run_dir(run_id)}/")
    # the patch reproduces the run's code on its source commit
    write(repo / "run.patch", patch)
    git(repo, "checkout", "-q", "--", "train.py")
    git(repo, "apply", "run.patch")
    assert (repo / "train.py").read_text() == "print('training')\nprint('changed')\n"


def test_require_clean_refuses_a_dirty_worktree(repo):
    commit(repo, "-n", "clean", "-m", "acc=1")
    write(repo / "train.py", "print('changed')\n")
    tip = runs_tip(repo)
    result = gitml(repo, "commit-run", "--require-clean", "-m", "acc=2")
    assert result.code == 1
    assert len(result.err.strip().splitlines()) == 1 and "train.py" in result.err
    assert "Traceback" not in result.err and result.out == ""
    assert runs_tip(repo) == tip and active_dirs(repo) == []
    git(repo, "checkout", "-q", "--", "train.py")
    commit(repo, "--require-clean", "-m", "acc=2")  # clean again: accepted


def test_repository_without_a_commit(empty_repo):
    run_id = commit(empty_repo, "-n", "first", "-m", "acc=1")
    run = show(empty_repo, run_id)
    assert run["source"]["commit"] == "" and "no commit" in run["source"].get("note", "")
    assert "no commit" in ok(empty_repo, "runs", "show", run_id).out
    assert git(empty_repo, "rev-parse", "-q", "--verify", "HEAD", check=False) == ""  # still unborn
    assert git(empty_repo, "status", "--porcelain") == ""


# -- listing, showing, searching ---------------------------------------------------------------


def test_runs_list_formats_filters_and_order(repo):
    a = commit(repo, "-n", "rf-a", "-e", "churn", "-p", "model=rf", "-m", "acc=0.9", "-t", "team=growth")
    b = commit(repo, "-n", "lr-b", "-e", "churn", "-p", "model=lr", "-m", "acc=0.7")
    c = commit(repo, "-n", "rf-c", "-e", "other", "-p", "model=rf", "-m", "acc=0.4")

    table = ok(repo, "runs", "list").out
    for name in ("rf-a", "lr-b", "rf-c", "acc", "churn", a[:8]):
        assert name in table

    runs = listing(repo)
    assert [r["id"] for r in runs] == [c, b, a]  # newest first
    for run in runs:
        assert DOCUMENTED_KEYS <= set(run), DOCUMENTED_KEYS - set(run)
        assert run["patch"] is False and run["status"] == "FINISHED"
    assert runs[2]["params"] == {"model": "rf"} and runs[2]["tags"] == {"team": "growth"}
    assert runs[2]["source"]["commit"] == git(repo, "rev-parse", "HEAD").strip()

    rows = list(csv.DictReader(io.StringIO(ok(repo, "runs", "list", "--csv").out)))
    assert [row["name"] for row in rows] == ["rf-c", "lr-b", "rf-a"]
    assert {row["acc"] for row in rows} == {"0.9", "0.7", "0.4"}

    assert {r["name"] for r in listing(repo, "--experiment", "churn")} == {"rf-a", "lr-b"}
    assert [r["name"] for r in listing(repo, "--filter", "metrics.acc > 0.5 and params.model = 'rf'")] == ["rf-a"]
    assert [r["name"] for r in listing(repo, "--filter", "tags.team = 'growth'")] == ["rf-a"]
    assert [r["name"] for r in listing(repo, "--order-by", "metrics.acc DESC")] == ["rf-a", "lr-b", "rf-c"]
    assert [r["name"] for r in listing(repo, "--order-by", "metrics.acc", "--limit", "2")] == ["rf-c", "lr-b"]
    assert listing(repo, "--filter", "metrics.acc > 0.95") == []

    assert show(repo, b[:6])["id"] == b
    text = ok(repo, "runs", "show", a[:6]).out
    assert a in text and "rf-a" in text and "0.9" in text


def test_runs_delete_keeps_history(repo):
    keep = commit(repo, "-n", "keeper", "-m", "acc=1")
    gone = commit(repo, "-n", "doomed-run", "-m", "acc=0")
    result = ok(repo, "runs", "delete", gone[:6])
    assert result.out.strip() == gone
    assert [r["id"] for r in listing(repo)] == [keep]
    assert gitml(repo, "runs", "show", gone).code == 2
    assert git(repo, "rev-list", "--count", "refs/gitml/runs").strip() == "3"
    assert gone not in git(repo, "ls-tree", "-r", "--name-only", "refs/gitml/runs")
    history = git(repo, "log", "-p", "refs/gitml/runs")
    assert f"delete run {gone}" in history and f"run {gone}: doomed-run" in history
    assert re.search(r"^-name: \"?doomed-run\"?$", history, re.M)  # the removed file, in the log
    # and it is all still there to read at the commit before the delete
    assert yaml.safe_load(git(repo, "show", f"refs/gitml/runs^:{run_dir(gone)}/run.yaml"))["id"] == gone


def test_index_is_a_rebuildable_cache(repo):
    ids = {api.commit_run(name=f"r{i}", metrics={"acc": i / 10}, repo=repo).id for i in range(3)}
    assert ok(repo, "index", "rebuild").out == "3\n"
    index = repo / ".git" / "gitml" / "index.sqlite"
    assert index.exists()
    for suffix in ("", "-wal", "-shm"):
        Path(str(index) + suffix).unlink(missing_ok=True)
    assert {r["id"] for r in listing(repo)} == ids
    index.write_bytes(b"this is not a sqlite database" * 100)  # garbage: rebuilt, not trusted
    for suffix in ("-wal", "-shm"):
        Path(str(index) + suffix).unlink(missing_ok=True)
    assert {r["id"] for r in listing(repo)} == ids
    # the ref moved behind the index's back (a reset by hand): the ref wins
    git(repo, "update-ref", "refs/gitml/runs", "refs/gitml/runs~1")
    assert len(listing(repo)) == 2


def test_dash_C_runs_from_another_directory(repo, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    write(repo / "model.pkl", b"m")
    result = ok(elsewhere, "-C", str(repo), "commit-run", "-n", "via-C", "-m", "acc=1", "-a", "model.pkl")
    run_id = result.out.strip()
    assert [r["id"] for r in json.loads(ok(elsewhere, "-C", str(repo), "runs", "list", "--json").out)] == [run_id]
    assert "via-C" in ok(tmp_path, "-C", "repo", "runs", "list").out  # relative paths too
    assert show(repo, run_id)["artifacts"]["model.pkl"]["size"] == 1


def test_empty_repository_lists_nothing(repo):
    assert listing(repo) == []
    assert ok(repo, "runs", "list", "--active", "--json").out.strip() == "[]"
    assert ok(repo, "index", "rebuild").out == "0\n"
    assert runs_tip(repo) == ""


# -- gitml demo --------------------------------------------------------------------------------


def test_demo_creates_a_repository_with_four_runs_and_a_branch(tmp_path):
    target = tmp_path / "demo"
    result = ok(tmp_path, "demo", str(target))
    for name in ("baseline", "faster-lr", "api-run", "more-epochs", "accuracy"):
        assert name in result.out
    assert result.out.startswith(f"Created {target} with 4 runs")
    assert git(target, "rev-list", "--count", "refs/gitml/runs").strip() == "4"
    runs = listing(target)
    assert len(runs) == 4 and all(r["status"] == "FINISHED" for r in runs)
    diffed = ok(target, "diff", "main", "more-epochs")
    assert "epochs" in diffed.out and "more-epochs" in diffed.out
    assert all("accuracy" in r["metrics"] for r in runs)
    assert git(target, "status", "--porcelain") == ""
    fsck = subprocess.run(["git", "fsck", "--strict", "--no-progress"], cwd=target, capture_output=True, text=True)
    assert fsck.returncode == 0, fsck.stderr
    # the production model is a model the API run logged with log_model: it loads and predicts
    import pandas as pd

    import gitml as api

    prod = api.load_model("models:/toy-classifier@prod", repo=target)
    assert prod.metadata.run_id == next(r["id"] for r in runs if r["name"] == "api-run")
    assert prod.predict(pd.DataFrame({"x": [0.5, -0.7]})).tolist() == [1, 0]

    tip = runs_tip(target)
    again = gitml(tmp_path, "demo", str(target))
    assert again.code == 2 and len(again.err.strip().splitlines()) == 1 and again.out == ""
    assert runs_tip(target) == tip


# -- a killed training process -----------------------------------------------------------------


KILLED_SCRIPT = """\
import os, signal, sys
import gitml

run = gitml.start_run(name="doomed", experiment="crash", repo=sys.argv[1])
gitml.log_param("lr", 0.1)
for step in range(3):
    gitml.log_metric("loss", 1.0 / (step + 1), step=step)
gitml.log_metric("acc", 0.7)
print(run.id, flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_killed_process_is_listed_and_resumed_as_killed(repo, tmp_path):
    script = write(tmp_path / "train_and_die.py", KILLED_SCRIPT)
    proc = subprocess.run([sys.executable, str(script), str(repo)], capture_output=True, text=True)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    run_id = proc.stdout.strip()
    assert re.fullmatch(r"[0-9a-f]{32}", run_id)
    assert runs_tip(repo) == ""  # nothing committed yet

    (entry,) = json.loads(ok(repo, "runs", "list", "--active", "--json").out)
    assert entry["id"] == run_id and entry["alive"] is False and entry["name"] == "doomed"
    assert "doomed" in ok(repo, "runs", "list", "--active").out

    result = ok(repo, "commit-run", "--resume", run_id[:6], "--status", "KILLED")
    assert result.out == run_id + "\n"
    run = show(repo, run_id)
    assert (run["status"], run["name"], run["experiment"]) == ("KILLED", "doomed", "crash")
    assert run["params"] == {"lr": 0.1}
    assert run["metrics"] == {"loss": pytest.approx(1 / 3), "acc": 0.7}
    assert [p["value"] for p in run["history"] if p["key"] == "loss"] == pytest.approx([1.0, 0.5, 1 / 3])
    history = on_ref(repo, run_id, "history.tsv")
    assert len([line for line in history.splitlines() if line.startswith("loss\t")]) == 3

    assert json.loads(ok(repo, "runs", "list", "--active", "--json").out) == []
    assert active_dirs(repo) == []
    assert git(repo, "log", "-1", "--format=%s", "refs/gitml/runs").strip() == f"run {run_id}: doomed"
