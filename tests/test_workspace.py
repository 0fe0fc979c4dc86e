"""The Workspace seam (issue 10): one open per call, typed questions, one write loop, layers."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest
from conftest import git, gitml

import gitml as api
from gitml import errors
from gitml.core import cas, runsref
from gitml.core.gitrepo import GitRepo
from gitml.core.workspace import ArtifactURI, Workspace, open_workspace

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture
def two_runs(repo):
    (repo / ".gitignore").write_text("model.pkl\nweights/\n")
    (repo / "model.pkl").write_bytes(b"model bytes")
    (repo / "weights").mkdir()
    (repo / "weights" / "a.bin").write_bytes(b"a")
    first = api.commit_run(name="one", metrics={"acc": 0.5}, repo=repo)
    second = api.commit_run(name="two", metrics={"acc": 0.9}, artifacts=[repo / "model.pkl"], repo=repo)
    return repo, first, second


def test_open_workspace_closes_only_what_it_opened(repo):
    with GitRepo(repo) as opened:
        with open_workspace(opened) as ws:
            assert ws.repo is opened
        assert opened.head()[0] is not None  # still open: the workspace did not own it
        outer = Workspace(opened)
        with open_workspace(outer) as inner:
            assert inner is outer
    with open_workspace(repo / "train.py") as ws:  # any path inside the repository
        assert ws.root == repo


def test_not_a_repository_is_bad_input(tmp_path):
    with pytest.raises(errors.NotARepositoryError):
        with open_workspace(tmp_path):
            pass


def test_resolve_run_and_runs_at(two_runs):
    repo, first, second = two_runs
    with open_workspace(repo) as ws:
        assert ws.resolve_run(second.id) == second.id
        assert ws.resolve_run(second.id[:7].upper()) == second.id
        with pytest.raises(errors.RunNotFoundError, match="no run matches 'ffffff'"):
            ws.resolve_run("ffffff" if not second.id.startswith("ffffff") else "000000")
        with pytest.raises(errors.BadInputError):
            ws.resolve_run("not-hex!")
        head = git(repo, "rev-parse", "HEAD").strip()
        assert [r.id for r in ws.runs_at([head])] == [second.id, first.id]
        assert ws.runs_at(["0" * 40]) == []
        assert [r.id for r in ws.runs_at(head, status=None)] == [second.id, first.id]
        for bad in (["HEAD"], [head[:7]], [head.upper()], [None]):
            with pytest.raises(errors.BadInputError, match="not a full commit sha"):
                ws.runs_at(bad)
        with pytest.raises(errors.BadInputError, match="unknown run status"):
            ws.runs_at([head], status="bogus")
        for bad in (None, 123):
            with pytest.raises(errors.BadInputError, match="a run id must be text"):
                ws.resolve_run(bad)


def test_the_index_follows_writes_made_through_the_same_workspace(two_runs):
    repo, _, _ = two_runs
    with open_workspace(repo) as ws:
        assert ws.index.count() == 2
        third = api.commit_run(name="three", metrics={"acc": 0.1}, repo=ws)
        assert ws.index.count() == 3
        assert ws.resolve_run(third.id[:8]) == third.id


def test_resolve_uri_runs_and_models(two_runs):
    repo, _, second = two_runs
    api.register_model("churn", second.id, repo=repo)
    api.registry.assign("churn", "v0.0.1", "prod", repo=repo)
    with open_workspace(repo) as ws:
        expected = ArtifactURI(second.id, "model.pkl", "churn", "v0.0.1")
        for uri in ("models:/churn@prod", "models:/churn/v0.0.1", "models:/churn@latest", "models:/churn"):
            assert ws.resolve_uri(uri) == expected, uri
        assert ws.resolve_uri(f"runs:/{second.id[:6]}/model.pkl") == ArtifactURI(second.id, "model.pkl")
    # A nested model name in the bare form is that model's latest, even beside a model "nlp".
    api.register_model("nlp", second.id, repo=repo)
    api.register_model("nlp/sentiment", second.id, repo=repo)
    api.register_model("nlp/sentiment", second.id, repo=repo)
    api.registry.assign("nlp", "v0.0.1", "sentiment", repo=repo)
    with open_workspace(repo) as ws:
        assert ws.resolve_uri("models:/nlp/sentiment").model == "nlp/sentiment"
        assert ws.resolve_uri("models:/nlp/sentiment").version == "v0.0.2"
        assert ws.resolve_uri("models:/nlp/sentiment/v0.0.1").version == "v0.0.1"
        assert ws.resolve_uri("models:/nlp@sentiment").model == "nlp"
        assert ws.resolve_uri("models:/churn/prod").version == "v0.0.1"  # MLflow's stage path form
        assert ws.resolve_uri(f"runs:/{second.id}") == ArtifactURI(second.id, "")
        refused = [("s3://bucket/x", errors.BadInputError, "unsupported artifact URI"),
                   (f"runs:/{second.id}/../../etc/passwd", errors.BadInputError, "etc/passwd"),
                   ("models:/nosuch@prod", errors.BadInputError, "no model 'nosuch'"),
                   ("models:/churn@staging", errors.GitmlError, "no version of churn is in stage 'staging'"),
                   ("models:/churn/v9.9.9", errors.BadInputError, "no registered version")]
        for uri, kind, message in refused:
            with pytest.raises(kind, match=message):
                ws.resolve_uri(uri)


def test_referenced_objects_names_bad_runs_without_hiding_the_others(two_runs):
    repo, first, second = two_runs
    with open_workspace(repo) as ws:
        found = ws.referenced_objects()
        assert [(r.run_id, r.path, r.size) for r in found.refs] == [(second.id, "model.pkl", 11)]
        assert found.refused == {}
        assert ws.referenced_objects([first.id]).refs == []
        assert [r.path for r in ws.referenced_objects(second.id).refs] == ["model.pkl"]  # one id as text
        assert ws.referenced_objects(tip=ws.runs_tip).refs == found.refs
        for tip in ("0" * 40, "HEAD", "nonsense"):
            with pytest.raises(errors.BadInputError, match="not a commit in this repository"):
                ws.referenced_objects(tip=tip)


def test_one_open_of_the_repository_per_call(two_runs, monkeypatch):
    """Resolving models:/ used to open the repository three times; given a workspace, none."""
    repo, _, second = two_runs
    api.register_model("churn", second.id, repo=repo)
    opened = []
    original = GitRepo.__init__

    def counting(self, *args, **kwargs):
        opened.append(args)
        original(self, *args, **kwargs)

    monkeypatch.setattr(GitRepo, "__init__", counting)
    with open_workspace(repo) as ws:
        assert len(opened) == 1
        api.artifacts.download("models:/churn@latest", repo / "out.pkl", repo=ws)
        api.registry.which("churn", repo=ws)
        api.search_runs(repo=ws)
    assert len(opened) == 1
    assert (repo / "out.pkl").read_bytes() == b"model bytes"


def test_attempts_is_bounded_and_jittered(monkeypatch):
    slept = []
    monkeypatch.setattr(cas.time, "sleep", slept.append)
    with pytest.raises(errors.ConcurrencyError, match="could not update x after 5 attempts") as lost:
        for _ in cas.attempts("update x", limit=5):
            pass
    assert lost.value.exit_code == 1
    assert len(slept) == 5
    assert all(0 <= pause <= cas.backoff(i) for i, pause in enumerate(slept))
    assert cas.backoff(1000) == cas.MAX_BACKOFF
    taken = []
    for attempt in cas.attempts("win at once"):
        taken.append(attempt)
        break
    assert taken == [0]


def test_move_ref_compares_and_swaps_under_concurrent_writers(two_runs):
    """Threads moving one ref through the loop: every move lands, the ref ends at one of them."""
    repo, first, second = two_runs
    tips = [git(repo, "rev-parse", runsref.RUNS_REF).strip(), git(repo, "rev-parse", "HEAD").strip()]
    name = runsref.tracking_ref("origin")
    failures = []

    def mover(sha: str) -> None:
        try:
            with GitRepo(repo) as opened:
                for _ in range(20):
                    opened.move_ref(name, sha)
        except Exception as exc:  # noqa: BLE001 - reported below
            failures.append(exc)

    threads = [threading.Thread(target=mover, args=(sha,)) for sha in tips * 2]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    assert git(repo, "rev-parse", name).strip() in tips
    git(repo, "fsck", "--strict")
    with GitRepo(repo) as opened:
        assert opened.move_ref(name, None) and opened.ref(name) is None
        # forward only: a ref already past the new commit stays (a fetch that landed first).
        older = git(repo, "rev-parse", f"{runsref.RUNS_REF}~1").strip()
        assert opened.move_ref(name, tips[0], forward_only=True)
        assert not opened.move_ref(name, older, forward_only=True)
        assert opened.ref(name) == tips[0]
        assert opened.move_ref(name, older) and opened.ref(name) == older
        assert opened.move_ref(name, tips[0], forward_only=True) and opened.ref(name) == tips[0]


def test_dash_C_reads_relative_paths_from_there_without_changing_directory(two_runs, tmp_path):
    repo, _, second = two_runs
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (repo / "params.yaml").write_text("lr: 0.5\n")
    made = gitml(elsewhere, "-C", str(repo), "commit-run", "-n", "from-afar", "--params", "params.yaml")
    assert made.code == 0, made.err
    shown = gitml(elsewhere, "-C", str(repo), "runs", "show", made.out.strip(), "--json")
    assert shown.code == 0, shown.err
    assert '"lr": 0.5' in shown.out
    assert not (elsewhere / ".git").exists()


def test_import_layers_hold():
    """DESIGN.md §6, as pyproject.toml's import-linter contract writes it down."""
    command = Path(sys.executable).with_name("lint-imports")
    proc = subprocess.run([str(command), "--no-cache"], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert "1 kept, 0 broken" in proc.stdout


def test_dash_C_is_read_as_git_reads_it(repo, tmp_path):
    (repo / "sub" / "deep").mkdir(parents=True)
    link = tmp_path / "link"
    link.symlink_to(repo / "sub" / "deep")
    expected = git(repo, "-C", str(repo), "rev-parse", "--show-toplevel").strip()
    for args in (["-C", f"{link}/.."], ["-C", str(repo), "-C", "sub"], ["-C", str(tmp_path), "-C", "", "-C", "repo"]):
        assert git(tmp_path, *args, "rev-parse", "--show-toplevel").strip() == expected  # what git does
        listed = gitml(tmp_path, *args, "runs", "list", "--json")
        assert listed.code == 0 and listed.out.strip() == "[]", (args, listed.err)
    refused = gitml(tmp_path, "-C", str(repo), "-C", "nowhere", "runs", "list")
    assert refused.code == 2 and "cannot change to nowhere: No such file or directory" in refused.err
