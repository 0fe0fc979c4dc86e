"""Artifacts against real backends: one behaviour suite for a local folder, memory:// and S3 (moto)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time

import pytest
from conftest import git, gitml

import gitml as api
from gitml import artifacts
from gitml.artifacts.backend import ObjectStore, RemoteError
from gitml.core import store
from gitml.core.errors import BadInputError, GitmlError
from gitml.core.remotes import Remote


def _cache(repo):
    return repo / ".git" / "gitml" / "cache"


def _make_run(repo, tmp_path, name="r"):
    model = tmp_path / f"{name}-model.pkl"
    model.write_bytes(b"weights-" + name.encode() * 5000)
    data = tmp_path / f"{name}-data"
    (data / "sub").mkdir(parents=True)
    (data / "a.csv").write_text("x,y\n1,2\n")
    (data / "sub" / "b.txt").write_text(f"b of {name}")
    with api.start_run(name=name, repo=repo) as run:
        api.log_artifact(str(model), "models")
        api.log_artifact(str(data))
    return run.id, model, data


@pytest.fixture
def configured(repo, remote_url):
    url, options = remote_url
    artifacts.add_remote("store", url, options, default=True, repo=repo)
    return repo


def test_push_is_idempotent_and_status_follows(configured, tmp_path):
    repo = configured
    run_id, _, _ = _make_run(repo, tmp_path)
    pending = artifacts.status(repo=repo)
    assert {s.ref.path for s in pending} >= {"models/r-model.pkl", "r-data/a.csv", "r-data/sub/b.txt"}
    assert not any(s.remote for s in pending)
    first = artifacts.push(repo=repo)
    assert len(first.transferred) == len(pending) and first.skipped == 0
    second = artifacts.push(repo=repo)
    assert second.transferred == [] and second.skipped == len(pending)
    assert all(s.remote for s in artifacts.status(repo=repo))


def test_same_bytes_in_many_runs_are_stored_once(configured, tmp_path):
    repo = configured
    model = tmp_path / "m.bin"
    model.write_bytes(b"same bytes")
    for i in range(5):
        with api.start_run(name=f"r{i}", repo=repo):
            api.log_artifact(str(model))
    result = artifacts.push(repo=repo)
    assert len(result.transferred) == 1
    assert len(list(store.iter_objects(_cache(repo)))) == 1


def test_pull_and_lazy_get_after_the_cache_is_gone(configured, tmp_path):
    repo = configured
    run_id, model, data = _make_run(repo, tmp_path)
    artifacts.push(repo=repo)
    shutil.rmtree(_cache(repo))
    # One file out of a directory artifact: only its manifest and that file are fetched.
    got = artifacts.download(f"runs:/{run_id[:8]}/r-data/sub/b.txt", tmp_path / "b.txt", repo=repo)
    assert got == [tmp_path / "b.txt"] and (tmp_path / "b.txt").read_text() == "b of r"
    assert len(list(store.iter_objects(_cache(repo)))) == 2
    # A whole run.
    out = tmp_path / "pulled"
    written = artifacts.pull(run_id, out=out, repo=repo)
    assert (out / "models" / "r-model.pkl").read_bytes() == model.read_bytes()
    assert (out / "r-data" / "sub" / "b.txt").read_text() == "b of r"
    assert len(written) == 3
    # A sub-directory by URI.
    sub = artifacts.download(f"runs:/{run_id}/r-data", tmp_path / "only-data", repo=repo)
    assert sorted(p.relative_to(tmp_path / "only-data").as_posix() for p in sub) == ["a.csv", "sub/b.txt"]


def test_corrupted_remote_object_is_refused(configured, tmp_path):
    repo = configured
    run_id, model, _ = _make_run(repo, tmp_path)
    artifacts.push(repo=repo)
    remote = artifacts.list_remotes(repo=repo)[0]
    target = ObjectStore(remote)
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    with target.fs.open(target.path(digest), "wb") as handle:
        handle.write(b"tampered")
    shutil.rmtree(_cache(repo))
    dest = tmp_path / "out.pkl"
    with pytest.raises(GitmlError, match=rf"models/r-model.pkl of run {run_id[:8]}.*{digest[:12]}"):
        artifacts.download(f"runs:/{run_id}/models/r-model.pkl", dest, repo=repo)
    assert not dest.exists()
    assert not store.object_path(_cache(repo), digest).exists()
    assert artifacts.verify(check_remote=True, repo=repo) == [digest]


def test_gc_removes_only_unreachable_objects(configured, tmp_path):
    repo = configured
    keep, _, _ = _make_run(repo, tmp_path, "keep")
    gone, gone_model, _ = _make_run(repo, tmp_path, "gone")
    artifacts.push(repo=repo)
    api.delete_run(gone, repo=repo)
    doomed_digest = hashlib.sha256(gone_model.read_bytes()).hexdigest()
    assert artifacts.gc(on_remote=True, dry_run=True, repo=repo) == []  # younger than the grace period
    dry = artifacts.gc(on_remote=True, dry_run=True, grace=0, repo=repo)
    assert doomed_digest in dry
    assert doomed_digest in ObjectStore(artifacts.list_remotes(repo=repo)[0]).all_objects()
    assert artifacts.gc(on_remote=True, keep_history=True, dry_run=True, grace=0, repo=repo) == []
    assert sorted(artifacts.gc(on_remote=True, grace=0, repo=repo)) == sorted(dry)
    remaining = ObjectStore(artifacts.list_remotes(repo=repo)[0]).all_objects()
    assert doomed_digest not in remaining
    assert {r.digest for r in artifacts.referenced_objects(repo=repo)} <= remaining
    assert artifacts.gc(repo=repo) == []
    local = artifacts.gc(grace=0, repo=repo)
    assert doomed_digest in local and api.get_run(keep, repo=repo)


def test_many_objects_are_checked_by_shard_listing(configured, tmp_path):
    repo = configured
    folder = tmp_path / "many"
    folder.mkdir()
    for i in range(150):
        (folder / f"f{i}.txt").write_text(f"file {i}")
    with api.start_run(repo=repo):
        api.log_artifact(str(folder))
    assert len(artifacts.push(repo=repo).transferred) == 151  # 150 files and the manifest
    (folder / "f150.txt").write_text("one more")
    with api.start_run(repo=repo):
        api.log_artifact(str(folder))
    again = artifacts.push(repo=repo)
    assert len(again.transferred) == 2 and again.skipped == 151  # the first run's files and manifest


def test_manifest_with_escaping_paths_is_rejected(repo, tmp_path):
    from gitml.core.formats import Run
    from gitml.core.gitrepo import GitRepo
    from gitml.tracking.commit import write_runs

    for bad in ("../evil.txt", "/etc/passwd", "a/../../b"):
        manifest = json.dumps({"files": [{"mode": 420, "path": bad, "sha256": "0" * 64, "size": 1}]})
        digest = store.put_bytes(_cache(repo), manifest.encode())
        run = Run(id=digest[:32], name="evil", experiment="e", status="FINISHED",
                  start_time="2026-01-01T00:00:00.000Z",
                  artifacts={"data": {"kind": "dir", "sha256": digest, "size": 1, "files": 1}})
        with GitRepo(repo) as g:
            write_runs(g, [(run, [])], "evil")
        with pytest.raises(GitmlError, match="unsafe"):
            artifacts.pull(run.id, out=tmp_path / "out", repo=repo)
        assert not (tmp_path / "evil.txt").exists()


def test_unreachable_remote_is_one_clear_error(repo, tmp_path, aws_env):
    _make_run(repo, tmp_path)
    artifacts.add_remote("dead", "s3://nowhere/x", {"endpoint_url": "http://127.0.0.1:9"}, repo=repo)
    result = gitml(repo, "artifacts", "push", "-r", "dead")
    assert result.code == 1, result.err
    assert len(result.err.strip().splitlines()) == 1 and "dead" in result.err
    assert "Traceback" not in result.err


def test_missing_backend_package_gives_install_hint(repo):
    with pytest.raises(RemoteError, match=r"gitml\[gcs\]"):
        ObjectStore(Remote("g", "gs://bucket/path"))


def test_remote_config_team_and_local(repo):
    artifacts.add_remote("team", "s3://bucket/ml", {"endpoint_url": "http://x"}, repo=repo)
    text = (repo / "gitml.yaml").read_text()
    assert "s3://bucket/ml" in text
    with pytest.raises(BadInputError, match="credential"):
        artifacts.add_remote("bad", "s3://b", {"aws_secret_access_key": "s"}, repo=repo)
    artifacts.add_remote("mine", "/tmp/mine", {"aws_secret_access_key": "s"}, local=True, default=True,
                         repo=repo)
    assert "aws_secret" not in (repo / "gitml.yaml").read_text()
    by_name = {r.name: r for r in artifacts.list_remotes(repo=repo)}
    assert by_name["mine"].default and by_name["mine"].scope == "local"
    assert by_name["team"].options == {"endpoint_url": "http://x"}
    artifacts.remove_remote("mine", repo=repo)
    assert [r.name for r in artifacts.list_remotes(repo=repo)] == ["team"]
    assert git(repo, "config", "--local", "--get-regexp", "gitml", check=False) == ""


def test_cli_round_trip_on_s3(repo, tmp_path, moto_endpoint, aws_env):
    import s3fs

    s3fs.S3FileSystem(endpoint_url=moto_endpoint).mkdir("cli-bucket")
    (repo / "model.pkl").write_bytes(b"model bytes")
    run_id = gitml(repo, "commit-run", "-n", "cli", "-a", "model.pkl").out.strip()
    assert gitml(repo, "remote", "add", "s3", "s3://cli-bucket/gitml", "-o",
                 f"endpoint_url={moto_endpoint}", "--default").code == 0
    pushed = gitml(repo, "artifacts", "push", "--json")
    assert pushed.code == 0 and pushed.err == "" and json.loads(pushed.out)["uploaded"] == 1
    assert gitml(repo, "artifacts", "status").out.count("\n") <= 2  # header only: nothing pending
    shutil.rmtree(_cache(repo))
    got = gitml(repo, "artifacts", "get", f"runs:/{run_id[:8]}/model.pkl", "-o", str(tmp_path / "m.pkl"))
    assert got.code == 0, got.err
    assert (tmp_path / "m.pkl").read_bytes() == b"model bytes"
    listed = gitml(repo, "artifacts", "ls", run_id[:8], "--json")
    assert json.loads(listed.out)[0]["path"] == "model.pkl"
    assert gitml(repo, "artifacts", "verify").code == 0


KILLED_PUSH = """
import sys
import gitml.artifacts.backend as backend
import gitml.artifacts

real_put = backend.ObjectStore.put
count = [0]

def put_then_die(self, local, digest):
    count[0] += 1
    if count[0] == 40:  # die hard in the middle of the push, mid-upload
        import os, signal
        self.fs.makedirs(self.path(digest).rsplit("/", 1)[0], exist_ok=True)
        with open(local, "rb") as src, self.fs.open(self.path(digest) + ".tmp-partial", "wb") as out:
            out.write(src.read()[:3])
        os.kill(os.getpid(), signal.SIGKILL)
    return real_put(self, local, digest)

backend.ObjectStore.put = put_then_die
gitml.artifacts.push(jobs=1, repo=sys.argv[1])
"""


def test_killed_push_resumes_and_leaves_no_partial_object(repo, tmp_path):
    import subprocess
    import sys

    folder = tmp_path / "data"
    folder.mkdir()
    for i in range(80):
        (folder / f"f{i}.bin").write_bytes(f"payload {i}".encode() * 100)
    with api.start_run(repo=repo):
        api.log_artifact(str(folder))
    remote_dir = tmp_path / "remote"
    artifacts.add_remote("store", str(remote_dir), repo=repo)
    killed = subprocess.run([sys.executable, "-c", KILLED_PUSH, str(repo)], capture_output=True)
    assert killed.returncode == -9
    target = ObjectStore(artifacts.list_remotes(repo=repo)[0])
    partial = target.all_objects()
    assert 0 < len(partial) < 81
    for digest in partial:  # whatever is visible under an object's name is whole
        assert hashlib.sha256((remote_dir / "sha256" / digest[:2] / digest[2:]).read_bytes()).hexdigest() == digest
    resumed = artifacts.push(repo=repo)
    assert resumed.skipped == len(partial) and len(resumed.transferred) == 81 - len(partial)
    assert artifacts.verify(check_remote=True, repo=repo) == []


def test_missing_credentials_is_one_clear_error(repo, tmp_path, moto_endpoint, monkeypatch):
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    _make_run(repo, tmp_path)
    artifacts.add_remote("s3", "s3://no-creds/x", {"endpoint_url": moto_endpoint}, repo=repo)
    result = gitml(repo, "artifacts", "push")
    assert result.code == 1, (result.out, result.err)
    assert len(result.err.strip().splitlines()) == 1 and "'s3'" in result.err


def test_cli_gc_dry_run_changes_nothing(repo, tmp_path):
    run_id, _, _ = _make_run(repo, tmp_path)
    api.delete_run(run_id, repo=repo)
    before = sorted(store.iter_objects(_cache(repo)))
    assert gitml(repo, "artifacts", "gc", "--dry-run").out == (  # all younger than an hour
        "nothing to collect in the local cache (4 objects kept, 4 of them unreferenced but younger than "
        "the grace period)\n")
    old = time.time() - 7200
    for digest in before:
        os.utime(store.object_path(_cache(repo), digest), (old, old))
    dry = gitml(repo, "artifacts", "gc", "--dry-run")
    *listed, summary = dry.out.splitlines()
    assert dry.code == 0 and sorted(listed) == before
    assert summary == "would delete 4 objects in the local cache (0 objects kept)"
    assert sorted(store.iter_objects(_cache(repo))) == before
    assert gitml(repo, "artifacts", "gc").code == 0
    assert list(store.iter_objects(_cache(repo))) == []


def test_push_without_the_cache_reports_what_is_missing(repo, tmp_path):
    _make_run(repo, tmp_path)
    artifacts.add_remote("store", str(tmp_path / "remote"), repo=repo)
    shutil.rmtree(_cache(repo))
    result = artifacts.push(repo=repo)
    assert result.transferred == [] and {m.path for m in result.missing_locally} == {
        "models/r-model.pkl", "r-data/ (manifest)"}
    cli = gitml(repo, "artifacts", "push")
    assert cli.code == 1 and "missing" in cli.out and len(cli.err.strip().splitlines()) == 1


def test_gc_spares_runs_in_progress_and_pull_keeps_exec_bits(repo, tmp_path):
    script = tmp_path / "tools"
    script.mkdir()
    (script / "run.sh").write_text("#!/bin/sh\necho hi\n")
    (script / "run.sh").chmod(0o755)
    with api.start_run(repo=repo) as done:
        api.log_artifact(str(script))
    live = api.start_run(repo=repo)
    lonely = tmp_path / "live.bin"
    lonely.write_bytes(b"logged by a run still going")
    api.log_artifact(str(lonely))
    assert artifacts.gc(dry_run=True, grace=0, repo=repo) == []
    api.end_run()
    assert artifacts.gc(dry_run=True, grace=0, repo=repo) == []
    out = tmp_path / "out"
    artifacts.pull(done.id, out=out, repo=repo)
    assert (out / "tools" / "run.sh").stat().st_mode & 0o777 == 0o755
    assert live.ended


def test_remote_options_paths_and_secrets(repo, tmp_path):
    (repo / "sub").mkdir()
    artifacts.add_remote("rel", "store-dir", {"anon": "false", "retries": "3"}, repo=repo)
    (remote,) = artifacts.list_remotes(repo=repo / "sub")
    assert remote.url == str(repo / "store-dir")  # relative to the work tree, wherever gitml runs
    assert remote.options == {"anon": False, "retries": 3}
    for name in ("key", "secret", "account_key", "connection_string", "aws_session_token"):
        with pytest.raises(BadInputError, match="credential"):
            artifacts.add_remote("x", "s3://b", {name: "v"}, repo=repo)
    artifacts.add_remote("mine", "s3://b/p", {"secret": "hunter2"}, local=True, repo=repo)
    listed = gitml(repo, "remote", "list", "--json")
    assert "hunter2" not in listed.out and "***" in listed.out
    several = gitml(repo, "artifacts", "get", "runs:/abcd/x", "-o", str(tmp_path / "x"))
    assert several.code == 2 and "no run matches" in several.err
    (repo / "m.bin").write_bytes(b"m")
    run_id = gitml(repo, "commit-run", "-a", "m.bin").out.strip()
    shutil.rmtree(_cache(repo))
    no_default = gitml(repo, "artifacts", "get", f"runs:/{run_id}/m.bin", "-o", str(tmp_path / "m"))
    assert no_default.code == 2 and "no default" in no_default.err


def test_cli_paths_are_read_from_the_dash_c_directory(repo, tmp_path):
    (repo / "model.pkl").write_bytes(b"model bytes")
    run_id = gitml(repo, "commit-run", "-a", "model.pkl").out.strip()
    sub = repo / "sub"
    (sub / "into").mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # As `git -C`: relative paths are read from -C's directory, and printed as they were given.
    pulled = gitml(elsewhere, "-C", str(sub), "artifacts", "pull", run_id[:8], "--out", "x")
    assert (pulled.code, pulled.out, pulled.err) == (0, "x/model.pkl\n", "")
    assert (sub / "x" / "model.pkl").read_bytes() == b"model bytes"
    got = gitml(elsewhere, "-C", str(sub), "artifacts", "get", f"runs:/{run_id}/model.pkl", "-o", "copy.pkl")
    assert (got.code, got.out, got.err) == (0, "copy.pkl\n", "")
    assert (sub / "copy.pkl").read_bytes() == b"model bytes"
    into = gitml(elsewhere, "-C", "../repo/sub", "artifacts", "get", f"runs:/{run_id[:8]}/model.pkl", "-o", "into")
    assert (into.code, into.out) == (0, "into/model.pkl\n")
    assert (sub / "into" / "model.pkl").read_bytes() == b"model bytes"
    assert sorted(p.name for p in elsewhere.iterdir()) == []
    absolute = gitml(elsewhere, "-C", str(sub), "artifacts", "pull", run_id, "-o", str(tmp_path / "abs"))
    assert absolute.out == f"{tmp_path / 'abs' / 'model.pkl'}\n"


def test_cli_verify_fails_with_one_error_line(repo, tmp_path):
    _make_run(repo, tmp_path)
    assert gitml(repo, "artifacts", "verify").out == "verified 4 objects in the local cache, all good\n"
    digest = next(store.iter_objects(_cache(repo)))
    path = store.object_path(_cache(repo), digest)
    path.chmod(0o644)
    path.write_bytes(b"bit rot")
    bad = gitml(repo, "artifacts", "verify")
    assert (bad.code, bad.out, bad.err) == (1, f"{digest}\n", "gitml: error: 1 corrupted object of 4 verified "
                                                  "in the local cache (gitml artifacts verify --delete-bad "
                                                  "removes them)\n")
    deleted = gitml(repo, "artifacts", "verify", "--delete-bad")
    assert deleted.code == 1 and not path.exists()
    assert gitml(repo, "artifacts", "verify").code == 0


def test_workspace_is_passed_through_and_kept_open(repo, tmp_path):
    from gitml.core.workspace import open_workspace

    run_id, model, _ = _make_run(repo, tmp_path)
    artifacts.add_remote("store", str(tmp_path / "remote"), repo=repo)
    with open_workspace(repo) as ws:
        assert artifacts.push(repo=ws).remote == "store"
        assert {r.path for r in artifacts.ls(run_id[:8], repo=ws)} == {
            "models/r-model.pkl", "r-data/a.csv", "r-data/sub/b.txt"}
        got = artifacts.download(f"runs:/{run_id}/models/r-model.pkl", tmp_path / "m.pkl", repo=ws)
        assert got == [tmp_path / "m.pkl"] and got[0].read_bytes() == model.read_bytes()
        assert all(s.remote for s in artifacts.status(repo=ws))  # the same workspace, four calls


def test_remote_gc_keeps_directory_files_whose_manifest_is_not_cached(repo, tmp_path):
    run_id, _, data = _make_run(repo, tmp_path)
    remote_dir = tmp_path / "remote"
    artifacts.add_remote("store", str(remote_dir), repo=repo)
    artifacts.push(repo=repo)
    pushed = ObjectStore(artifacts.list_remotes(repo=repo)[0]).all_objects()
    shutil.rmtree(_cache(repo))  # as on a fresh clone: no manifest to say which files the run has
    assert artifacts.gc(on_remote=True, grace=0, repo=repo) == []
    assert ObjectStore(artifacts.list_remotes(repo=repo)[0]).all_objects() == pushed
    # A manifest on neither side: nothing is deleted, and the error says why.
    manifest = api.get_run(run_id, repo=repo).artifacts["r-data"]["sha256"]
    shutil.rmtree(_cache(repo))
    (remote_dir / "sha256" / manifest[:2] / manifest[2:]).unlink()
    with pytest.raises(GitmlError, match=rf"manifest of run {run_id[:8]} r-data cannot be read"):
        artifacts.gc(on_remote=True, grace=0, repo=repo)
    assert ObjectStore(artifacts.list_remotes(repo=repo)[0]).all_objects() == pushed - {manifest}


def test_a_run_without_artifacts_lists_none(repo):
    """`artifacts ls` of a run that logged none is an empty list, not an error (a path that
    names nothing still is one)."""
    with api.start_run(repo=repo) as run:
        api.log_metric("m", 1.0)
    listed = gitml(repo, "artifacts", "ls", run.id, "--json")
    assert listed.code == 0 and json.loads(listed.out) == [], listed.err
    missing = gitml(repo, "artifacts", "get", f"runs:/{run.id}/nope", "-o", "x")
    assert missing.code == 2 and "has no artifact 'nope'" in missing.err, missing.err
