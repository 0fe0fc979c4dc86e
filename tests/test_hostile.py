"""A stranger with push rights crafts runs with git plumbing; a colleague's gitml must stay safe.

Each hostile shape is written the way an attacker would (hash-object, update-index on a
private index, write-tree, commit-tree, update-ref, git push), never through gitml. The victim
then pulls, lists, shows, diffs, fetches artifacts, pushes, and runs the pre-push hook: bad runs
are named and refused, nothing is written outside its folder, nothing is uploaded that is not a
real object, and every other run keeps working.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from conftest import craft, git, gitml

import gitml as api
from gitml import artifacts, sync
from gitml.core.errors import BadInputError, CorruptRunError, GitmlError

RUNS_REF = "refs/gitml/runs"
BAD_ID = "ab" + "1" * 30


def _run_yaml(run_id: str, **extra: str) -> bytes:
    fields = {"schema": "1", "id": f'"{run_id}"', "name": '"evil"', "experiment": '"default"',
              "status": '"FINISHED"', "start_time": '"2026-11-30T10:00:00.000Z"', **extra}
    return "".join(f"{k}: {v}\n" for k, v in sorted(fields.items())).encode()


def bad_run(run_id: str = BAD_ID, **files: bytes) -> dict[str, bytes]:
    base = f"runs/{run_id[:2]}/{run_id}/"
    out = {base + "run.yaml": _run_yaml(run_id)}
    out.update({base + name.replace("_", "."): data for name, data in files.items()})
    return out


@pytest.fixture
def team(tmp_path):
    """origin (bare), attacker clone ``evil`` and ``victim`` sharing an artifact store."""
    origin = tmp_path / "origin.git"
    git(tmp_path, "init", "-q", "--bare", str(origin))
    store = tmp_path / "store"
    clones = []
    for name in ("victim", "evil"):
        path = tmp_path / name
        if name == "victim":
            path.mkdir()
            git(path, "init", "-q")
            (path / "train.py").write_text("print(1)\n")
            git(path, "add", ".")
            git(path, "commit", "-qm", "init")
            git(path, "remote", "add", "origin", str(origin))
            git(path, "push", "-q", "-u", "origin", "main")
        else:
            git(tmp_path, "clone", "-q", str(origin), str(path))
        artifacts.add_remote("store", str(store), default=True, local=True, repo=path)
        clones.append(path)
    victim, evil = clones
    model = tmp_path / "good-model.bin"
    model.write_bytes(b"a real model")
    good = api.commit_run(name="good", metrics={"acc": 0.9}, artifacts=[str(model)], repo=victim).id
    sync.push(repo=victim)
    sync.pull(repo=evil)
    return origin, victim, evil, store, good


def _secret_digest(secret: Path) -> str:
    """A 64-character 'digest' that joins onto the cache path as ``secret``'s absolute path."""
    target = str(secret)
    assert len(target) <= 62
    return ".." + "/" * (62 - len(target)) + target


@pytest.fixture
def secret():
    folder = Path(tempfile.mkdtemp(prefix="s", dir="/tmp"))
    path = folder / "id_rsa"
    path.write_bytes(b"-----BEGIN PRIVATE KEY----- do not leak")
    yield path
    shutil.rmtree(folder)


def _store_bytes(store: Path) -> list[bytes]:
    return [p.read_bytes() for p in store.rglob("*") if p.is_file()]


# -- 1. digests that become paths ------------------------------------------------------------


def test_crafted_digest_never_uploads_a_private_file(team, secret):
    origin, victim, evil, store, good = team
    digest = _secret_digest(secret)
    craft(evil, bad_run(artifacts_yaml=f'model.pkl:\n  kind: "file"\n  sha256: "{digest}"\n  size: 10\n'.encode()))
    git(evil, "push", "-q", "origin", f"{RUNS_REF}:{RUNS_REF}")

    pulled = gitml(victim, "pull")
    assert pulled.code == 1 and BAD_ID in pulled.err and "not a sha256 digest" in pulled.err
    assert len(pulled.err.strip().splitlines()) == 1 and "Traceback" not in pulled.err
    assert [r.id for r in api.search_runs(repo=victim)] == [good]  # nothing merged

    # Even with the bad run on the victim's own ref (an older gitml merged it), nothing leaks.
    git(victim, "fetch", "-q", "origin", f"+{RUNS_REF}:{RUNS_REF}")
    pushed = gitml(victim, "artifacts", "push")
    assert pushed.code == 1 and BAD_ID in pushed.err
    got = gitml(victim, "artifacts", "get", f"runs:/{BAD_ID}/model.pkl", "-o", "out.pkl")
    assert got.code == 1 and "not a sha256 digest" in got.err and not (victim / "out.pkl").exists()
    assert gitml(victim, "artifacts", "pull", BAD_ID, "-o", "out").code == 1
    assert not (victim / "out").exists()
    assert secret.read_bytes() not in _store_bytes(store)
    assert gitml(victim, "push").code == 1
    assert secret.read_bytes() not in _store_bytes(store)


def test_digest_shapes_are_refused_where_parsed(repo):
    from gitml.core import store
    from gitml.core.errors import BadInputError

    for digest in ("A" * 64, "0" * 63, "0" * 65, "../" + "0" * 61, "0" * 62 + "/x", "", None, 7):
        with pytest.raises(BadInputError):
            store.object_path(repo / "cache", digest)
        files = {"run.yaml": _run_yaml(BAD_ID),
                 "artifacts.yaml": f'm:\n  kind: "file"\n  sha256: {json.dumps(digest)}\n'.encode()}
        with pytest.raises(CorruptRunError, match="sha256|digest"):
            api_parse(files)


def api_parse(files):
    from gitml.core.formats import parse_run

    return parse_run(BAD_ID, files)


# -- 2. artifact names that leave the output folder -------------------------------------------


@pytest.mark.parametrize("name", ["../../escape.txt", "/tmp/gitml-escape-abs.txt", "a/../../b",
                                  "ok/./x", "a\\..\\..\\b", "c:/win", "new\nline",
                                  # git's own folder: a hook or a config written there runs code
                                  ".git/hooks/post-commit", "sub/.GIT/config", ".git./hooks/x", "git~1/config",
                                  ".g\u200cit/hooks/x", "sub/.git"])
def test_escaping_artifact_names_refuse_the_whole_run(team, name):
    origin, victim, evil, store, good = team
    real = hashlib.sha256(b"payload").hexdigest()
    shard = store / "sha256" / real[:2]
    shard.mkdir(parents=True, exist_ok=True)
    (shard / real[2:]).write_bytes(b"payload")  # the attacker can write the bucket too
    craft(victim, bad_run(artifacts_yaml=(
        f'"safe.txt":\n  kind: "file"\n  sha256: "{real}"\n  size: 7\n'
        f'{json.dumps(name)}:\n  kind: "file"\n  sha256: "{real}"\n  size: 7\n').encode()))
    out = victim / "out" / "deep"
    result = gitml(victim, "artifacts", "pull", BAD_ID, "-o", str(out))
    assert result.code == 1 and "unsafe path" in result.err and BAD_ID in result.err
    assert not (victim / "out").exists()  # refused whole: not even safe.txt
    assert not Path("/tmp/gitml-escape-abs.txt").exists()
    assert gitml(victim, "artifacts", "get", f"runs:/{BAD_ID}", "-o", str(out)).code == 1
    assert not (victim / "out").exists()
    assert gitml(victim, "runs", "show", good[:8]).code == 0


# -- 5. a hostile runs ref: bombs, shapes, sizes ----------------------------------------------


BOMB = (b'a: &a ["x","x","x","x","x","x","x","x","x"]\nb: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n'
        b"c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\nd: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
        b"e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\nf: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
        b"g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\nh: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
        b"i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n")

SHAPES = {
    "billion laughs": (bad_run(params_yaml=BOMB), BAD_ID, "aliases"),
    "5 MB param": (bad_run(params_yaml=b'big: "' + b"x" * (5 << 20) + b'"\n'), BAD_ID, "bound"),
    "deep nesting": (bad_run(tags_yaml=b"a: " + b"[" * 200 + b"]" * 200 + b"\n"), BAD_ID, "nested more than"),
    "file as shard": ({"runs/ab": b"not a folder"}, "runs/ab", "shard folder"),
    "non-hex shard": (bad_run("zz-not-a-run".ljust(32, "z")), "runs/zz", "not a shard folder"),
    "non-hex folder": ({"runs/ab/not-a-run/run.yaml": b"x: 1\n"}, "runs/ab/not-a-run", "not a run id"),
    "run in the wrong shard": ({f"runs/ab/ef{'4' * 30}/run.yaml": _run_yaml("ef" + "4" * 30)},
                               f"runs/ab/ef{'4' * 30}", "not a run id"),
    "file as run folder": ({f"runs/cd/cd{'2' * 30}": b"x"}, f"cd{'2' * 30}", "run folder"),
    "artifact entry is text": (bad_run(artifacts_yaml=b'model: "oops"\n'), BAD_ID, "not a mapping"),
    "commit is an option": (
        bad_run(**{"run.yaml": _run_yaml(BAD_ID, source='{commit: "--output=/tmp/gitml-pwned"}')}),
        BAD_ID, "commit id"),
    "5 MB run.yaml": (bad_run(**{"run.yaml": _run_yaml(BAD_ID) + b"# " + b"x" * (5 << 20) + b"\n"}),
                      BAD_ID, "bound"),
    "step past int64": (bad_run(metrics_yaml=b"acc:\n  step: " + b"9" * 30 + b"\n  value: 0.5\n"),
                        BAD_ID, "step"),
    "escape codes in the name": (bad_run(**{"run.yaml": _run_yaml(BAD_ID, name='"x\\u001b[31mRED\\nfake"')}),
                                 BAD_ID, "control character"),
    "a file and its folder": (bad_run(artifacts_yaml=(
        f'a:\n  kind: "file"\n  sha256: "{"0" * 64}"\n"a/b":\n  kind: "file"\n  sha256: "{"0" * 64}"\n'
    ).encode()), BAD_ID, "both a file and the folder"),
    "a 300-byte name": (bad_run(artifacts_yaml=f'{"n" * 300}:\n  kind: "file"\n  sha256: "{"0" * 64}"\n'.encode()),
                        BAD_ID, "longer than"),
    "a key given twice": (bad_run(params_yaml=b"a: 1\na: 2\n"), BAD_ID, "given twice"),
    "id mismatch": (bad_run(**{"run.yaml": _run_yaml("cd" + "3" * 30)}), BAD_ID, "names id"),
    "status": (bad_run(**{"run.yaml": _run_yaml(BAD_ID, status='"PWNED"')}), BAD_ID, "status"),
}


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_hostile_shapes_are_named_and_other_runs_still_work(team, shape):
    origin, victim, evil, store, good = team
    entries, key, words = SHAPES[shape]
    craft(evil, entries)
    git(evil, "push", "-q", "origin", f"{RUNS_REF}:{RUNS_REF}")

    pulled = gitml(victim, "pull")
    assert pulled.code == 1 and key.rstrip("/") in pulled.err and words in pulled.err, pulled.err
    assert "Traceback" not in pulled.err and len(pulled.err.strip().splitlines()) == 1
    before = git(victim, "rev-parse", RUNS_REF)

    # The same shape reached the victim's ref anyway (plain git, older gitml): readers cope.
    git(victim, "fetch", "-q", "origin", f"+{RUNS_REF}:{RUNS_REF}")
    listed = gitml(victim, "runs", "list", "--json")
    assert listed.code == 0 and [r["id"] for r in json.loads(listed.out)] == [good]
    assert key.rstrip("/") in listed.err and words in listed.err
    assert gitml(victim, "runs", "show", good[:8]).code == 0
    assert gitml(victim, "diff", good, good).code == 0
    assert gitml(victim, "artifacts", "ls", good).code == 0
    assert not Path("/tmp/gitml-pwned").exists()
    if key.startswith("runs/"):  # not a run: removed by its path as reported
        shown = next(line for line in listed.err.splitlines() if key in line)
        path = shown.split("warning: ", 1)[1].split(": ", 1)[0]
        deleted = gitml(victim, "runs", "delete", path)
    else:
        shown = gitml(victim, "runs", "show", key)
        assert shown.code == 1 and key in shown.err and "Traceback" not in shown.err
        deleted = gitml(victim, "runs", "delete", key)
    assert deleted.code == 0, deleted.err
    after = gitml(victim, "runs", "list", "--json")
    assert after.err == "" and [r["id"] for r in json.loads(after.out)] == [good]
    assert git(victim, "fsck", "--strict", check=False) is not None
    assert before  # the refused pull had left the ref alone until the forced fetch above


def test_unknown_and_irregular_files_in_a_run_folder_are_never_read(team):
    origin, victim, evil, store, good = team
    base = f"runs/{BAD_ID[:2]}/{BAD_ID}/"
    craft(victim, {base + "run.yaml": _run_yaml(BAD_ID), base + "junk.bin": b"\0" * (64 << 20)})
    listed = gitml(victim, "runs", "list", "--json")
    assert listed.code == 0 and listed.err == ""
    assert sorted(r["id"] for r in json.loads(listed.out)) == sorted([good, BAD_ID])
    assert gitml(victim, "runs", "show", BAD_ID).code == 0


def test_huge_numbers_and_escape_codes_are_shown_safely(repo):
    run = api.commit_run(name="odd", params={"seed": 10**400}, tags={"note": "\x1b]0;pwned\x07 and\nmore"},
                         repo=repo)
    shown = gitml(repo, "runs", "show", run.id)
    assert shown.code == 0 and "1" + "0" * 400 in shown.out
    assert "\x1b" not in shown.out and "\\x1b]0;pwned\\x07 and\\nmore" in shown.out
    listed = gitml(repo, "runs", "list")
    assert listed.code == 0 and "odd" in listed.out


def test_a_crafted_stage_tag_does_not_take_the_registry_down(team):
    origin, victim, evil, store, good = team
    git(victim, "tag", "-a", "toy#prod#9", "-m", "x\n\ngitml:\n  version: [1, 2]\n  run: \"../x\"", "HEAD")
    git(victim, "tag", "-a", "toy@v1.0.0", "-m", "x\n\ngitml:\n  sha256: [1]\n  version: {a: 1}", "HEAD")
    shown = gitml(victim, "registry", "show")
    assert shown.code == 0 and "toy" in shown.out and shown.err == ""
    which = gitml(victim, "registry", "which", "toy@prod")
    assert which.code in (0, 1) and "Traceback" not in which.err and "internal error" not in which.err


def test_gc_removes_what_killed_writers_left_behind(repo):
    import time

    api.commit_run(name="one", repo=repo)
    tmp = repo / ".git" / "gitml" / "cache" / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    (tmp / "old-partial").write_bytes(b"x" * 1000)
    (tmp / "fresh-partial").write_bytes(b"y")
    old = time.time() - 7200
    os.utime(tmp / "old-partial", (old, old))
    assert gitml(repo, "artifacts", "gc").code == 0
    assert not (tmp / "old-partial").exists() and (tmp / "fresh-partial").exists()


@pytest.mark.parametrize("mode", ["120000", "160000"])
def test_a_run_file_that_is_not_a_regular_file_is_refused(team, mode):
    origin, victim, evil, store, good = team
    craft(evil, bad_run())
    evil_tip = git(evil, "rev-parse", RUNS_REF).strip()
    index = evil / ".git" / "crafted-index"
    env = {**os.environ, "GIT_INDEX_FILE": str(index)}
    target = "params.yaml" if mode == "120000" else git(evil, "rev-parse", "HEAD").strip()
    sha = target if mode == "160000" else subprocess.run(
        ["git", "hash-object", "-w", "--stdin"], cwd=evil, input=target, capture_output=True,
        text=True).stdout.strip()
    for args in (["read-tree", evil_tip],
                 ["update-index", "--add", "--cacheinfo", f"{mode},{sha},runs/ab/{BAD_ID}/params.yaml"]):
        subprocess.run(["git", *args], cwd=evil, env=env, check=True)
    tree = subprocess.run(["git", "write-tree"], cwd=evil, env=env, capture_output=True, text=True).stdout.strip()
    commit = git(evil, "commit-tree", tree, "-p", evil_tip, "-m", "odd mode").strip()
    git(evil, "update-ref", RUNS_REF, commit)
    git(evil, "push", "-q", "origin", f"{RUNS_REF}:{RUNS_REF}")
    pulled = gitml(victim, "pull")
    assert pulled.code == 1 and "params.yaml is not a regular file" in pulled.err
    git(victim, "fetch", "-q", "origin", f"+{RUNS_REF}:{RUNS_REF}")
    listed = gitml(victim, "runs", "list", "--json")
    assert [r["id"] for r in json.loads(listed.out)] == [good] and "not a regular file" in listed.err


def test_a_blocked_push_names_the_hooks_first_reason():
    from gitml.core.gitrepo import remote_error as _last_error

    said = ("gitml: pre-push: warning: store is slow\n"
            "gitml: pre-push: gate on main: accuracy 0.5 < min 0.9\n"
            "gitml: pre-push: gate on main: loss 3 > max 1\n"
            "gitml: pre-push: push blocked (GITML_SKIP_HOOKS=1 or --no-verify bypasses it)\n"
            "error: failed to push some refs to 'https://x:secret@host/r.git?access_token=tok'\n")
    line = _last_error(said, 1)
    assert line == ("the pre-push hook blocked it: gate on main: accuracy 0.5 < min 0.9 "
                    "(and 1 more: git push shows them all)")


def test_debug_keeps_the_exit_code_of_the_error_class(repo):
    shown = gitml(repo, "--debug", "runs", "show", "zzzz")
    assert shown.code == 2 and "Traceback" in shown.err
    assert gitml(repo, "--debug", "nosuch").code == 2


def test_history_with_a_bad_digest_is_refused(team):
    origin, victim, evil, store, good = team
    craft(evil, bad_run(history_tsv=b"# full history: sha256:../../etc/passwd\n"))
    git(evil, "push", "-q", "origin", f"{RUNS_REF}:{RUNS_REF}")
    pulled = gitml(victim, "pull")
    assert pulled.code == 1 and BAD_ID in pulled.err and "digest" in pulled.err
    git(victim, "fetch", "-q", "origin", f"+{RUNS_REF}:{RUNS_REF}")
    shown = gitml(victim, "runs", "show", BAD_ID)
    assert shown.code == 1 and "digest" in shown.err
    pushed = gitml(victim, "artifacts", "push")
    assert pushed.code == 1 and BAD_ID in pushed.err


def test_pull_exclude_bad_merges_the_rest_and_pushes_the_removal(team):
    origin, victim, evil, store, good = team
    fine = api.commit_run(name="evil-but-fine", metrics={"acc": 0.5}, repo=evil).id
    craft(evil, bad_run(params_yaml=BOMB))
    git(evil, "push", "-q", "origin", f"{RUNS_REF}:{RUNS_REF}")
    assert gitml(victim, "pull").code == 1
    result = gitml(victim, "pull", "--exclude-bad")
    assert result.code == 0 and result.err.startswith("gitml: warning: left out: run " + BAD_ID), result.err
    assert len(result.err.splitlines()) == 1
    assert sorted(r.id for r in api.search_runs(repo=victim)) == sorted([good, fine])
    assert gitml(victim, "push").code == 0
    assert gitml(evil, "pull").code == 0
    assert sorted(r.id for r in api.search_runs(repo=evil)) == sorted([good, fine])


def test_pre_push_hook_refuses_a_crafted_run(team):
    origin, victim, evil, store, good = team
    assert gitml(victim, "hooks", "install").code == 0
    twin = BAD_ID[:-1] + "2"  # same 8-digit prefix: the hook must name each by its full id
    craft(victim, bad_run(params_yaml=BOMB) | bad_run(twin, tags_yaml=b"t: 1\nt: 2\n"))
    proc = subprocess.run(["git", "push", "origin", f"{RUNS_REF}:{RUNS_REF}"], cwd=victim,
                          capture_output=True, text=True)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert f"gitml runs delete {BAD_ID})" in proc.stderr and f"gitml runs delete {twin})" in proc.stderr
    pushed = gitml(victim, "push")  # gitml push reads the runs itself before git is asked
    assert pushed.code == 1 and BAD_ID in pushed.err and len(pushed.err.strip().splitlines()) == 1
    ambiguous = gitml(victim, "runs", "delete", BAD_ID[:8])
    assert ambiguous.code == 2 and BAD_ID in ambiguous.err and twin in ambiguous.err


# -- 7. odd file names are refused when recorded --------------------------------------------


@pytest.mark.parametrize("odd", ["a\nb", "tab\there", "back\\slash", "bell\x07", "n" * 220])
def test_odd_file_names_are_refused_when_recorded(repo, odd):
    folder = repo / "d"
    folder.mkdir()
    (folder / "fine.txt").write_text("ok")
    (folder / odd).write_text("x")
    result = gitml(repo, "commit-run", "-a", "d")
    assert result.code == 2 and "cannot record" in result.err and len(result.err.strip().splitlines()) == 1
    assert git(repo, "rev-parse", "-q", "--verify", RUNS_REF, check=False).strip() == ""


def test_one_unsafe_manifest_does_not_block_the_other_runs(team):
    origin, victim, evil, store, good = team
    manifest = json.dumps({"files": [{"path": "a\nb", "sha256": "0" * 64, "size": 1, "mode": 420}]}).encode()
    digest = hashlib.sha256(manifest).hexdigest()
    cached = victim / ".git" / "gitml" / "cache" / "sha256" / digest[:2] / digest[2:]
    cached.parent.mkdir(parents=True, exist_ok=True)
    cached.write_bytes(manifest)
    craft(victim, bad_run(artifacts_yaml=f'd:\n  kind: "dir"\n  sha256: "{digest}"\n'.encode()))
    other = victim / "other.bin"
    other.write_bytes(b"another model")
    second = api.commit_run(name="second", artifacts=[str(other)], repo=victim)
    result = gitml(victim, "artifacts", "push")
    assert result.code == 1 and BAD_ID in result.err and "unsafe" in result.err
    assert b"another model" in _store_bytes(store)
    status = artifacts.status(repo=victim)
    assert BAD_ID in status.refused and all(s.remote for s in status) and second


# -- 3. gc racing writers --------------------------------------------------------------------


GC_LOOP = """
import os, subprocess, sys, time
end = time.time() + 120
while time.time() < end and not os.path.exists(sys.argv[1]):
    subprocess.run([sys.executable, "-m", "gitml", "artifacts", "gc"], capture_output=True)
"""


def test_gc_racing_commit_run_loses_nothing(repo, tmp_path):
    """The issue's race, with real processes: gc in a loop while runs reuse old, unreferenced
    objects (their age alone would let gc take them) and store new ones."""
    import sys
    import time

    files = []
    for i in range(16):
        path = tmp_path / f"a{i}.bin"
        path.write_bytes(os.urandom(2_000_000))
        files.append(path)
    first = api.commit_run(name="old", artifacts=[str(p) for p in files[::2]], repo=repo).id
    api.delete_run(first, repo=repo)
    old = time.time() - 7200
    cache = repo / ".git" / "gitml" / "cache" / "sha256"
    for obj in cache.rglob("*"):
        if obj.is_file():
            os.utime(obj, (old, old))
    stop = tmp_path / "stop"
    loop = subprocess.Popen([sys.executable, "-c", GC_LOOP, str(stop)], cwd=repo)
    try:
        made = []
        for i in range(16):  # even: reuses an old unreferenced object; odd: a new one
            result = gitml(repo, "commit-run", "-n", f"g{i}", "-a", str(files[i]))
            assert result.code == 0, result.err
            made.append(result.out.strip())
    finally:
        stop.touch()
        loop.wait()
    for run_id in made:
        for ref in artifacts.ls(run_id, repo=repo):
            from gitml.core import store

            assert store.object_path(repo / ".git" / "gitml" / "cache", ref.digest).exists(), run_id


# -- 4. a stale lock ---------------------------------------------------------------------------


def test_stale_ref_lock_is_named_at_once(repo):
    import time

    api.commit_run(name="first", repo=repo)
    lock = repo / ".git" / "refs" / "gitml" / "runs.lock"
    lock.write_text("")
    old = time.time() - 120
    os.utime(lock, (old, old))
    started = time.monotonic()
    result = gitml(repo, "commit-run", "-n", "second")
    took = time.monotonic() - started
    assert result.code == 1 and str(lock) in result.err and "rm '" in result.err
    assert len(result.err.strip().splitlines()) == 1
    assert took < 30  # not the minute of retries it used to cost (generous: a loaded CI box)
    lock.unlink()
    assert gitml(repo, "commit-run", "-n", "second").code == 0


def test_fresh_lock_is_waited_for(repo):
    import threading

    api.commit_run(name="first", repo=repo)
    lock = repo / ".git" / "refs" / "gitml" / "runs.lock"
    lock.write_text("")
    threading.Timer(1.0, lock.unlink).start()
    run_id = api.commit_run(name="second", repo=repo).id
    assert run_id in [r.id for r in api.search_runs(repo=repo)]


def test_registry_meta_from_a_tag_is_validated(team):
    origin, victim, evil, store, good = team
    from gitml.core.registry import parse_message

    meta = parse_message("churn v1\n\ngitml:\n  run: \"../../x\"\n  path: \"../../etc/passwd\"\n"
                         "  sha256: \"..//etc/passwd\"\n")
    assert meta.get("run") is None and meta.get("path") is None and meta.get("sha256") is None
    with pytest.raises(GitmlError):
        artifacts.download("runs:/../../etc/passwd", victim / "x", repo=victim)


@pytest.mark.parametrize("name", ["../evil", "a/b", "-x", "x" * 65, "a b"])
def test_remote_names_from_gitml_yaml_are_checked_where_read(repo, name):
    (repo / "gitml.yaml").write_text(f"remotes:\n  {json.dumps(name)}:\n    url: /tmp/x\n")
    result = gitml(repo, "remote", "list")
    assert result.code == 2 and "remote name" in result.err and len(result.err.strip().splitlines()) == 1


def test_a_side_of_a_three_dot_diff_that_is_no_revision_is_named(repo):
    result = gitml(repo, "diff", "nosuch...HEAD")
    assert result.code == 2 and "'nosuch' in 'nosuch...HEAD' is not a git revision" in result.err


def test_a_branch_cannot_loosen_the_goals_it_is_diffed_against(repo):
    """`gitml diff main feature --fail-on-regression` judges by main's goals, not feature's."""
    (repo / "gitml.yaml").write_text("metrics:\n  acc: {direction: max, tolerance: 0.01}\n")
    git(repo, "add", "gitml.yaml")
    git(repo, "commit", "-qm", "goals")
    api.commit_run(name="base", metrics={"acc": 0.9}, repo=repo)
    git(repo, "checkout", "-qb", "feature")
    (repo / "gitml.yaml").write_text("metrics:\n  acc: {direction: max, tolerance: 0.5}\n")
    git(repo, "commit", "-qam", "loosen the goal")
    api.commit_run(name="worse", metrics={"acc": 0.7}, repo=repo)
    result = gitml(repo, "diff", "main", "feature", "--fail-on-regression")
    assert result.code == 1 and "acc" in result.err
    assert gitml(repo, "diff", "main...feature", "--fail-on-regression").code == 1


def test_exclude_bad_keeps_the_good_version_of_a_run_a_stranger_broke(team):
    origin, victim, evil, store, good = team
    base = f"runs/{good[:2]}/{good}/"
    craft(evil, {base + "params.yaml": BOMB})  # the stranger breaks an existing good run
    git(evil, "push", "-q", "origin", f"{RUNS_REF}:{RUNS_REF}")
    assert gitml(victim, "pull").code == 1
    result = gitml(victim, "pull", "--exclude-bad")
    assert result.code == 0 and good in result.err
    assert [r.id for r in api.search_runs(repo=victim)] == [good]
    assert api.get_run(good, repo=victim).metrics == {"acc": 0.9}


def test_keys_checked_once_still_refuse_their_bad_neighbours():
    """A rebuild checks each distinct key once; a good key seen before never lets a bad one by."""
    from gitml.core.formats import parse_run

    good_id, bad_id = "ab" + "2" * 30, "ab" + "3" * 30

    def files(run_id: str, params: bytes) -> dict[str, bytes]:
        return {"run.yaml": _run_yaml(run_id), "params.yaml": params}

    for _ in range(2):  # the second read takes the checked-key path
        assert parse_run(good_id, files(good_id, b'lr: 0.1\n"val/loss": 1\n')).params == {"lr": 0.1, "val/loss": 1}
    for params, words in [(b'"lr\\u001b[31m": 1\n', "control character"),  # a good key's bad neighbour
                          (b'"lr/../x": 1\n', "path segment"),
                          (b"1: 2\n", "must be a string"),  # a non-text key (the PyYAML fallback)
                          (b'"' + b"k" * 251 + b'": 1\n', "longer than")]:
        with pytest.raises(CorruptRunError, match=words.replace("/", ".")):
            parse_run(bad_id, files(bad_id, params))


@pytest.mark.parametrize("path", [".git", ".git/config", "a/.Git/hooks/post-commit", "git~1/x", "sub/.git"])
def test_a_run_cannot_log_into_a_git_folder(repo, tmp_path, path):
    hooks = tmp_path / "hooks"
    hooks.mkdir()
    (hooks / "post-commit").write_text("#!/bin/sh\necho PWNED\n")
    with api.start_run(repo=repo):
        with pytest.raises(BadInputError, match=".git segment"):
            api.log_text("x", path)
        with pytest.raises(BadInputError, match=".git segment"):
            api.log_artifact(str(hooks), path)
    assert api.search_runs(repo=repo)[0].artifacts == {}  # nothing of it was logged
    assert not (repo / ".git" / "hooks" / "post-commit").exists()
