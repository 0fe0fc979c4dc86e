"""Projects: the descriptor, `gitml run` (in place, at a revision, from another repository),
environments built for real (uv, and venv + pip), Ctrl-C, and `gitml reproduce`."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import pytest
from conftest import GITML, git, gitml, runs_tip

import gitml as api
from gitml.core.errors import BadInputError
from gitml.projects import env as envs
from gitml.projects.spec import build_command, entry_point, load_project, resolve_parameters

TRAIN = textwrap.dedent("""\
    import argparse, sys
    import gitml

    ap = argparse.ArgumentParser()
    ap.add_argument("--lr", type=float)
    ap.add_argument("--epochs", type=int)
    args = ap.parse_args()
    with gitml.start_run():                  # joins the run `gitml run` opened
        for epoch in range(args.epochs):
            gitml.log_metric("loss", 1.0 / (1 + epoch * args.lr), step=epoch)
    gitml.log_param("joined", "yes")          # no start_run: under gitml run it joins too
    print("trained", args.lr)
    print("a warning", file=sys.stderr)
""")
DESCRIPTOR = textwrap.dedent("""\
    project:
      name: demo
      entry_points:
        main:
          parameters:
            lr: {type: float, default: 0.1}
            epochs: int
          command: "python train.py --lr {lr} --epochs {epochs}"
        seeded:
          command: "python seeded.py"
""")
SEEDED = textwrap.dedent("""\
    import random, gitml
    gitml.log_metric("score", random.random())   # a seed it was never given
""")


@pytest.fixture
def project(repo: Path) -> Path:
    (repo / "train.py").write_text(TRAIN)
    (repo / "seeded.py").write_text(SEEDED)
    (repo / "gitml.yaml").write_text(DESCRIPTOR)
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "project")
    return repo


def _only_run(repo: Path) -> dict:
    runs = json.loads(gitml(repo, "runs", "list", "--json").out)
    return runs[0]


def test_run_in_place_records_entry_point_params_environment_and_output(project):
    result = gitml(project, "run", "-P", "epochs=3", "-P", "lr=0.5", "-n", "first")
    assert result.code == 0, result.err
    assert "trained 0.5" in result.out and "a warning" in result.err
    run = api.get_run(result.out.split()[-1], repo=project)
    assert run.status == "FINISHED" and run.name == "first" and run.entry_point == "main"
    assert run.params == {"lr": 0.5, "epochs": 3, "joined": "yes"}  # typed, and the child's own
    assert [round(p.value, 3) for p in run.history] == [1.0, 0.667, 0.5]
    assert run.project["parameters"] == {"lr": "0.5", "epochs": "3"} and run.project["exit_code"] == 0
    assert run.project["environment"] == {"manager": "local", "hash": "local"} and run.project["uri"] == "."
    assert run.project["version"] == git(project, "rev-parse", "HEAD").strip() and run.project["duration"] >= 0
    assert run.tags["mlflow.project.entryPoint"] == "main" and run.tags["mlflow.source.type"] == "PROJECT"
    assert run.command == "python train.py --lr 0.5 --epochs 3"
    out = gitml(project, "artifacts", "get", f"runs:/{run.id}/logs/stdout.txt", "-o", str(project / "o.txt"))
    assert out.code == 0 and (project / "o.txt").read_text() == "trained 0.5\n"
    found = api.search_runs("tags.mlflow.project.entryPoint = 'main'", repo=project)
    assert [r.id for r in found] == [run.id]
    git(project, "fsck", "--strict")


def test_a_failing_command_is_committed_failed_with_its_exit_code(project):
    (project / "fail.py").write_text("import sys\nprint('boom', file=sys.stderr)\nsys.exit(3)\n")
    result = gitml(project, "run", "-e", "fail.py")
    assert result.code == 1 and "boom" in result.err
    run = api.get_run(result.out.strip(), repo=project)
    assert run.status == "FAILED" and run.project["exit_code"] == 3 and run.entry_point == "fail.py"


@pytest.mark.parametrize("argv, words", [
    (["-P", "epochs=abc"], "parameter 'epochs' is an int, got 'abc'"),
    (["-P", "lr=fast", "-P", "epochs=1"], "parameter 'lr' is a float, got 'fast'"),
    ([], "needs parameter 'epochs' (int)"),
    (["-e", "nope"], "no entry point 'nope' in project 'demo' (it has: main, seeded)"),
    (["-P", "epochs"], "parameters are NAME=VALUE"),
    (["-P", "epochs=1", "--version", "no-such-rev"], "no revision 'no-such-rev'"),
    (["-P", "epochs=1", "--env-manager", "pixi"], "Invalid value for '--env-manager'"),
    (["/nowhere/at/all.git", "-P", "epochs=1"], "cannot clone"),
])
def test_bad_input_is_one_line_and_commits_nothing(project, argv, words):
    result = gitml(project, "run", *argv)
    assert result.code == 2 and words in result.err, result.err
    assert len(result.err.strip().splitlines()) == 1 and result.out == ""
    assert runs_tip(project) == "" and not list((project / ".git" / "gitml").glob("active/*"))


@pytest.mark.parametrize("descriptor, words", [
    ("project: [1, 2]\n", "project"),
    ("project:\n  entry_points:\n    main:\n      command: python x.py {nope}\n", "{nope}, which is not a parameter"),
    ("project:\n  entry_points:\n    main:\n      parameters: {a: {type: complex}}\n      command: x\n",
     "unknown type 'complex'"),
    ("project:\n  entry_points:\n    main:\n      parameters: {a: {type: int, default: 1.5}}\n      command: x\n",
     "default 1.5"),
    ("project:\n  environment: missing.txt\n", "'missing.txt' does not exist"),
    ("project: {entry_points: {main: {command: x}}\n", "invalid YAML"),
])
def test_a_bad_descriptor_is_named(project, descriptor, words):
    (project / "gitml.yaml").write_text(descriptor)
    result = gitml(project, "run")
    assert result.code == 2 and words in result.err, result.err
    assert runs_tip(project) == ""


MLPROJECT = textwrap.dedent("""\
    name: tutorial
    python_env: python_env.yaml
    entry_points:
      main:
        parameters:
          alpha: {type: float, default: 0.5}
          l1_ratio: {type: float, default: 0.1}
        command: "python train.py {alpha} {l1_ratio}"
      validate:
        parameters:
          data_file: path
        command: "python validate.py {data_file}"
""")


def test_an_mlflow_project_is_read_as_it_is(tmp_path):
    (tmp_path / "MLproject").write_text(MLPROJECT)
    (tmp_path / "python_env.yaml").write_text("python: '3.11'\nbuild_dependencies: [pip]\ndependencies: [six==1.16.0]\n")
    project = load_project(tmp_path)
    assert project.source == "MLproject" and project.name == "tutorial"
    assert (project.environment.kind, project.environment.file) == ("python_env", "python_env.yaml")
    main = entry_point(project, "main")
    values = resolve_parameters(main, {"alpha": "0.3"}, tmp_path)
    assert build_command(main, values) == "python train.py 0.3 0.1"
    validate = entry_point(project, "validate")
    values = resolve_parameters(validate, {"data_file": "data/x y.csv", "extra": "it's"}, tmp_path)
    assert build_command(validate, values) == f"python validate.py '{tmp_path}/data/x y.csv' --extra 'it'\"'\"'s'"
    spec = envs.env_spec(project, "virtualenv")
    assert spec.python == "3.11" and spec.requirements == ("pip", "six==1.16.0")
    (tmp_path / "MLproject").write_text(MLPROJECT.replace("python_env: python_env.yaml", "docker_env: {image: x}"))
    with pytest.raises(BadInputError, match="docker_env is not supported"):
        load_project(tmp_path)
    (tmp_path / "MLproject").write_text(MLPROJECT)
    (tmp_path / "gitml.yaml").write_text("project: {name: other}\n")
    with pytest.raises(BadInputError, match="both"):
        load_project(tmp_path)


def test_a_revision_runs_in_a_temporary_worktree_and_leaves_the_tree_alone(project):
    git(project, "tag", "v1")
    (project / "train.py").write_text("raise SystemExit('this version is broken')\n")
    git(project, "commit", "-qam", "break it")
    (project / "notes.txt").write_text("mine\n")  # an untracked file, and a dirty tracked one
    (project / "seeded.py").write_text("# edited\n")
    result = gitml(project, "run", "--version", "v1", "-P", "epochs=2")
    assert result.code == 0, result.err
    run = api.get_run(result.out.split()[-1], repo=project)
    assert run.source["commit"] == git(project, "rev-parse", "v1").strip() and not run.source.get("dirty")
    assert run.metrics["loss"] < 1 and run.patch is None
    assert (project / "notes.txt").read_text() == "mine\n" and (project / "seeded.py").read_text() == "# edited\n"
    assert "gitml-run-" not in git(project, "worktree", "list")


def test_another_repository_is_cloned_once_and_run_at_a_tag(project, tmp_path):
    bare = tmp_path / "shared.git"
    git(tmp_path, "clone", "-q", "--bare", str(project), str(bare))
    git(bare, "tag", "v2", "HEAD")
    here = tmp_path / "elsewhere"
    here.mkdir()
    git(here, "init", "-q")
    for _ in range(2):
        result = gitml(here, "run", str(bare), "--version", "v2", "-P", "epochs=1")
        assert result.code == 0, result.err
    runs = api.search_runs(repo=here)
    assert len(runs) == 2 and {r.project["uri"] for r in runs} == {str(bare)}
    assert runs[0].source["commit"] == git(bare, "rev-parse", "v2").strip()
    assert len(list((here / ".git" / "gitml" / "projects").iterdir())) == 1  # one cached clone
    bare.rename(tmp_path / "gone.git")  # offline, or the repository moved: the cached clone has the commit
    again = gitml(here, "reproduce", runs[0].id)
    assert again.code == 0, again.err
    moved = gitml(here, "run", str(bare), "--version", "v2", "-P", "epochs=1")  # a branch or tag needs the remote
    assert moved.code == 1 and "cannot fetch" in moved.err, moved.err


def test_a_project_in_a_subfolder_of_a_url_runs_with_mlflows_fragment(project, tmp_path):
    """MLflow's `URI#subdirectory`: the project is a folder of the repository the URI names."""
    sub = project / "examples" / "wine"
    sub.mkdir(parents=True)
    (sub / "MLproject").write_text(MLPROJECT.replace("python_env: python_env.yaml\n", ""))
    (sub / "train.py").write_text("import sys, gitml\ngitml.log_metric('a', float(sys.argv[1]))\n")
    git(project, "add", "examples")
    git(project, "commit", "-qm", "an example in a folder")
    bare = tmp_path / "shared.git"
    git(tmp_path, "clone", "-q", "--bare", str(project), str(bare))
    here = tmp_path / "elsewhere"
    here.mkdir()
    git(here, "init", "-q")
    result = gitml(here, "run", f"file://{bare}#examples/wine", "-P", "alpha=0.25")
    assert result.code == 0, result.err
    run = api.get_run(result.out.split()[-1], repo=here)
    assert run.metrics == {"a": 0.25} and run.project["uri"] == f"file://{bare}#examples/wine"
    assert gitml(here, "reproduce", run.id).code == 0  # the recorded URI finds the folder again
    inside = gitml(project, "run", ".#examples/wine", "-P", "alpha=0.5")  # this repository's folder
    assert inside.code == 0, inside.err
    for uri, words in [(f"file://{bare}#examples/nope", "no folder 'examples/nope'"),
                       (f"file://{bare}#../x", "bad subdirectory '../x'"), (".#nope", "no folder 'nope'")]:
        bad = gitml(here if "file" in uri else project, "run", uri)
        assert bad.code == 2 and words in bad.err, bad.err


def test_another_repository_on_this_machine_runs_as_it_is(project, tmp_path):
    """As `mlflow run ../other` does: the folder's files, uncommitted edits included, recorded
    as its commit and patch so that reproduce rebuilds them."""
    (project / "train.py").write_text(TRAIN.replace('"loss", 1.0 /', '"loss", 1000 + 1.0 /'))  # not committed
    here = tmp_path / "elsewhere"
    here.mkdir()
    git(here, "init", "-q")
    result = gitml(here, "run", str(project), "-P", "epochs=1")
    assert result.code == 0, result.err
    run = api.get_run(result.out.split()[-1], repo=here)
    assert run.project["uri"] == str(project) and run.source["commit"] == git(project, "rev-parse", "HEAD").strip()
    assert run.patch and "train.py" in run.patch  # the edit ran, and is recorded
    edited = run.metrics
    assert edited["loss"] > 1000
    git(project, "checkout", "--", "train.py")  # the edit is gone from the folder
    again = gitml(here, "reproduce", run.id)
    assert again.code == 0, again.err
    assert api.search_runs(f"tags.reproduces = '{run.id}'", repo=here)[0].metrics == edited


def _sleeper(project: Path) -> subprocess.Popen:
    (project / "slow.py").write_text("import time, gitml\ngitml.log_metric('started', 1)\n"
                                     "print('ready', flush=True)\ntime.sleep(60)\n")
    return subprocess.Popen([*GITML, "run", "-e", "slow.py"], cwd=project, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)


def test_ctrl_c_commits_the_run_killed_and_stops_the_command(project):
    proc = _sleeper(project)
    assert proc.stdout.readline().strip() == "ready"
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole group
    out, err = proc.communicate(timeout=60)
    assert proc.returncode != 0
    run = _only_run(project)
    assert run["status"] == "KILLED" and run["params"] == {} and "started" in json.dumps(run["metric_info"])
    assert subprocess.run(["pgrep", "-f", "slow.py"], capture_output=True).returncode == 1


def test_reproduce_matches_and_reports_what_does_not(project):
    made = gitml(project, "run", "-P", "epochs=3", "-P", "lr=0.25")
    original = made.out.split()[-1]
    same = gitml(project, "reproduce", original[:8])
    assert same.code == 0, same.err
    assert "loss" in same.out and "reproduced: run" in same.out and "a warning" in same.err  # its output, live
    copy = api.search_runs(f"tags.reproduces = '{original}'", repo=project)
    assert len(copy) == 1 and copy[0].params["lr"] == 0.25 and copy[0].name.startswith("reproduce-")
    seeded = gitml(project, "run", "-e", "seeded").out.split()[-1]
    differs = gitml(project, "reproduce", seeded, "--md")
    assert differs.code == 1 and "not reproduced: score differ" in differs.err and "| metric |" in differs.out


def test_reproduce_applies_the_recorded_patch(project):
    (project / "train.py").write_text(TRAIN.replace("1.0 / (1 + epoch * args.lr)", "2.0 / (1 + epoch * args.lr)"))
    made = gitml(project, "run", "-P", "epochs=2")  # from a dirty tree: the patch is recorded
    run = api.get_run(made.out.split()[-1], repo=project)
    assert run.source["dirty"] and run.patch and run.metrics["loss"] == pytest.approx(2 / 1.1)
    git(project, "checkout", "--", "train.py")  # the tree is clean again
    again = gitml(project, "reproduce", run.id)
    assert again.code == 0, again.err


def test_reproduce_refuses_a_run_without_an_entry_point(project):
    made = api.commit_run(metrics={"acc": 0.9}, repo=project)
    result = gitml(project, "reproduce", made.id)
    assert result.code == 2 and "records no entry point" in result.err and "commit-run" in result.err
    assert gitml(project, "reproduce", made.id, "--tolerance", "-1").code == 2


# -- environments, built for real -------------------------------------------------------------------


ENV_PROJECT = textwrap.dedent("""\
    project:
      name: envs
      environment: requirements.txt
      entry_points:
        main:
          command: "python -c 'import six, sys, gitml; gitml.log_param(\\"six\\", six.__version__); print(sys.prefix)'"
""")


@pytest.fixture(scope="module")
def env_repo(tmp_path_factory) -> Path:
    """One repository for the environment tests, so each environment is built once for them all."""
    path = tmp_path_factory.mktemp("envs") / "repo"
    path.mkdir()
    subprocess.run(["git", "init", "-q", str(path)], check=True)
    (path / "gitml.yaml").write_text(ENV_PROJECT)
    (path / "requirements.txt").write_text("six==1.16.0\n")
    for args in (["add", "."], ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "env"]):
        subprocess.run(["git", *args], cwd=path, check=True)
    return path


@pytest.mark.parametrize("manager", ["uv", "virtualenv"])
def test_an_environment_is_built_once_and_found_again(env_repo, manager):
    if manager == "uv" and not shutil.which("uv"):
        pytest.skip("uv is not installed")
    first = gitml(env_repo, "run", "--env-manager", manager)
    assert first.code == 0, first.err
    prefix = first.out.splitlines()[0]
    assert prefix.startswith(str(env_repo / ".git" / "gitml" / "envs")) and first.err == ""
    ready = Path(prefix) / envs.READY
    built = ready.stat().st_mtime_ns
    run = api.get_run(first.out.split()[-1], repo=env_repo)
    assert run.params["six"] == "1.16.0" and run.project["environment"]["manager"] == manager
    assert run.project["environment"]["hash"] == Path(prefix).name
    second = gitml(env_repo, "run", "--env-manager", manager)
    assert second.code == 0 and second.out.splitlines()[0] == prefix and ready.stat().st_mtime_ns == built


def test_parallel_runs_build_one_environment(env_repo):
    (env_repo / "requirements.txt").write_text("six==1.15.0\n")  # an environment nobody built yet
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "older six"], cwd=env_repo)
    procs = [subprocess.Popen([*GITML, "run"], cwd=env_repo, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(3)]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], outs
    assert len({out.splitlines()[0] for out, _ in outs}) == 1  # one environment, built once
    envs_dir = env_repo / ".git" / "gitml" / "envs"
    assert all((p / envs.READY).exists() for p in envs_dir.iterdir() if p.is_dir())  # nothing half-built


def test_option_lines_of_a_requirements_file_reach_the_installer(tmp_path):
    """`-e ./pkg` and `--extra-index-url URL` lines, as pip and MLflow take them."""
    repo = tmp_path / "repo"
    (repo / "pkg" / "localpkg").mkdir(parents=True)
    (repo / "pkg" / "localpkg" / "__init__.py").write_text("VALUE = 7\n")
    (repo / "pkg" / "pyproject.toml").write_text('[project]\nname = "localpkg"\nversion = "0.1"\n'
                                                 '[build-system]\nrequires = ["setuptools"]\n'
                                                 'build-backend = "setuptools.build_meta"\n')
    (repo / "requirements.txt").write_text("--extra-index-url https://pypi.org/simple\n-e ./pkg\nsix==1.16.0\n")
    (repo / "gitml.yaml").write_text(ENV_PROJECT.replace("import six, sys, gitml", "import six, sys, gitml, localpkg"))
    git(tmp_path, "init", "-q", str(repo))
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "a local package")
    result = gitml(repo, "run", "--env-manager", "virtualenv")
    assert result.code == 0, result.err


def test_a_requirement_that_cannot_be_installed_is_named(env_repo):
    (env_repo / "requirements.txt").write_text("six==1.16.0\nno-such-package-for-gitml-tests==9.9\n")
    tip = runs_tip(env_repo)
    result = gitml(env_repo, "run", "--env-manager", "virtualenv")
    assert result.code == 1 and "'no-such-package-for-gitml-tests==9.9' could not be installed" in result.err
    assert runs_tip(env_repo) == tip  # nothing was started, nothing committed
    assert not [p for p in (env_repo / ".git" / "gitml" / "envs").iterdir() if p.is_dir()
                and not (p / envs.READY).exists()]  # nothing half-built left
    git(env_repo, "checkout", "--", "requirements.txt")


# -- sweeps ---------------------------------------------------------------------------------------


def test_a_grid_sweep_runs_every_combination_under_a_parent(project):
    result = gitml(project, "run", "-P", "lr=0.1,0.5,1", "-P", "epochs=2,3", "--jobs", "2",
                   "--objective", "metrics.loss", "-n", "grid")
    assert result.code == 0, result.err
    parent = api.get_run(result.out.split()[-1], repo=project)
    sweep = parent.tags["sweep"]
    trials = api.search_runs(f"tags.sweep = '{sweep}' and tags.mlflow.parentRunId = '{parent.id}'", repo=project)
    assert sorted((r.params["lr"], r.params["epochs"]) for r in trials) == [
        (0.1, 2), (0.1, 3), (0.5, 2), (0.5, 3), (1.0, 2), (1.0, 3)]
    assert {r.name for r in trials} == {f"grid-{i}" for i in range(1, 7)} and all(r.status == "FINISHED" for r in trials)
    best = min(trials, key=lambda r: r.metrics["loss"])
    assert parent.tags["best_run_id"] == best.id and parent.metrics["loss"] == best.metrics["loss"]
    assert parent.params == {"lr": "0.1,0.5,1", "epochs": "2,3"} and parent.tags["sweep.trials"] == "6"
    assert f"best run {best.id[:8]}" in result.out and result.out.count("trial ") == 6
    tree = gitml(project, "runs", "list", "--tree", "--columns", "status")
    assert tree.out.count("├ grid-") + tree.out.count("└ grid-") == 6


def test_a_random_sweep_draws_from_ranges_with_its_seed(project):
    argv = ["run", "--sweep", "random", "--trials", "3", "-P", "lr=loguniform(1e-3,1)", "-P", "epochs=choice(1,2)",
            "--seed", "7"]
    first, second = gitml(project, *argv), gitml(project, *argv)
    assert first.code == second.code == 0, first.err

    def drawn(out: str) -> list:
        parent = out.split()[-1]
        runs = sorted(api.search_runs(f"tags.mlflow.parentRunId = '{parent}'", repo=project), key=lambda r: r.name)
        return [(r.params["lr"], r.params["epochs"]) for r in runs]

    values = drawn(first.out)
    assert values == drawn(second.out) and len(values) == 3  # the same seed, the same trials
    assert all(1e-3 <= lr <= 1 and epochs in (1, 2) for lr, epochs in values)


def test_a_failing_trial_is_failed_and_the_others_go_on(project):
    (project / "flaky.py").write_text("import sys, gitml\nn = int(sys.argv[1])\ngitml.log_metric('n', n)\n"
                                      "sys.exit(1 if n % 2 else 0)\n")
    (project / "gitml.yaml").write_text(DESCRIPTOR + "    flaky:\n      parameters: {n: int}\n"
                                                     "      command: python flaky.py {n}\n")
    git(project, "commit", "-qam", "flaky")
    result = gitml(project, "run", "-e", "flaky", "-P", "n=1,2,3,4,5", "--objective", "metrics.n", "--direction", "max")
    # three failed: exit 1 (an operation failed), never 3 (an internal error), and the count said
    assert result.code == 1 and result.err.strip().splitlines()[-1].startswith(
        "gitml: error: 3 of 5 trials failed (sweep "), result.err
    parent = api.get_run(result.out.split()[-1], repo=project)
    runs = api.search_runs(f"tags.sweep = '{parent.tags['sweep']}' and tags.mlflow.parentRunId = '{parent.id}'",
                           repo=project)
    assert sorted((r.params["n"], r.status) for r in runs) == [
        (1, "FAILED"), (2, "FINISHED"), (3, "FAILED"), (4, "FINISHED"), (5, "FAILED")]
    assert parent.status == "FINISHED" and parent.metrics["n"] == 4  # the best finished trial
    assert parent.tags["sweep.failed"] == "3" and parent.tags["sweep.finished"] == "2"
    assert parent.tags["sweep.backend"] == "local" and parent.tags["sweep.jobs"] == "1"
    typo = gitml(project, "run", "-e", "flaky", "-P", "n=2,4", "--objective", "metrics.nn")
    assert typo.code == 0 and "no finished trial logged metrics.nn" in typo.err, typo.err


def test_ctrl_c_stops_a_sweep_and_commits_the_running_trials_killed(project):
    (project / "slow.py").write_text("import sys, time, gitml\ngitml.log_param('i', sys.argv[2])\n"
                                     "print('ready', flush=True)\ntime.sleep(60)\n")
    proc = subprocess.Popen([*GITML, "run", "-e", "slow.py", "-P", "i=1,2,3,4,5,6", "--jobs", "2"], cwd=project,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.time() + 60
    while len(list((project / ".git" / "gitml" / "active").glob("*"))) < 3 and time.time() < deadline:
        time.sleep(0.1)  # the parent and two trials in progress
    time.sleep(1)
    os.killpg(proc.pid, signal.SIGINT)
    proc.communicate(timeout=90)
    assert proc.returncode != 0
    runs = api.search_runs(repo=project)
    parent = next(r for r in runs if "sweep.kind" in r.tags)
    trials = [r for r in runs if r.tags.get("mlflow.parentRunId") == parent.id]
    assert parent.status == "KILLED" and len(trials) == 2 and {r.status for r in trials} == {"KILLED"}
    assert parent.tags["sweep.killed"] == "2" and parent.tags["sweep.not_started"] == "4"  # counted as they ended
    assert not list((project / ".git" / "gitml" / "active").glob("*"))  # nothing left in progress


@pytest.mark.parametrize("argv, words", [
    (["-P", "lr=0.1,abc", "-P", "epochs=1"], "parameter 'lr' is a float, got 'abc'"),
    (["-P", "lr=uniform(0,1)", "-P", "epochs=1"], "a range needs --sweep random"),
    (["--sweep", "random", "-P", "lr=uniform(0,1)", "-P", "epochs=1"], "needs --trials"),
    (["--sweep", "random", "--trials", "2", "-P", "lr=loguniform(0,1)", "-P", "epochs=1"], "low > 0"),
    (["--sweep", "random", "--trials", "2", "-P", "lr=uniform(2,1)", "-P", "epochs=1"], "low <= high"),
    (["--trials", "3", "-P", "epochs=1"], "go with a sweep"),
    (["-P", "epochs=1,2", "--objective", "loss"], "expected metrics.NAME"),
    (["-P", "epochs=1,2", "--jobs", "0"], "Invalid value for '--jobs'"),
])
def test_bad_sweeps_are_refused_before_any_trial(project, argv, words):
    result = gitml(project, "run", *argv)
    assert result.code == 2 and words in result.err, result.err
    assert runs_tip(project) == ""


# -- sweeps on a real Dask cluster ------------------------------------------------------------------


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory):
    """A Dask scheduler and two worker processes on 127.0.0.1 (one thread each)."""
    pytest.importorskip("distributed")
    port = _free_port()
    logs = tmp_path_factory.mktemp("dask")
    address = f"tcp://127.0.0.1:{port}"
    dask = shutil.which("dask") or pytest.skip("no dask command")
    procs = [subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                              stdout=open(logs / "scheduler.log", "w"), stderr=subprocess.STDOUT)]
    from distributed import Client

    for name in ("w1", "w2"):
        procs.append(subprocess.Popen([dask, "worker", address, "--nthreads", "1", "--no-dashboard", "--name", name,
                                       "--nworkers", "1"], stdout=open(logs / f"{name}.log", "w"),
                                      stderr=subprocess.STDOUT))
    client = Client(address, timeout="30s")
    client.wait_for_workers(2, timeout=60)
    client.close()
    yield address, procs
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_a_sweep_runs_on_a_dask_cluster_and_the_driver_commits_the_runs(project, dask_cluster, tmp_path):
    address, _ = dask_cluster
    store_dir = tmp_path / "team-store"
    (project / "gitml.yaml").write_text(DESCRIPTOR + f"remotes:\n  team: {store_dir}\ndefault_remote: team\n")
    git(project, "commit", "-qam", "a team store")
    result = gitml(project, "run", "-P", "lr=0.1,0.5", "-P", "epochs=2,3", "--backend", "dask",
                   "--scheduler", address, "--objective", "metrics.loss", "-n", "dk")
    assert result.code == 0, result.err
    parent = api.get_run(result.out.split()[-1], repo=project)
    trials = api.search_runs(f"tags.mlflow.parentRunId = '{parent.id}'", repo=project)
    assert parent.name == "dk" and sorted(r.name for r in trials) == ["dk-1", "dk-2", "dk-3", "dk-4"]
    assert sorted((r.params["lr"], r.params["epochs"]) for r in trials) == [(0.1, 2), (0.1, 3), (0.5, 2), (0.5, 3)]
    assert all(r.status == "FINISHED" and r.source["commit"] == git(project, "rev-parse", "HEAD").strip()
               for r in trials)
    assert parent.tags["best_run_id"] == min(trials, key=lambda r: r.metrics["loss"]).id
    assert parent.tags["sweep.backend"] == "dask" and parent.tags["sweep.workers"] == "2"
    assert "sweep.jobs" not in parent.tags  # no local threads ran them
    logs = trials[0].artifacts["logs/stdout.txt"]["sha256"]
    assert (store_dir / "sha256" / logs[:2] / logs[2:]).is_file()  # pushed by the worker
    out = gitml(project, "artifacts", "get", f"runs:/{trials[0].id}/logs/stdout.txt", "-o", str(tmp_path / "o"))
    assert out.code == 0 and (tmp_path / "o").read_text().startswith("trained")  # and in the driver's cache
    assert not (project / ".git" / "gitml" / "active").exists() or not list((project / ".git" / "gitml" / "active").iterdir())
    git(project, "fsck", "--strict")


def test_a_trial_whose_worker_dies_is_retried_elsewhere(project, dask_cluster):
    address, procs = dask_cluster
    (project / "slow.py").write_text("import sys, time, gitml\ngitml.log_param('i', sys.argv[2])\ntime.sleep(4)\n")
    git(project, "add", "slow.py")
    git(project, "commit", "-qm", "slow")
    run = subprocess.Popen([*GITML, "run", "-e", "slow.py", "-P", "i=1", "--backend", "dask", "--scheduler", address],
                           cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(2.5)  # the trial is running on one of the two workers: kill that one
    busy = [p for p in procs[1:] if p.poll() is None]
    from distributed import Client

    with Client(address) as client:
        processing = client.processing()
        names = {w: info["name"] for w, info in client.scheduler_info()["workers"].items()}
    busy_names = {names[w] for w, tasks in processing.items() if tasks}
    victim = next((p for p in busy if p.args[p.args.index("--name") + 1] in busy_names), None)
    assert victim is not None, "the trial should be running on a worker by now"
    victim.kill()
    out, err = run.communicate(timeout=180)
    assert run.returncode == 0, (out, err)
    trials = api.search_runs(f"tags.mlflow.parentRunId = '{out.split()[-1]}'", repo=project)
    assert [(r.params["i"], r.status) for r in trials] == [("1", "FINISHED")]  # finished on the other worker


def test_a_backslash_keeps_a_comma_in_single_runs_as_in_sweeps(project):
    from gitml.projects.sweep import split_values

    assert split_values(r"a\,b,c") == ["a,b", "c"]
    assert split_values(r"C:\data,x") == ["C:\\data", "x"]  # other backslashes are kept
    assert split_values(r"^\d+$") == [r"^\d+$"]
    (project / "echo.py").write_text("import sys, gitml\ngitml.set_tag('argv', ' '.join(sys.argv[1:]))\n")
    git(project, "add", "echo.py")
    git(project, "commit", "-qm", "echo")
    result = gitml(project, "run", "-e", "echo.py", "-P", r"note=a\,b", "-P", r"path=C:\data")
    assert result.code == 0, result.err
    run = api.get_run(result.out.split()[-1], repo=project)
    assert run.params == {"note": "a,b", "path": "C:\\data"}
    assert run.tags["argv"] == "--note a,b --path C:\\data"


def test_a_script_that_asks_for_another_experiment_is_refused(project):
    (project / "exp.py").write_text("import gitml\ngitml.start_run(experiment='other')\n")
    git(project, "add", "exp.py")
    git(project, "commit", "-qm", "exp")
    result = gitml(project, "run", "-e", "exp.py")
    assert result.code == 1 and "of experiment 'default', not 'other'" in result.err, result.err


def test_a_script_cannot_log_another_value_for_a_param_it_was_given(project):
    (project / "p.py").write_text("import sys, gitml\ngitml.log_param('lr', float(sys.argv[2]))\n"
                                  "gitml.log_param('extra', 1)\ngitml.log_param(sys.argv[3][2:], 'other')\n")
    git(project, "add", "p.py")
    git(project, "commit", "-qm", "p")
    same = gitml(project, "run", "-e", "p.py", "-P", "lr=0.50", "-P", "mode=x")  # 0.5 again: the same value
    assert same.code == 1 and "param 'mode' was given to `gitml run` as 'x'; the script logs 'other'" in same.err
    run = api.get_run(same.out.split()[-1], repo=project)
    assert run.status == "FAILED" and run.params == {"lr": 0.5, "mode": "x", "extra": 1}


def test_an_untracked_script_is_named_but_untracked_outputs_are_not(project):
    (project / "output.csv").write_text("a,b\n")  # an output lying around: not the run's code
    (project / "data").mkdir()
    (project / "data" / "x.bin").write_bytes(b"\0")
    quiet = gitml(project, "run", "-P", "epochs=1")
    assert quiet.code == 0 and "gitml: warning" not in quiet.err, quiet.err  # (train.py writes to stderr)
    (project / "new.py").write_text("print('hi')\n")
    loud = gitml(project, "run", "-e", "new.py")
    assert loud.code == 0
    assert loud.err.splitlines() == ["gitml: warning: new.py: not tracked by git, so not part of the run's record "
                                     "and not there for `gitml reproduce`; `git add` it"], loud.err


def test_parameter_values_an_mlflow_user_gives(tmp_path):
    (tmp_path / "MLproject").write_text(textwrap.dedent("""\
        name: t
        entry_points:
          main:
            parameters:
              a: {type: double, default: 0.5}
              n: {type: integer, default: 2}
              flag: {type: bool, default: true}
              model: {type: uri, default: "runs:/abc/model"}
              data: {type: path, default: data/train.csv}
            command: "python x.py"
    """))
    point = entry_point(load_project(tmp_path), "main")
    assert [point.parameters[k].type for k in ("a", "n", "flag")] == ["float", "int", "str"]
    elsewhere = tmp_path / "elsewhere"
    values = resolve_parameters(point, {"a": "1e-3"}, cwd=elsewhere, root=tmp_path)
    assert values["model"] == "runs:/abc/model" and values["flag"] == "true"
    assert values["data"] == str(tmp_path / "data" / "train.csv")  # a default: the project's file
    given = resolve_parameters(point, {"data": "mine.csv", "model": "models:/m@prod"}, cwd=elsewhere, root=tmp_path)
    assert given["data"] == str(elsewhere / "mine.csv") and given["model"] == "models:/m@prod"
    for bad in ("1e999", "-inf", "nan"):
        with pytest.raises(BadInputError, match="is a float"):
            resolve_parameters(point, {"a": bad}, cwd=elsewhere)


def test_a_lost_scheduler_fails_the_running_trials_with_one_line(project, tmp_path):
    """The scheduler dies mid-sweep: the trials it took are committed FAILED with the reason, the
    finished ones stay, and the sweep ends with one line and exit 1, not distributed's tracebacks."""
    pytest.importorskip("distributed")
    dask = shutil.which("dask") or pytest.skip("no dask command")
    port = _free_port()
    address = f"tcp://127.0.0.1:{port}"
    scheduler = subprocess.Popen([dask, "scheduler", "--host", "127.0.0.1", "--port", str(port), "--no-dashboard"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    worker = subprocess.Popen([dask, "worker", address, "--nthreads", "1", "--no-dashboard", "--nworkers", "1"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        from distributed import Client

        with Client(address, timeout="30s") as client:
            client.wait_for_workers(1, timeout=60)
        (project / "slow.py").write_text("import sys, time\ntime.sleep(float(sys.argv[2]))\n")
        git(project, "add", "slow.py")
        git(project, "commit", "-qm", "slow")
        run = subprocess.Popen([*GITML, "run", "-e", "slow.py", "-P", "s=0,30", "--backend", "dask",
                                "--scheduler", address], cwd=project, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
        deadline = time.monotonic() + 60
        while not api.search_runs("attributes.status = 'FINISHED' and params.s = '0'", repo=project):
            assert time.monotonic() < deadline and run.poll() is None, "the short trial should finish"
            time.sleep(0.5)
        time.sleep(1)
        scheduler.kill()
        out, err = run.communicate(timeout=120)
    finally:
        for proc in (scheduler, worker):
            proc.kill()
            proc.wait()
    assert run.returncode == 1, (out, err)
    assert err.strip().splitlines() == [err.strip().splitlines()[-1]] and "1 of 2 trials failed" in err, err
    trials = {r.params["s"]: r for r in api.search_runs(f"tags.mlflow.parentRunId = '{out.split()[-1]}'",
                                                         repo=project)}
    assert trials["0"].status == "FINISHED" and trials["30"].status == "FAILED"
    assert "scheduler" in trials["30"].description


def test_a_killed_run_leaves_a_worktree_the_next_run_removes(project):
    """A `gitml run --version` killed with SIGKILL cannot remove its worktree; the next one does
    (a Dask worker that dies leaves the same on its machine)."""
    (project / "slow.py").write_text("import time\ntime.sleep(60)\n")
    git(project, "add", "slow.py")
    git(project, "commit", "-qm", "slow")

    def worktrees() -> list[str]:
        return [line for line in git(project, "worktree", "list", "--porcelain").splitlines()
                if line.startswith("worktree ") and "gitml-run-" in line]

    run = subprocess.Popen([*GITML, "run", "-e", "slow.py", "--version", "HEAD"], cwd=project,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 60
    while not worktrees() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert worktrees(), "the run should have made its worktree"
    os.killpg(run.pid, signal.SIGKILL)  # no handler runs: the worktree stays behind
    run.wait()
    stale = worktrees()
    assert len(stale) == 1
    again = gitml(project, "run", "-P", "epochs=1")  # any run, even one in the work tree
    assert again.code == 0, again.err
    assert worktrees() == [] and not Path(stale[0].split(" ", 1)[1]).exists()


def test_dask_bad_input(project):
    for argv, words in [(["--backend", "dask", "-P", "epochs=1,2"], "goes with --scheduler"),
                        (["--scheduler", "tcp://127.0.0.1:1", "-P", "epochs=1"], "--scheduler go with a sweep")]:
        result = gitml(project, "run", *argv)
        assert result.code == 2 and words in result.err, result.err


def test_an_untracked_entry_point_is_refused_before_a_dask_sweep_starts(project):
    (project / "new.py").write_text("print(1)\n")  # the workers get commits: they would not have it
    result = gitml(project, "run", "-e", "new.py", "-P", "t=1,2", "--backend", "dask", "--scheduler",
                   "tcp://127.0.0.1:1")
    # refused before the scheduler is even asked (an unreachable one here)
    assert result.code == 2 and "new.py: not tracked by git" in result.err and "Dask workers" in result.err, result.err
    assert runs_tip(project) == ""


def test_a_scheduler_address_that_is_another_service_is_one_line(project):
    """An SSH-like service that speaks first: distributed reads its banner as a frame length."""
    pytest.importorskip("distributed")
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()

    def serve() -> None:
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            conn.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")

    threading.Thread(target=serve, daemon=True).start()
    try:
        result = gitml(project, "run", "-P", "epochs=1,2", "--backend", "dask", "--scheduler",
                       f"tcp://127.0.0.1:{server.getsockname()[1]}")
    finally:
        server.close()
    assert result.code == 1 and result.err.startswith("gitml: error: cannot reach the Dask scheduler"), result.err
    assert len(result.err.strip().splitlines()) == 1 and runs_tip(project) == ""  # nothing started


def test_an_mlflow_example_project_runs_unchanged(tmp_path):
    """The layout of MLflow's tutorial projects: MLproject, python_env.yaml, a train.py."""
    if not shutil.which("uv"):
        pytest.skip("uv is not installed")
    repo = tmp_path / "wine"
    repo.mkdir()
    git(repo, "init", "-q")
    (repo / "MLproject").write_text(MLPROJECT)
    (repo / "python_env.yaml").write_text("python: '3.11'\nbuild_dependencies:\n  - pip\ndependencies:\n"
                                          "  - six==1.16.0\n")
    (repo / "train.py").write_text("import sys, six, gitml\nalpha, l1 = map(float, sys.argv[1:3])\n"
                                   "gitml.log_metric('rmse', round(alpha * 2 + l1, 6))\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "an MLflow project")
    result = gitml(repo, "run", "-P", "alpha=0.3", "--env-manager", "uv")
    assert result.code == 0, result.err
    run = api.get_run(result.out.split()[-1], repo=repo)
    assert run.metrics == {"rmse": 0.7} and run.params == {"alpha": 0.3, "l1_ratio": 0.1}
    assert run.project["name"] == "tutorial" and run.project["environment"]["manager"] == "uv"
    again = gitml(repo, "reproduce", run.id)
    assert again.code == 0, again.err


def test_a_project_in_a_folder_of_the_repository_runs_and_reproduces(repo):
    folder = repo / "examples" / "wine"
    folder.mkdir(parents=True)
    (folder / "MLproject").write_text("name: wine\nentry_points:\n  main:\n    parameters:\n"
                                      "      alpha: {type: float, default: 0.5}\n    command: python train.py {alpha}\n")
    (folder / "train.py").write_text("import sys, gitml\ngitml.log_metric('a', float(sys.argv[1]))\n")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "a project in a folder")
    made = gitml(repo, "run", "examples/wine", "-P", "alpha=0.3")
    assert made.code == 0, made.err
    run = api.get_run(made.out.split()[-1], repo=repo)
    assert run.project["uri"] == "examples/wine" and run.metrics == {"a": 0.3} and not run.source.get("remote")
    assert gitml(repo, "reproduce", run.id).code == 0
    inside = subprocess.run([*GITML, "run", ".", "-P", "alpha=0.2"], cwd=folder, capture_output=True, text=True)
    assert inside.returncode == 0, inside.stderr  # `.` is the folder it is run from, as in MLflow
    git(repo, "mv", "examples/wine", "examples/wine2")  # the folder moves on: the run's commit still has it
    git(repo, "commit", "-qm", "moved")
    again = gitml(repo, "reproduce", run.id)
    assert again.code == 0, again.err


@pytest.mark.parametrize("command", ["echo {x!r}", "echo {x:.3}", "echo {x[0]}"])
def test_a_placeholder_that_would_undo_the_quoting_is_refused(project, command):
    (project / "gitml.yaml").write_text(f"project:\n  entry_points:\n    main:\n      parameters: {{x: str}}\n"
                                        f"      command: \"{command}\"\n")
    result = gitml(project, "run", "-P", "x=$(touch pwned)")
    assert result.code == 2 and "is not a plain {name}" in result.err, result.err
    assert not (project / "pwned").exists() and runs_tip(project) == ""


@pytest.mark.parametrize("content, words", [(b"six\n-r missing.txt\n", "'missing.txt' does not exist"),
                                            (b"six\n\xff\n", "not UTF-8")])
def test_a_requirements_file_that_cannot_be_read_is_one_line(project, content, words):
    (project / "requirements.txt").write_bytes(content)
    (project / "gitml.yaml").write_text(DESCRIPTOR.replace("  name: demo\n", "  name: demo\n  environment: requirements.txt\n"))
    result = gitml(project, "run", "-P", "epochs=1", "--env-manager", "virtualenv")
    assert result.code == 2 and words in result.err and "internal error" not in result.err, result.err


def test_sigterm_commits_the_run_killed(project):
    proc = _sleeper(project)
    assert proc.stdout.readline().strip() == "ready"
    proc.terminate()  # SIGTERM to gitml run alone, as CI cancelling a job does
    proc.communicate(timeout=60)
    assert _only_run(project)["status"] == "KILLED"
    assert not list((project / ".git" / "gitml" / "active").glob("*"))


@pytest.mark.parametrize("command", ["python slow.py; echo after", "cd . && python slow.py", "python slow.py | cat"])
def test_sigterm_stops_every_process_of_a_compound_command(project, command):
    """bash runs `a; b`, `cd x && a` and `a | b` with a child of its own: the stop must reach it."""
    (project / "slow.py").write_text("import os, time\nopen('pid', 'w').write(str(os.getpid()))\n"
                                     "print('ready', flush=True)\ntime.sleep(120)\n")
    (project / "gitml.yaml").write_text(DESCRIPTOR + f"    long:\n      command: \"{command}\"\n")
    git(project, "add", ".")
    git(project, "commit", "-qm", "long")
    proc = subprocess.Popen([*GITML, "run", "-e", "long"], cwd=project, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not (project / "pid").exists() or not (project / "pid").read_text():
        assert time.monotonic() < deadline and proc.poll() is None, "the command should have started"
        time.sleep(0.1)
    started = time.monotonic()
    proc.terminate()
    proc.communicate(timeout=60)
    assert proc.returncode == 130 and time.monotonic() - started < 8  # the first signal did it
    pid = int((project / "pid").read_text())
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # no orphan left running
    assert _only_run(project)["status"] == "KILLED"


def test_python_env_details_an_mlflow_user_writes(tmp_path):
    (tmp_path / "MLproject").write_text("name: t\nconda_env: conda.yaml\nentry_points:\n  main: python x.py\n")
    (tmp_path / "conda.yaml").write_text("name: t\ndependencies: [python=3.11]\n")
    if not shutil.which("conda"):
        with pytest.raises(BadInputError, match="conda is not installed"):  # conda_env asks for conda
            envs.env_spec(load_project(tmp_path))
    (tmp_path / "MLproject").write_text("name: t\npython_env: python_env.yaml\nentry_points:\n  main: python x.py\n")
    (tmp_path / "python_env.yaml").write_text("python: 3.10\n")
    with pytest.raises(BadInputError, match="quote it"):
        envs.env_spec(load_project(tmp_path), "virtualenv")
