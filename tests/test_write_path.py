"""The write path of a run: objects written together, git's fsync settings, one file per run in
progress, a bounded pack count; against real git and real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from conftest import git, gitml, runs_tip

import gitml as api
from gitml.core import active
from gitml.core.fsync import DEFAULT, components, fsync_plan
from gitml.core.gitrepo import GitRepo
from gitml.core.packfile import build_pack

RUNS_REF = "refs/gitml/runs"


# -- git's core.fsync, read as git reads it ---------------------------------------------------


def test_default_is_what_git_does_by_default():
    plan = fsync_plan(None)
    assert DEFAULT == {"pack", "pack-metadata", "commit-graph"}  # git: committed,-loose-object
    assert (plan.loose, plan.pack, plan.pack_index, plan.reference) == (False, True, True, False)
    assert plan.steps(packed=False) == []  # a loose write flushes nothing, as git commit does
    assert plan.steps(packed=True) == ["object-files", "pack-index", "object-folder"]


@pytest.mark.parametrize(("setting", "loose", "reference"), [
    ("committed", True, True),
    ("all", True, True),
    ("added", True, True),
    ("objects", True, False),
    ("loose-object", True, False),
    ("reference", False, True),
    ("objects,reference", True, True),
    ("all,-reference", True, False),
    ("none", False, False),
    ("none,loose-object", True, False),
    ("", False, False),
    ("no-such-part", False, False),
])
def test_settings_pick_the_flushes(setting, loose, reference):
    plan = fsync_plan(setting)
    assert (plan.loose, plan.reference) == (loose, reference)


def test_none_clears_even_packs_and_minus_removes():
    assert components("none") == frozenset()
    assert components("-pack") == DEFAULT - {"pack"}
    assert components("committed,-objects") == {"reference", "pack-metadata", "commit-graph"}
    assert fsync_plan("none").steps(packed=True) == []


def test_the_ref_is_flushed_after_everything_it_names():
    for setting in ("committed", "all", "objects,reference", "reference"):
        plan = fsync_plan(setting)
        for packed in (True, False):
            steps = plan.steps(packed)
            assert steps[-1] == "ref"
            if "object-files" in steps:
                assert steps.index("object-files") < steps.index("object-folder") < steps.index("ref")


def test_the_older_fsync_object_files_setting():
    assert fsync_plan(None, "true").loose and fsync_plan(None, "1").loose
    assert not fsync_plan(None, "false").loose
    assert not fsync_plan("pack", "true").loose  # core.fsync, when set, decides alone (as in git)


def test_methods():
    assert fsync_plan(None, None, "batch").method == "batch"
    assert fsync_plan(None, None, "Writeout-Only").method == "writeout-only"
    assert fsync_plan(None, None, "bogus").method == "fsync"


def test_the_repository_reads_its_settings(repo):
    git(repo, "config", "core.fsync", "committed")
    with GitRepo(repo) as g:
        assert g.fsync_plan() == fsync_plan("committed")


# -- objects written together -------------------------------------------------------------------


def test_a_written_pack_is_what_git_reads(repo, tmp_path):
    from dulwich.objects import Blob

    blobs = [Blob.from_string(b"x" * n) for n in (0, 1, 15, 16, 200, 70000)]
    pack, index, checksum = build_pack((bytes.fromhex(b.id.decode()), 3, b.as_raw_string()) for b in blobs)
    folder = repo / ".git" / "objects" / "pack"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"pack-{checksum.hex()}.pack").write_bytes(pack)
    (folder / f"pack-{checksum.hex()}.idx").write_bytes(index)
    out = git(repo, "verify-pack", "-v", str(folder / f"pack-{checksum.hex()}.idx"))
    assert all(b.id.decode() in out for b in blobs)
    assert git(repo, "cat-file", "-p", blobs[-1].id.decode()) == "x" * 70000


def test_with_core_fsync_all_a_run_is_one_pack_and_git_fsck_is_clean(repo):
    git(repo, "config", "core.fsync", "all")
    git(repo, "gc", "-q")
    packs_before = _packs(repo)
    result = gitml(repo, "commit-run", "-p", "lr=0.1", "-m", "acc=0.9", "-t", "note=durable")
    assert result.code == 0, result.err
    assert _packs(repo) == packs_before + 1
    assert _object_counts(repo)["count"] == 0  # nothing loose: the run's objects are in the pack
    git(repo, "fsck", "--strict", "--no-progress")
    run_id = result.out.strip()
    assert "lr: 0.1" in git(repo, "show", f"{RUNS_REF}:runs/{run_id[:2]}/{run_id}/params.yaml")


def test_by_default_a_run_is_loose_objects_with_no_temporary_file_left(repo):
    api.commit_run(name="one", params={"a": 1}, repo=repo)
    packs = _packs(repo)
    api.commit_run(name="two", params={"a": 2}, repo=repo)
    assert _packs(repo) == packs
    objects = repo / ".git" / "objects"
    assert not [p for p in objects.rglob("tmp_*")]
    git(repo, "fsck", "--strict", "--no-progress")


def test_pack_count_stays_bounded(repo):
    """Every run lands as its own pack here (loose objects flushed): git's geometric repack keeps
    the count at gc.autoPackLimit."""
    git(repo, "config", "core.fsync", "objects")
    git(repo, "config", "gc.autoPackLimit", "4")
    ids = [api.commit_run(name=f"r{i}", params={"i": i}, repo=repo).id for i in range(30)]
    assert _packs(repo) <= 4
    assert {r.id for r in api.search_runs(repo=repo)} == set(ids)
    git(repo, "fsck", "--strict", "--no-progress")


WRITER = textwrap.dedent(
    """
    import sys
    import gitml
    repo, worker = sys.argv[1], int(sys.argv[2])
    for i in range(50):
        with gitml.start_run(name=f"w{worker}-{i}", repo=repo):
            gitml.log_params({"worker": worker, "i": i})
            gitml.log_metrics({"score": worker + i / 100})
            gitml.set_tags({"team": "t"})
    """
)


@pytest.mark.parametrize("fsync", ["default", "committed"])
def test_eight_writers_lose_nothing_and_gc_keeps_fsck_clean(repo, fsync):
    """8 real processes x 50 runs: loose objects (git's defaults), or one pack a run (flushed),
    with the geometric repack running among the writers."""
    if fsync != "default":
        git(repo, "config", "core.fsync", fsync)
        git(repo, "config", "gc.autoPackLimit", "8")
    procs = [subprocess.Popen([sys.executable, "-c", WRITER, str(repo), str(w)], stderr=subprocess.PIPE)
             for w in range(8)]
    for proc in procs:
        _, err = proc.communicate(timeout=900)
        assert proc.returncode == 0, err.decode()
    names = {r.name for r in api.search_runs(repo=repo)}
    assert names == {f"w{w}-{i}" for w in range(8) for i in range(50)}
    assert int(git(repo, "rev-list", "--count", RUNS_REF)) == 400
    assert not list((repo / ".git" / "gitml" / "active").iterdir())
    git(repo, "fsck", "--strict", "--no-progress")
    git(repo, "gc", "-q")
    git(repo, "fsck", "--strict", "--no-progress")
    assert len(api.search_runs(repo=repo)) == 400


LOOPER = textwrap.dedent(
    """
    import sys
    import gitml
    repo = sys.argv[1]
    print("ready", flush=True)
    i = 0
    while True:
        gitml.commit_run(name=f"k{i}", params={"i": i}, metrics={"m": i / 7}, repo=repo)
        i += 1
    """
)


@pytest.mark.parametrize("fsync", ["default", "committed"])
def test_a_killed_writer_leaves_no_ref_naming_a_missing_object(repo, fsync):
    if fsync != "default":
        git(repo, "config", "core.fsync", fsync)
    for delay in (0.05, 0.13, 0.21, 0.34):
        proc = subprocess.Popen([sys.executable, "-c", LOOPER, str(repo)], stdout=subprocess.PIPE)
        assert proc.stdout.readline() == b"ready\n"
        time.sleep(delay)  # somewhere in a run: logging, writing objects or moving the ref
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc.stdout.close()
        git(repo, "fsck", "--strict", "--no-progress", "--connectivity-only")
        if runs_tip(repo):
            git(repo, "rev-list", "--objects", RUNS_REF)  # every object the ref reaches is there
        lock = repo / ".git" / "refs" / "gitml" / "runs.lock"
        if lock.exists():  # killed while holding the ref's lock: the ref is intact; the lock, as
            lock.unlink()  # in git, stays until removed (gitml names it once stale, never deletes it)
    # A kill between a pack's rename and its index's leaves a .pack without an .idx (docs/formats.md:
    # no reader sees it; git's own pack writes leave the same). It holds nothing a ref names (the
    # connectivity checks above passed); full fsck reports it, so it goes, as garbage would.
    for pack in (repo / ".git" / "objects" / "pack").glob("*.pack"):
        if not pack.with_suffix(".idx").exists():
            pack.unlink()
    git(repo, "fsck", "--strict", "--no-progress")
    # a run left in progress by the kill is listed and commits like any other
    for entry in api.list_active_runs(repo=repo):
        assert entry["alive"] is False
        api.commit_run(resume=entry["id"], status="KILLED", repo=repo)
    git(repo, "fsck", "--strict", "--no-progress")


# -- a run in progress: one append-only file ---------------------------------------------------


def test_a_run_in_progress_is_one_file_meta_first(repo):
    (repo / "train.py").write_text("print('changed')\n")
    with api.start_run(name="filed", repo=repo) as run:
        api.log_param("lr", 0.1)
        api.log_metric("loss", 0.5)
        path = repo / ".git" / "gitml" / "active" / run.id
        assert path.is_file()
        lines = path.read_text().splitlines()
        meta = json.loads(lines[0])
        assert (meta["id"], meta["name"], meta["pid"]) == (run.id, "filed", os.getpid())
        kinds = [json.loads(line)[0] for line in lines[1:]]
        assert kinds == ["d", "p", "m"]
        assert "changed" in json.loads(lines[1])[1]
    assert not path.exists()
    assert "changed" in git(repo, "show", f"{RUNS_REF}:runs/{run.id[:2]}/{run.id}/patch.diff")


def test_a_torn_last_line_is_skipped_and_a_resumed_run_goes_on_cleanly(repo):
    handle = api.start_run(name="torn", repo=repo)
    api.log_metric("a", 1.0)
    handle._log.close()
    with open(handle._log.path, "a") as log:
        log.write('["m", "b", 2.0, 0, 17')  # a write cut short by a kill
    from gitml import api as fluent

    fluent._stack.clear()
    run = api.commit_run(resume=handle.id, metrics={"c": 3.0}, status="KILLED", repo=repo)
    assert run.metrics == {"a": 1.0, "c": 3.0}


def test_a_failed_commit_is_noted_in_the_file(repo):
    handle = api.start_run(name="noted", repo=repo)
    api.log_param("p", 1)
    handle._log.close()
    from gitml import api as fluent

    fluent._stack.clear()
    active.mark_commit_failed(handle._log.path, "FAILED")
    (entry,) = api.list_active_runs(repo=repo)
    assert entry["commit_failed"] is True and entry["requested_status"] == "FAILED"
    assert entry["alive"] is False
    run = api.commit_run(resume=handle.id[:8], status="FAILED", repo=repo)
    assert run.params == {"p": 1} and api.list_active_runs(repo=repo) == []


def test_a_stray_file_among_runs_in_progress_is_ignored(repo):
    folder = repo / ".git" / "gitml" / "active"
    folder.mkdir(parents=True)
    (folder / "notes.txt").write_text("not a run\n")
    (folder / ("ab" * 16)).write_text("not json\n")
    assert api.list_active_runs(repo=repo) == []


OLD_ID = "0123456789abcdef0123456789abcdef"


def _old_layout_run(repo, failed: str | None = None):
    """A run in progress as gitml wrote it before the one-file layout: a folder."""
    folder = repo / ".git" / "gitml" / "active" / OLD_ID
    folder.mkdir(parents=True)
    meta = {"id": OLD_ID, "name": "old-style", "experiment": "default", "start_time": "2026-01-02T03:04:05.000Z",
            "user": "Test User", "source": {"commit": git(repo, "rev-parse", "HEAD").strip(), "branch": "main",
                                            "dirty": True, "remote": None},
            "command": "python train.py", "description": None, "pid": 999999999, "host": "elsewhere"}
    (folder / "meta.json").write_text(json.dumps(meta, sort_keys=True))
    (folder / "patch.diff").write_text("diff --git a/x b/x\n")
    (folder / "log").write_text('["p", "lr", 0.01]\n["m", "loss", 0.25, 0, 1767323045.0]\n["t", "k", "v"]\n'
                                '["m", "loss", 0.5')  # the last line torn by a kill
    if failed:
        (folder / active.COMMIT_FAILED).write_text(failed)
    return folder


def test_an_old_layout_run_in_progress_still_resumes(repo):
    folder = _old_layout_run(repo)
    (entry,) = json.loads(gitml(repo, "runs", "list", "--active", "--json").out)
    assert (entry["id"], entry["name"], entry["alive"]) == (OLD_ID, "old-style", None)
    result = gitml(repo, "commit-run", "--resume", OLD_ID[:6], "--status", "KILLED", "-m", "acc=0.75")
    assert result.code == 0, result.err
    assert result.out.strip() == OLD_ID
    run = api.get_run(OLD_ID, repo=repo)
    assert (run.name, run.status, run.params, run.tags) == ("old-style", "KILLED", {"lr": 0.01}, {"k": "v"})
    assert run.metrics == {"loss": 0.25, "acc": 0.75}
    assert git(repo, "show", f"{RUNS_REF}:runs/{OLD_ID[:2]}/{OLD_ID}/patch.diff") == "diff --git a/x b/x\n"
    assert not folder.exists()
    git(repo, "fsck", "--strict", "--no-progress")


def test_an_old_layout_failed_commit_is_listed_as_such(repo):
    _old_layout_run(repo, failed="FINISHED")
    (entry,) = api.list_active_runs(repo=repo)
    assert entry["commit_failed"] is True and entry["requested_status"] == "FINISHED"
    folder = repo / ".git" / "gitml" / "active" / OLD_ID
    saved = active.load(folder)
    assert saved.torn and saved.patch == "diff --git a/x b/x\n" and saved.failed == "FINISHED"


# -- helpers -----------------------------------------------------------------------------------


def _packs(repo) -> int:
    folder = repo / ".git" / "objects" / "pack"
    return len(list(folder.glob("*.idx"))) if folder.is_dir() else 0


def _object_counts(repo) -> dict[str, int]:
    return {k: int(v) for k, v in (line.split(": ") for line in git(repo, "count-objects", "-v").splitlines())}
