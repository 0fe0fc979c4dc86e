"""The runs ref's lookup maps: a fresh clone answers without building the index (issue 12, item 1).

Every commit on the runs ref carries ``maps/commits/<c[:2]>/<c>/<run id>``,
``maps/started/…/<SS.mmm>-<run id>`` and ``maps/runs-<id>`` (the ``runs/`` tree they describe). These
tests hold the maps to what the runs say after writes, deletes and merges, read by the real git
CLI; show that ``diff``, ``check`` and ``runs list`` in a fresh clone read only the runs they
need and build no index; and that refs without maps, or with maps a writer left stale, are read
through the index as before.
"""

from __future__ import annotations

import json
import subprocess

from conftest import git, gitml

import gitml as api
from gitml import sync
from gitml.core import index, runsref
from gitml.core.gitrepo import GitRepo
from gitml.core.workspace import open_workspace
from gitml.diff import diff as run_diff

RUNS_REF = runsref.RUNS_REF


def tree_paths(repo, prefix: str) -> set[str]:
    listed = git(repo, "ls-tree", "-r", "--name-only", RUNS_REF, "--", prefix).split()
    return {path[len(prefix):] for path in listed}


def expected_maps(repo) -> set[str]:
    """The map entries the runs on the ref call for, from each run's own record."""
    paths = set()
    ids = {p.split("/")[1] for p in tree_paths(repo, "runs/")}
    for run_id in ids:
        run = json.loads(gitml(repo, "runs", "show", run_id, "--json").out)
        commit, start = run["source"].get("commit"), run["start_time"]
        if commit:
            paths.add(f"commits/{commit[:2]}/{commit}/{run_id[:2]}/{run_id}")
        paths.add(f"started/{start[:10]}/{start[11:13]}/{start[14:16]}/{run_id[:2]}/{start[17:23]}-{run_id}")
    return paths


def assert_maps_follow_runs(repo) -> None:
    runs_tree = git(repo, "rev-parse", f"{RUNS_REF}:runs").strip()
    assert tree_paths(repo, "maps/") - {f"runs-{runs_tree}"} == expected_maps(repo)
    assert f"runs-{runs_tree}" in tree_paths(repo, "maps/")
    fsck = subprocess.run(["git", "fsck", "--strict", "--no-progress"], cwd=repo, capture_output=True, text=True)
    assert fsck.returncode == 0 and fsck.stderr == "", fsck.stderr


def commit_code(repo, name: str) -> str:
    (repo / f"{name}.txt").write_text(name)
    git(repo, "add", ".")
    git(repo, "commit", "-qm", name)
    return git(repo, "rev-parse", "HEAD").strip()


def test_maps_follow_writes_deletes_and_merges(clones):
    origin, a, b = clones
    first = api.commit_run(name="a1", metrics={"acc": 0.5}, repo=a).id
    api.commit_run(name="a2", metrics={"acc": 0.6}, repo=a)
    commit_code(a, "feature")
    with api.start_run(name="fluent", repo=a):
        api.log_metric("acc", 0.7)
    assert_maps_follow_runs(a)
    api.delete_run(first, repo=a)
    assert_maps_follow_runs(a)
    sync.push(repo=a)
    # b writes its own runs, then pulls a's: a real merge of the two refs
    git(b, "pull", "-q", "origin", "main")
    api.commit_run(name="b1", metrics={"acc": 0.1}, repo=b)
    sync.pull(repo=b)
    assert git(b, "rev-list", "--count", "--merges", RUNS_REF).strip() == "1"
    assert_maps_follow_runs(b)
    assert len(expected_maps(b)) == 2 * 3  # b1, a2, fluent: each in both maps


def test_a_fresh_clone_diffs_reading_only_the_two_commits_runs(clones, monkeypatch, tmp_path):
    origin, a, _ = clones
    base = git(a, "rev-parse", "HEAD").strip()
    api.commit_run(name="base0", metrics={"acc": 0.28}, repo=a)
    api.commit_run(name="base1", metrics={"acc": 0.29}, repo=a)
    feature = commit_code(a, "feature")
    api.commit_run(name="new", metrics={"acc": 0.9}, repo=a)
    commit_code(a, "later")
    for n in range(30):  # runs of another commit: a diff of base and feature never reads them
        api.commit_run(name=f"other{n}", metrics={"acc": n / 100}, repo=a)
    git(a, "push", "-q", "origin", "main")
    sync.push(repo=a)
    fresh = tmp_path / "fresh"
    git(tmp_path, "clone", "-q", str(origin), str(fresh))
    git(fresh, "fetch", "-q", "origin", f"{RUNS_REF}:{RUNS_REF}")

    read: list[str] = []
    real = runsref.read_runs_files
    monkeypatch.setattr(runsref, "read_runs_files",
                        lambda repo, trees, names=None: (read.extend(trees), real(repo, trees, names))[1])
    result = run_diff(base, feature, repo=fresh)
    assert [side.run.name for side in result.sides] == ["base1", "new"]
    assert {row.key for row in result.rows} >= {"acc"}
    with GitRepo(fresh) as g:
        assert not index.index_path(g).exists()  # no index was built
    # the runs of the two commits, and none of the 30 others on the ref
    assert {api.get_run(run_id, repo=fresh).name for run_id in set(read)} == {"base0", "base1", "new"}

    shown = gitml(fresh, "diff", base, feature)
    assert shown.code == 0 and "0.29" in shown.out and "0.9" in shown.out, shown.err


def test_a_fresh_clone_lists_its_newest_runs_as_the_index_would(clones, tmp_path):
    origin, a, _ = clones
    for n in range(12):
        api.commit_run(name=f"r{n:02d}", metrics={"acc": n}, repo=a)
    sync.push(repo=a)
    fresh = tmp_path / "fresh"
    git(tmp_path, "clone", "-q", str(origin), str(fresh))
    git(fresh, "fetch", "-q", "origin", f"{RUNS_REF}:{RUNS_REF}")
    quick = gitml(fresh, "runs", "list", "-n", "5", "--json")
    assert quick.code == 0 and quick.err == ""
    newest = json.loads(quick.out)[0]["id"]
    shown = gitml(fresh, "runs", "show", newest[:6])  # a prefix: found in its shard, no index
    assert shown.code == 0 and "r11" in shown.out
    assert gitml(fresh, "runs", "show", "ffff" if not newest.startswith("ffff") else "0000").code == 2
    with GitRepo(fresh) as g:
        assert not index.index_path(g).exists()
    assert gitml(fresh, "index", "rebuild").code == 0
    full = gitml(fresh, "runs", "list", "-n", "5", "--json")
    assert json.loads(quick.out) == json.loads(full.out)
    assert [r["name"] for r in json.loads(full.out)] == ["r11", "r10", "r09", "r08", "r07"]


def test_maps_left_stale_by_another_writer_are_not_used(repo):
    """A run written by a tool that does not keep the maps (plain git here) is still found."""
    kept = api.commit_run(name="kept", metrics={"acc": 0.5}, repo=repo)
    other = api.commit_run(name="other", metrics={"acc": 0.4}, repo=repo)
    # plain git: copy 'other' under a new id, leaving maps/ as it was
    new_id = "ab" + "1" * 30
    tree = git(repo, "rev-parse", f"{RUNS_REF}:runs/{other.id[:2]}/{other.id}").strip()
    files = {}
    for line in git(repo, "ls-tree", tree).splitlines():
        _, _, sha, name = line.split(None, 3)
        files[name] = git(repo, "cat-file", "blob", sha)
    files["run.yaml"] = files["run.yaml"].replace(other.id, new_id).replace("other", "copied")
    work = dict(files)
    root = git(repo, "rev-parse", f"{RUNS_REF}^{{tree}}").strip()
    env_index = repo / ".git" / "plain-index"
    env = {"GIT_INDEX_FILE": str(env_index)}
    import os

    def plain(*args, data=None):
        proc = subprocess.run(["git", *args], cwd=repo, env={**os.environ, **env}, input=data,
                              capture_output=True, text=True, check=True)
        return proc.stdout.strip()

    plain("read-tree", root)
    for name, text in work.items():
        sha = plain("hash-object", "-w", "--stdin", data=text)
        plain("update-index", "--add", "--cacheinfo", f"100644,{sha},runs/ab/{new_id}/{name}")
    commit = plain("commit-tree", plain("write-tree"), "-p", git(repo, "rev-parse", RUNS_REF).strip(), "-m", "plain")
    git(repo, "update-ref", RUNS_REF, commit)

    with GitRepo(repo) as g:
        assert not runsref.has_maps(g, g.ref(RUNS_REF))  # maps/runs-<id> names the old runs/ tree
    head = git(repo, "rev-parse", "HEAD").strip()
    with open_workspace(repo) as ws:
        assert sorted(r.name for r in ws.index.runs_at([head])) == ["copied", "kept", "other"]
    # the next gitml write does not vouch for maps it cannot trust: it drops them
    api.commit_run(name="after", repo=repo)
    assert tree_paths(repo, "maps/") == set()
    listed = gitml(repo, "runs", "list", "--json")
    assert {r["name"] for r in json.loads(listed.out)} == {"kept", "other", "copied", "after"}
    assert kept.id in listed.out


def test_a_map_entry_under_the_wrong_commit_is_not_believed(repo):
    run = api.commit_run(name="honest", metrics={"acc": 0.5}, repo=repo)
    elsewhere = commit_code(repo, "elsewhere")
    with GitRepo(repo) as g, open_workspace(repo) as ws:
        tip = g.ref(RUNS_REF)
        # what a stranger could push: the run entered under a commit it was not made from
        root = g.read_tree(g.read_commit(tip)[0])
        maps = g.read_tree(root["maps"][1])
        commits = runsref._edit_tree(g, maps["commits"][1], {
            (elsewhere[:2], elsewhere, run.id[:2], run.id): g.write_blob(b"")})
        maps["commits"] = (runsref.TREE_MODE, commits)
        root["maps"] = (runsref.TREE_MODE, g.write_tree(maps))
        forged = g.write_commit(g.write_tree(root), [tip], "forged")
        g.flush()
        assert g.set_ref_if_equals(RUNS_REF, tip, forged)
        assert runsref.runs_of_commits(g, forged, [elsewhere]) == {elsewhere: [run.id]}
        assert ws.index.runs_at([elsewhere]) == []  # the run itself says where it was made


def test_older_refs_without_maps_stay_readable_and_get_none(repo):
    api.commit_run(name="one", repo=repo)
    # the ref as a version before the maps wrote it: runs/ only
    root = git(repo, "rev-parse", f"{RUNS_REF}^{{tree}}").strip()
    runs_tree = git(repo, "rev-parse", f"{RUNS_REF}:runs").strip()
    bare = subprocess.run(["git", "mktree"], cwd=repo, input=f"040000 tree {runs_tree}\truns\n",
                          capture_output=True, text=True, check=True).stdout.strip()
    assert bare != root
    old = git(repo, "commit-tree", bare, "-m", "before maps").strip()
    git(repo, "update-ref", RUNS_REF, old)
    api.commit_run(name="two", repo=repo)
    assert tree_paths(repo, "maps/") == set()  # not half a map on a ref that had none
    head = git(repo, "rev-parse", "HEAD").strip()
    with open_workspace(repo) as ws:
        assert sorted(r.name for r in ws.index.runs_at([head])) == ["one", "two"]
    listed = gitml(repo, "runs", "list", "--json")
    assert [r["name"] for r in json.loads(listed.out)] == ["two", "one"]


def _forge(repo, edit) -> None:
    """Rewrite the runs ref's tip tree with ``edit(g, root)`` (a stranger's push)."""
    with GitRepo(repo) as g:
        tip = g.ref(RUNS_REF)
        root = g.read_tree(g.read_commit(tip)[0])
        edit(g, root)
        forged = g.write_commit(g.write_tree(root), [tip], "forged")
        g.flush()
        assert g.set_ref_if_equals(RUNS_REF, tip, forged)


def test_a_run_recorded_before_the_first_commit_lists_and_searches(empty_repo):
    made = api.commit_run(name="pre", metrics={"acc": 0.1}, repo=empty_repo)
    assert gitml(empty_repo, "runs", "list").code == 0  # from the maps: no index yet
    assert gitml(empty_repo, "index", "rebuild").code == 0
    listed = gitml(empty_repo, "runs", "list", "--json")
    assert listed.code == 0 and [r["name"] for r in json.loads(listed.out)] == ["pre"]
    found = api.search_runs(repo=empty_repo)
    assert found[0].metrics == {"acc": 0.1} and found[0].id == made.id
    assert "commit_missing" not in found[0].source


def test_maps_naming_two_runs_trees_are_not_believed(repo):
    api.commit_run(name="one", repo=repo)

    def edit(g, root):
        maps = g.read_tree(root["maps"][1])
        maps["runs-" + "0" * 40] = (runsref.BLOB_MODE, g.write_blob(b""))  # beside the true one
        root["maps"] = (runsref.TREE_MODE, g.write_tree(maps))

    _forge(repo, edit)
    with GitRepo(repo) as g:
        assert not runsref.has_maps(g, g.ref(RUNS_REF))
    listed = gitml(repo, "runs", "list", "--json")
    assert listed.code == 0 and [r["name"] for r in json.loads(listed.out)] == ["one"]
    api.commit_run(name="two", repo=repo)
    assert tree_paths(repo, "maps/") == set()  # the next writer does not vouch for them


def test_bad_started_entries_never_stand_in_for_real_runs(repo):
    older = api.commit_run(name="older", repo=repo)
    newest = api.commit_run(name="newest", repo=repo)
    ghost = "ab" + "2" * 30  # an entry naming no run, filed in a later hour

    def edit(g, root):
        maps = g.read_tree(root["maps"][1])
        blob = g.write_blob(b"")
        started = runsref._edit_tree(g, maps["started"][1], {
            ("2099-01-01", "00", "00", ghost[:2], f"00.000-{ghost}"): blob,
            ("2098-01-01", "00", "00", older.id[:2], f"00.000-{older.id}"): blob,  # an old run filed as newer
        })
        maps["started"] = (runsref.TREE_MODE, started)  # runs/ unchanged: runs-<id> still holds
        root["maps"] = (runsref.TREE_MODE, g.write_tree(maps))

    _forge(repo, edit)
    quick = gitml(repo, "runs", "list", "-n", "1", "--json")
    assert quick.code == 0 and [r["id"] for r in json.loads(quick.out)] == [newest.id]
    both = gitml(repo, "runs", "list", "-n", "2", "--json")
    assert [r["name"] for r in json.loads(both.out)] == ["newest", "older"]


def test_a_run_is_filed_by_its_start_time_in_utc():
    run_id = "ab" * 16
    assert runsref.map_paths(run_id, None, "2026-11-30T23:30:00+05:00")[0][1:] == (
        "2026-11-30", "18", "30", "ab", f"00.000-{run_id}")
    assert runsref.map_paths(run_id, None, "2026-11-30 08:00:01.5Z")[0][1:] == (
        "2026-11-30", "08", "00", "ab", f"01.500-{run_id}")
    assert runsref.map_paths(run_id, None, "not a time") == []
    assert runsref.start_key("2026-11-27T10:23:27.123Z") == "2026-11-27T10:23:27.123Z"


def test_many_runs_in_one_minute_list_by_time_then_id_reading_only_those_shown(repo, monkeypatch):
    from gitml.core import formats
    from gitml.tracking.commit import write_runs

    stamp = "2026-11-30T10:00:00.000Z"
    later = "2026-11-30T10:00:00.001Z"
    with GitRepo(repo) as g:
        runs = [(formats.Run(id=f"{n:02x}" + "c" * 30, name=f"n{n}", experiment="default", status="FINISHED",
                             start_time=later if n in (7, 200) else stamp, end_time=stamp), [])
                for n in range(256)]
        write_runs(g, runs, "many runs, one minute")
    read: list[str] = []
    real = runsref.read_runs_files
    monkeypatch.setattr(runsref, "read_runs_files",
                        lambda repo, trees, names=None: (read.extend(trees), real(repo, trees, names))[1])
    with open_workspace(repo) as ws:
        names = [r.name for r in ws.index.newest(4)]
    assert names == ["n7", "n200", "n0", "n1"]  # the later two, then ties by id
    assert len(read) <= 4 + 8  # the runs shown and a few more, not the 256


def test_a_fresh_listing_marks_runs_whose_commit_is_gone(repo):
    commit_code(repo, "second")
    gone = api.commit_run(name="on-second", repo=repo).id
    git(repo, "reset", "-q", "--hard", "HEAD~1")
    git(repo, "reflog", "expire", "--expire=now", "--all")
    git(repo, "gc", "-q", "--prune=now")
    listed = json.loads(gitml(repo, "runs", "list", "--json").out)  # no index: from the maps
    assert [r["source"].get("commit_missing") for r in listed if r["id"] == gone] == [True]


def test_max_results_errors_name_max_results(repo):
    import pytest

    from gitml.core.errors import BadInputError

    with pytest.raises(BadInputError, match="bad max_results"):
        api.search_runs(max_results=-1, repo=repo)


def test_index_maps_gives_an_older_ref_the_maps_a_writer_would_have_kept(repo, tmp_path):
    """`gitml index maps` on a ref without maps writes exactly what writes would have kept."""
    api.commit_run(name="one", metrics={"acc": 0.1}, repo=repo)
    commit_code(repo, "next")
    api.commit_run(name="two", metrics={"acc": 0.2}, repo=repo)
    with api.start_run(name="three", repo=repo):
        api.log_param("lr", 0.1)
    kept = git(repo, "rev-parse", f"{RUNS_REF}:maps").strip()
    runs_tree = git(repo, "rev-parse", f"{RUNS_REF}:runs").strip()
    # the same runs as an older gitml (or plain git) leaves them: runs/ only, plus a run whose
    # run.yaml is unreadable (left out of the maps, as it is out of every answer)
    listing = git(repo, "ls-tree", runs_tree).strip()
    used = {line.rsplit("\t", 1)[1] for line in listing.splitlines()}
    broken = next(f"{n:02x}" for n in range(256) if f"{n:02x}" not in used) + "4" * 30
    with GitRepo(repo) as g:
        bad_run = g.write_tree({"run.yaml": (runsref.BLOB_MODE, g.write_blob(b"id: [unclosed\n"))})
        bad_shard = g.write_tree({broken: (runsref.TREE_MODE, bad_run)})
        g.flush()
    shards = subprocess.run(["git", "mktree"], cwd=repo, input=f"{listing}\n040000 tree {bad_shard}\t{broken[:2]}\n",
                            capture_output=True, text=True, check=True).stdout.strip()
    bare = subprocess.run(["git", "mktree"], cwd=repo, input=f"040000 tree {shards}\truns\n",
                          capture_output=True, text=True, check=True).stdout.strip()
    git(repo, "update-ref", RUNS_REF, git(repo, "commit-tree", bare, "-m", "before maps").strip())
    with GitRepo(repo) as g:
        assert not runsref.has_maps(g, g.ref(RUNS_REF))

    made = gitml(repo, "index", "maps")
    assert made.code == 0 and "lookup maps written for 3 runs" in made.out
    maps = git(repo, "rev-parse", f"{RUNS_REF}:maps").strip()
    entries = set(git(repo, "ls-tree", "--name-only", maps).split())
    assert entries == {"commits", "started", f"runs-{shards}"}
    for name in ("commits", "started"):  # the very trees the writers had kept for these runs
        assert git(repo, "rev-parse", f"{maps}:{name}") == git(repo, "rev-parse", f"{kept}:{name}")
    assert git(repo, "rev-parse", f"{RUNS_REF}:runs").strip() == shards  # no run changed
    assert_maps_follow_runs_fsck(repo)

    tip = git(repo, "rev-parse", RUNS_REF)
    again = gitml(repo, "index", "maps")
    assert again.code == 0 and "nothing written" in again.out and git(repo, "rev-parse", RUNS_REF) == tip
    api.commit_run(name="four", repo=repo)  # from now on every write keeps them
    with GitRepo(repo) as g:
        assert runsref.has_maps(g, g.ref(RUNS_REF))
    fresh = tmp_path / "fresh"
    git(tmp_path, "clone", "-q", str(repo), str(fresh))
    git(fresh, "fetch", "-q", "origin", f"{RUNS_REF}:{RUNS_REF}")
    listed = json.loads(gitml(fresh, "runs", "list", "--json").out)
    assert [r["name"] for r in listed] == ["four", "three", "two", "one"]
    with GitRepo(fresh) as g:
        assert not index.index_path(g).exists()  # answered from the maps


def test_index_maps_on_a_ref_without_runs_writes_nothing(empty_repo):
    made = gitml(empty_repo, "index", "maps")
    assert made.code == 0 and "nothing written" in made.out
    assert git(empty_repo, "rev-parse", "-q", "--verify", RUNS_REF, check=False).strip() == ""


def assert_maps_follow_runs_fsck(repo) -> None:
    fsck = subprocess.run(["git", "fsck", "--strict", "--no-progress"], cwd=repo, capture_output=True, text=True)
    assert fsck.returncode == 0 and fsck.stderr == "", fsck.stderr


def test_a_listing_from_the_maps_names_the_runs_it_cannot_read(repo):
    good = api.commit_run(name="good", repo=repo)
    broken = api.commit_run(name="broken", repo=repo)
    with GitRepo(repo) as g:  # a gitml writer (maps kept) stores a run no reader accepts
        files = runsref.read_run_files(g, runsref.run_tree(g, g.ref(RUNS_REF), broken.id))
        files["params.yaml"] = b"[1, 2]\n"
        runsref.commit_runs(g, {broken.id: runsref.write_run_tree(g, files)}, "broken")
    assert not index.index_path(GitRepo(repo)).exists()  # nobody searched yet
    listed = gitml(repo, "runs", "list")  # answered from the maps: no index to ask
    assert listed.code == 0 and "good" in listed.out and "broken" not in listed.out
    assert listed.err.startswith(f"gitml: warning: run {broken.id}") and good.id[:8] in listed.out
