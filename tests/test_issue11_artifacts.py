"""Issue 11, artifacts: empty directories, get's default destination and --force, a machine-local
remote in gitml.yaml, and success that says what it checked."""

from __future__ import annotations

import hashlib
import json
import os

import pytest
from conftest import gitml

import gitml as api
from gitml import artifacts
from gitml.core import store
from gitml.core.errors import BadInputError, GitmlError


def _run_id(result) -> str:
    assert result.code == 0, result.err
    return result.out.strip().splitlines()[-1]


def _tree(root) -> list[str]:
    """Every path under ``root``, folders ending in /."""
    return sorted(p.relative_to(root).as_posix() + ("/" if p.is_dir() else "") for p in root.rglob("*"))


@pytest.fixture
def with_empty(repo):
    """A run with an empty directory artifact and a directory holding empty folders."""
    (repo / "empty").mkdir()
    (repo / "out" / "logs").mkdir(parents=True)
    (repo / "out" / "plots" / "raw").mkdir(parents=True)
    (repo / "out" / "score.txt").write_text("0.91\n")
    return _run_id(gitml(repo, "commit-run", "-a", "empty", "-a", "out"))


# -- item 4: empty directories ------------------------------------------------------------------


def test_an_empty_directory_is_listed_fetched_and_pulled(repo, with_empty, tmp_path):
    listed = gitml(repo, "artifacts", "ls", with_empty, "--json")
    assert listed.code == 0, listed.err
    assert [(e["path"], e["size"], e["sha256"]) for e in json.loads(listed.out)] == [
        ("empty/", 0, None),
        ("out/score.txt", 5, hashlib.sha256(b"0.91\n").hexdigest()),
        ("out/logs/", 0, None),
        ("out/plots/raw/", 0, None),
    ]
    pulled = gitml(repo, "artifacts", "pull", with_empty, "-o", str(tmp_path / "p"))
    assert pulled.code == 0, pulled.err
    assert _tree(tmp_path / "p") == ["empty/", "out/", "out/logs/", "out/plots/", "out/plots/raw/",
                                     "out/score.txt"]
    got = gitml(repo, "artifacts", "get", f"runs:/{with_empty}/empty", "-o", str(tmp_path / "g"))
    assert (got.code, got.out) == (0, f"{tmp_path / 'g'}/\n")
    assert (tmp_path / "g").is_dir() and list((tmp_path / "g").iterdir()) == []
    nested = gitml(repo, "artifacts", "pull", with_empty, "out/logs", "-o", str(tmp_path / "n"))
    assert (nested.code, _tree(tmp_path / "n")) == (0, ["out/", "out/logs/"])


def test_the_empty_directory_manifest_and_its_entry(repo, with_empty):
    run = api.get_run(with_empty, repo=repo)
    empty, out = run.artifacts["empty"], run.artifacts["out"]
    assert (empty["kind"], empty["size"], empty["files"]) == ("dir", 0, 0)
    cache = repo / ".git" / "gitml" / "cache"
    assert store.object_path(cache, empty["sha256"]).read_bytes() == b'{"files":[]}'
    manifest = json.loads(store.object_path(cache, out["sha256"]).read_bytes())
    assert manifest["dirs"] == ["logs", "plots/raw"] and [f["path"] for f in manifest["files"]] == ["score.txt"]


def test_a_directory_without_empty_folders_keeps_its_old_manifest(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.txt").write_bytes(b"a")
    entry = store.put_path(tmp_path / "cache", tmp_path / "d")
    data = store.object_path(tmp_path / "cache", entry["sha256"]).read_bytes()
    assert b"dirs" not in data and json.loads(data)["files"][0]["path"] == "a.txt"


def test_the_api_and_every_store_command_agree_on_an_empty_directory(repo, tmp_path):
    (repo / "blank").mkdir()
    (repo / "parent" / "only-empty" / "inner").mkdir(parents=True)
    with api.start_run(repo=repo) as run:
        assert api.log_artifact(str(repo / "blank"))["files"] == 0
        logged = api.log_artifacts(str(repo / "parent"))
    assert sorted(logged) == ["only-empty"]
    assert [r.path for r in artifacts.ls(run.id, repo=repo)] == ["blank/", "only-empty/inner/"]
    artifacts.add_remote("store", str(tmp_path / "remote"), repo=repo)
    pushed = gitml(repo, "artifacts", "push")
    assert pushed.out == "2 uploaded (41 bytes), 0 already on store\n"  # 12 + 29 bytes of manifests
    status = gitml(repo, "artifacts", "status")
    assert status.out == "all 2 objects referenced by the runs are on store\n"
    assert gitml(repo, "artifacts", "verify", "--remote").out == "verified 2 objects on remote 'store', all good\n"
    assert gitml(repo, "artifacts", "gc", "--grace", "0").out == "nothing to collect in the local cache (2 objects kept)\n"
    os.chdir(tmp_path)
    written = artifacts.download(f"runs:/{run.id}", repo=repo)
    assert [p.as_posix() for p in written] == ["blank", "only-empty/inner"]
    assert (tmp_path / "blank").is_dir() and (tmp_path / "only-empty" / "inner").is_dir()


def test_a_manifest_with_an_unsafe_or_non_empty_folder_is_refused():
    ok = {"mode": 420, "path": "a/f", "sha256": "0" * 64, "size": 1}
    for dirs in (["../x"], ["a"], ["a/f"], ["x", "x"], ["x", "x/y"], "x", [3]):
        data = json.dumps({"dirs": dirs, "files": [ok]}).encode()
        with pytest.raises(GitmlError, match="directory manifest of here is (unsafe|malformed)"):
            store.manifest_entries(data, "here")
    assert store.manifest_entries(json.dumps({"dirs": ["b/c"], "files": [ok]}).encode(), "here")[1] == ["b/c"]


# -- item 12: get's default destination, no silent overwrite --------------------------------------


@pytest.fixture
def model_run(repo):
    (repo / "model.pkl").write_bytes(b"model bytes")
    (repo / "m").mkdir()
    (repo / "m" / "w.bin").write_bytes(b"weights")
    return _run_id(gitml(repo, "commit-run", "-a", "model.pkl", "-a", "m"))


def test_get_without_out_writes_the_base_name_here(repo, model_run, tmp_path):
    here = tmp_path / "here"
    here.mkdir()
    got = gitml(here, "-C", str(repo), "artifacts", "get", f"runs:/{model_run[:8]}/m")
    assert (got.code, got.out) == (0, "m/w.bin\n")
    assert (repo / "m" / "w.bin").read_bytes() == b"weights" and list(here.iterdir()) == []
    os.remove(repo / "model.pkl")
    one = gitml(repo, "artifacts", "get", f"runs:/{model_run}/model.pkl")
    assert (one.code, one.out, (repo / "model.pkl").read_bytes()) == (0, "model.pkl\n", b"model bytes")


def test_get_and_pull_refuse_to_overwrite_a_differing_file(repo, model_run):
    (repo / "model.pkl").write_bytes(b"edited by hand")
    (repo / "m" / "w.bin").write_bytes(b"also edited")
    for args, first, more in ((["get", f"runs:/{model_run}/model.pkl"], "model.pkl", ""),
                              (["pull", model_run], "m/w.bin", " (and 1 more)")):
        refused = gitml(repo, "artifacts", *args)
        assert refused.code == 2 and refused.out == ""
        assert refused.err.startswith(f"gitml: error: refusing to overwrite {first!r}: it differs from "
                                      f"{first} of run {model_run[:8]}{more}; nothing was written")
        assert (repo / "model.pkl").read_bytes() == b"edited by hand"
        assert (repo / "m" / "w.bin").read_bytes() == b"also edited"  # nothing was written
    forced = gitml(repo, "artifacts", "pull", model_run, "--force")
    assert (forced.code, forced.out) == (0, "m/w.bin\nmodel.pkl\n")
    assert (repo / "model.pkl").read_bytes() == b"model bytes"


def test_identical_bytes_are_fine_and_the_api_has_force(repo, model_run):
    again = gitml(repo, "artifacts", "pull", model_run)  # the work tree has the same bytes
    assert (again.code, again.err) == (0, "")
    (repo / "model.pkl").write_bytes(b"x")
    with pytest.raises(BadInputError, match="refusing to overwrite"):
        artifacts.download(f"runs:/{model_run}/model.pkl", repo / "model.pkl", repo=repo)
    artifacts.download(f"runs:/{model_run}/model.pkl", repo / "model.pkl", repo=repo, force=True)
    assert (repo / "model.pkl").read_bytes() == b"model bytes"


# -- item 11: a machine-local folder in gitml.yaml -----------------------------------------------


@pytest.mark.parametrize("url", ["/srv/ml-store", "~/ml-store", "file:///srv/ml-store", "local:///srv/ml-store"])
def test_a_machine_local_team_remote_is_written_with_a_warning(repo, url):
    added = gitml(repo, "remote", "add", "bucket", url)
    assert added.code == 0 and added.out.startswith("bucket\t")
    assert added.err.startswith("gitml: warning: remote 'bucket' is a folder ")
    assert f"({url})" in added.err and "--local" in added.err and added.err.count("\n") == 1
    assert "bucket:" in (repo / "gitml.yaml").read_text()


@pytest.mark.parametrize(("url", "extra"), [("../ml-store", []), ("s3://b/p", []), ("/srv/x", ["--local"])])
def test_shared_or_personal_remotes_are_not_warned_about(repo, url, extra):
    added = gitml(repo, "remote", "add", "bucket", url, *extra)
    assert (added.code, added.err) == (0, "")


def test_the_warning_is_returned_by_the_library(repo):
    remote = artifacts.add_remote("bucket", "/srv/ml-store", repo=repo)
    assert len(remote.warnings) == 1 and "--local" in remote.warnings[0]
    assert "warnings" not in repr(remote)
    assert artifacts.add_remote("bucket", "/srv/ml-store", local=True, repo=repo).warnings == []
    listed = json.loads(gitml(repo, "remote", "list", "--json").out)
    assert sorted(listed[0]) == ["default", "name", "options", "scope", "url"]


# -- item 13: success says what it checked -------------------------------------------------------


def test_quiet_successes_now_say_what_they_checked(repo, tmp_path):
    artifacts.add_remote("store", str(tmp_path / "remote"), repo=repo)
    assert gitml(repo, "artifacts", "verify").out == "verified 0 objects in the local cache, all good\n"
    assert gitml(repo, "artifacts", "status").out == "no artifacts referenced by any run\n"
    assert gitml(repo, "artifacts", "status", "--json").out.strip() == "[]"
    assert gitml(repo, "artifacts", "gc", "--dry-run").out == "nothing to collect in the local cache (0 objects kept)\n"
    (repo / "model.pkl").write_bytes(b"model bytes")
    run_id = _run_id(gitml(repo, "commit-run", "-a", "model.pkl"))
    assert gitml(repo, "artifacts", "verify", "-r", "store").out == "verified 0 objects on remote 'store', all good\n"
    assert gitml(repo, "artifacts", "verify").out == "verified 1 object in the local cache, all good\n"
    pending = gitml(repo, "artifacts", "status", run_id[:8])
    assert pending.out.splitlines()[0].split() == ["run", "path", "size", "local", "remote"]
    gitml(repo, "artifacts", "push")
    assert gitml(repo, "artifacts", "status", run_id[:8]).out == (
        "all 1 object referenced by these runs are on store\n")
    assert gitml(repo, "artifacts", "gc", "--remote", "--dry-run").out == (
        "nothing to collect on remote 'store' (1 object kept)\n")
