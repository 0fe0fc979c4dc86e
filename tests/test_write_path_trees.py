"""Editing trees by name, the trees a process keeps, and when a commit asks git to pack: what a
run's commit does to the big trees of a ref, held to what git itself writes and reads."""

from __future__ import annotations

import hashlib
import subprocess

import pytest
from conftest import git

import gitml as api
from gitml.core import runsref
from gitml.core.gitrepo import BLOB_MODE, TREE_MODE, GitRepo

RUNS_REF = "refs/gitml/runs"


def _mktree(repo, entries: dict[str, tuple[int, str]]) -> str:
    """The id git's own ``git mktree`` gives a tree of ``entries``."""
    lines = "".join(f"{mode:06o} {'tree' if mode == TREE_MODE else 'blob'} {sha}\t{name}\n"
                    for name, (mode, sha) in entries.items())
    return subprocess.run(["git", "mktree"], cwd=repo, input=lines.encode(), capture_output=True,
                          check=True).stdout.decode().strip()


def _ls_tree(repo, sha: str) -> dict[str, tuple[int, str]]:
    out = {}
    for line in git(repo, "-c", "core.quotePath=false", "ls-tree", sha).splitlines():
        meta, name = line.split("\t")
        mode, _, obj = meta.split()
        out[name] = (int(mode, 8), obj)
    return out


# Names whose order in git differs from plain name order: a folder sorts as if its name ended in
# "/", so folder "a" comes after file "a.b" and before file "a0"; and a name that is not ASCII.
TRICKY = ["a", "a.b", "a0", "b-", "ab", "é", "z"]


def test_an_edited_tree_is_the_tree_git_makes(repo):
    with GitRepo(repo) as g:
        blob = g.write_blob(b"x\n")
        sub = g.write_tree({"f": (BLOB_MODE, blob)})
        start = {name: (TREE_MODE if name in ("a", "ab") else BLOB_MODE, sub if name in ("a", "ab") else blob)
                 for name in TRICKY}
        base = g.write_tree(start)
        edits = {"a": None, "a.b": (TREE_MODE, sub), "a1": (BLOB_MODE, blob), "ab": (BLOB_MODE, blob),
                 "missing": None}
        edited = g.edit_tree(base, edits)
        expected = dict(start)
        for name, entry in edits.items():
            expected.pop(name, None)
            if entry is not None:
                expected[name] = entry
        assert edited == g.write_tree(expected)
        assert g.edit_tree(base, {}) == base  # nothing changed: the same tree
        assert g.edit_tree(base, dict.fromkeys(TRICKY)) is None  # nothing left
        assert g.edit_tree(None, {"only": (BLOB_MODE, blob)}) == g.write_tree({"only": (BLOB_MODE, blob)})
        assert g.tree_entries(edited, ["a", "a.b", "ab", "nope"]) == {
            "a.b": (TREE_MODE, sub), "ab": (BLOB_MODE, blob)}
    assert _mktree(repo, expected) == edited  # git's own id for the same entries
    assert _ls_tree(repo, edited) == expected  # and git reads back what was written
    git(repo, "fsck", "--strict", "--no-progress")


def test_many_edits_at_once_make_the_same_tree(repo):
    """Past a few dozen edits a tree is merged and sorted once: the same tree as one edit at a time."""
    with GitRepo(repo) as g:
        blob = g.write_blob(b"z\n")
        sub = g.write_tree({"f": (BLOB_MODE, blob)})
        names = [f"{i:03d}" for i in range(200)]
        base = g.write_tree({n: (BLOB_MODE, blob) for n in names[::2]})
        edits = {n: (TREE_MODE, sub) if i % 3 == 0 else (BLOB_MODE, blob) for i, n in enumerate(names[1::2])}
        edits.update(dict.fromkeys(names[:40:4]))  # and some removed
        one_by_one = base
        for name, entry in edits.items():
            one_by_one = g.edit_tree(one_by_one, {name: entry})
        at_once = g.edit_tree(base, edits)
        assert at_once == one_by_one
        g.flush()
    expected = {n: (BLOB_MODE, blob) for n in names[::2]}
    for name, entry in edits.items():
        expected.pop(name, None)
        if entry is not None:
            expected[name] = entry
    assert _mktree(repo, expected) == at_once


def test_a_tree_git_wrote_out_of_order_is_edited_into_order(repo):
    with GitRepo(repo) as g:
        blob = g.write_blob(b"y\n")
        g.flush()
    # git hash-object --literally writes what it is given: entries in the wrong order
    raw = b"".join(b"100644 %s\0%s" % (name, bytes.fromhex(blob)) for name in (b"b", b"a"))
    bad = subprocess.run(["git", "hash-object", "--literally", "-t", "tree", "-w", "--stdin"], cwd=repo,
                         input=raw, capture_output=True, check=True).stdout.decode().strip()
    with GitRepo(repo) as g:
        fixed = g.edit_tree(bad, {"c": (BLOB_MODE, blob)})
        assert g.read_tree(fixed) == {"a": (BLOB_MODE, blob), "b": (BLOB_MODE, blob), "c": (BLOB_MODE, blob)}
        g.flush()
    assert _mktree(repo, {n: (BLOB_MODE, blob) for n in "abc"}) == fixed


def test_a_tree_kept_from_one_repository_is_still_missing_in_another(repo, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    git(other, "init", "-q")
    with GitRepo(repo) as g:
        tree = g.write_tree({"f": (BLOB_MODE, g.write_blob(b"only here\n"))})
        g.flush()
        assert g.read_tree(tree)["f"][0] == BLOB_MODE
    with GitRepo(other) as g, pytest.raises(KeyError):
        g.read_tree(tree)


def test_runs_written_one_by_one_in_one_process_match_gits_reading(repo):
    """Each commit edits the tip this process wrote and keeps: git reads every run back, and the
    maps name the runs/ tree of each commit."""
    ids = []
    with GitRepo(repo) as g:
        for i in range(40):
            ids.append(api.commit_run(name=f"r{i}", params={"i": i}, repo=g).id)
    listed = git(repo, "ls-tree", "-r", "-d", "--name-only", f"{RUNS_REF}:runs").split()
    assert sorted(p.split("/")[1] for p in listed if "/" in p) == sorted(ids)
    maps = git(repo, "ls-tree", "--name-only", f"{RUNS_REF}:maps").split()
    assert f"runs-{git(repo, 'rev-parse', f'{RUNS_REF}:runs').strip()}" in maps
    with GitRepo(repo) as g:
        assert runsref.has_maps(g, g.ref(RUNS_REF))
        started = [run_id for minute in runsref.started_minutes(g, g.ref(RUNS_REF)) for _, run_id in minute]
    assert sorted(started) == sorted(ids)
    git(repo, "fsck", "--strict", "--no-progress")


def _objects_in_17(repo, n: int) -> list[str]:
    """Write ``n`` loose blobs whose ids start with 17 (where git estimates the loose count)."""
    found, i = [], 0
    while len(found) < n:
        data = f"blob {i}\n".encode()
        if hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest().startswith("17"):
            found.append(subprocess.run(["git", "hash-object", "-w", "--stdin"], cwd=repo, input=data,
                                        check=True, capture_output=True).stdout.decode().strip())
        i += 1
    assert all(sha.startswith("17") for sha in found)
    return found


def _in_pack(repo) -> int:
    counts = dict(line.split(": ") for line in git(repo, "count-objects", "-v").splitlines())
    return int(counts["in-pack"])


def test_a_commit_asks_git_to_pack_exactly_when_git_would(repo):
    """git packs when objects/17 holds more than ceil(gc.auto / 256) objects; a temporary file
    there is not an object. Asking earlier would start a git that does nothing, every commit."""
    git(repo, "config", "gc.auto", "512")  # git's threshold: more than 2 objects in objects/17
    _objects_in_17(repo, 2)
    (repo / ".git" / "objects" / "17" / "tmp_obj_1_1").write_bytes(b"left by a killed writer")
    with GitRepo(repo) as g:
        assert g.loose_object_estimate() == 2 * 256
        runsref._maybe_pack(g)
    assert _in_pack(repo) == 0
    assert subprocess.run(["git", "-c", "gc.autoDetach=false", "gc", "--auto", "--quiet"], cwd=repo,
                          check=True, capture_output=True).returncode == 0
    assert _in_pack(repo) == 0  # git agrees: nothing to do yet
    _objects_in_17(repo, 3)
    with GitRepo(repo) as g:
        assert g.loose_object_estimate() == 3 * 256
        runsref._maybe_pack(g)
    assert _in_pack(repo) > 0
    git(repo, "fsck", "--strict", "--no-progress")


def _packs(repo) -> int:
    return len(list((repo / ".git" / "objects" / "pack").glob("*.idx")))


def test_runs_started_on_one_path_share_the_repository_and_see_its_settings_change(repo):
    """start_run(repo=<path>) keeps the repository open for the next run on that path; a setting
    changed between runs still counts (core.fsync=committed writes a run as one pack)."""
    with api.start_run(name="one", repo=repo):
        api.log_param("a", 1)
    assert _packs(repo) == 0  # git's default: loose objects
    git(repo, "config", "core.fsync", "committed")
    with api.start_run(name="two", repo=repo):
        api.log_param("a", 2)
    assert _packs(repo) == 1
    assert sorted(r.name for r in api.search_runs(repo=repo)) == ["one", "two"]
    git(repo, "fsck", "--strict", "--no-progress")


def test_a_repository_made_again_at_the_same_path_is_opened_afresh(tmp_path):
    path = tmp_path / "again"
    for round_ in range(2):
        if path.exists():
            subprocess.run(["rm", "-rf", str(path)], check=True)
        path.mkdir()
        git(path, "init", "-q")
        (path / "train.py").write_text(f"print({round_})\n")
        git(path, "add", ".")
        git(path, "commit", "-q", "-m", "initial")
        for i in range(3):
            with api.start_run(name=f"r{round_}-{i}", repo=path):
                api.log_metric("m", float(i))
        assert sorted(r.name for r in api.search_runs(repo=path)) == [f"r{round_}-{i}" for i in range(3)]
        git(path, "fsck", "--strict", "--no-progress")
