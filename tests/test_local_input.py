"""Local files gitml reads as params and metrics: bounded, never expanded, never echoed.

Every refusal goes through the real CLI: one stderr line, exit code 2, the runs ref unchanged and
no run left in progress. Messages name the file, the line and column and the kind of problem;
they never repeat the file's text beyond a short, plain key name.
"""

from __future__ import annotations

import errno
import json
import os
import re
import subprocess

import pytest
from conftest import git, gitml, runs_tip
from test_bad_input import active_dirs, one_line, refused

import gitml as api
from gitml.errors import BadInputError, GitmlError
from gitml.tracking.commit import MAX_VALUES_DEPTH, MAX_VALUES_FILE_BYTES, read_values_file

SECRET = "hunter2-s3cr3t"


@pytest.fixture
def base(repo):
    api.commit_run(name="base", params={"model": "rf"}, metrics={"acc": 0.5}, repo=repo)
    return repo


def refused_file(repo, option: str, name: str, content: str | bytes) -> str:
    path = repo / name
    path.write_bytes(content if isinstance(content, bytes) else content.encode())
    line = refused(repo, "commit-run", option, name)
    assert SECRET not in line
    return line


# -- size bounds and non-regular files ----------------------------------------------------------


@pytest.mark.parametrize("option", ["--params", "--metrics"])
def test_devices_and_directories_are_refused_not_read(base, option):
    (base / "adir").mkdir()
    for path in ("/dev/zero", "/dev/urandom", "adir"):
        line = refused(base, "commit-run", option, path)
        assert line == (f"gitml: error: {path}: not a regular file "
                        "(give a YAML or JSON file, not a directory, device or pipe)")


def test_a_fifo_is_refused_without_waiting_for_a_writer(base):
    os.mkfifo(base / "pipe.json")
    assert "pipe.json: not a regular file" in refused(base, "commit-run", "--metrics", "pipe.json")


def test_files_past_the_bound_are_refused(base):
    big = base / "big.json"
    with open(big, "wb") as handle:  # valid JSON, one byte over the bound
        handle.write(b'{"a": "')
        handle.write(b"x" * (MAX_VALUES_FILE_BYTES - len(b'{"a": ""}') + 1))
        handle.write(b'"}')
    assert big.stat().st_size == MAX_VALUES_FILE_BYTES + 1
    line = refused(base, "commit-run", "--params", "big.json")
    assert line == ("gitml: error: big.json: larger than 16 MiB "
                    "(params and metrics files hold values; log big files as artifacts)")
    sparse = base / "sparse.yaml"  # 1 GiB that takes no disk: still only 16 MiB + 1 is read
    with open(sparse, "wb") as handle:
        handle.truncate(1 << 30)
    assert "sparse.yaml: larger than 16 MiB" in refused(base, "commit-run", "--metrics", "sparse.yaml")


def test_read_values_file_at_the_bound(tmp_path):
    path = tmp_path / "p.json"
    filler = "x" * (MAX_VALUES_FILE_BYTES - len('{"a": ""}'))
    path.write_text('{"a": "' + filler + '"}')
    assert path.stat().st_size == MAX_VALUES_FILE_BYTES
    assert read_values_file(path) == {"a": filler}


def test_unreadable_file_names_the_reason_only(base):
    if os.geteuid() == 0:
        pytest.skip("root reads files whatever their mode")
    (base / "locked.yaml").write_text("a: 1\n")
    os.chmod(base / "locked.yaml", 0)
    assert refused(base, "commit-run", "--params", "locked.yaml") == (
        "gitml: error: cannot read locked.yaml: Permission denied")


# -- YAML anchors, aliases and nesting ----------------------------------------------------------


BILLION_LAUGHS = "\n".join(
    ["a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    + [f"{chr(ord('a') + i)}: &{chr(ord('a') + i)} [{', '.join(['*' + chr(ord('a') + i - 1)] * 9)}]"
       for i in range(1, 9)]
) + "\n"


@pytest.mark.parametrize(
    ("content", "where"),
    [
        ("a: &x [1, 2]\nb: *x\n", "line 1, column 4"),
        ("a: 1\nb: &anchor 2\n", "line 2, column 4"),  # an anchor alone is refused too
        ("base: &b {lr: 0.1}\ntrain:\n  <<: *b\n", "line 1, column 7"),
        (BILLION_LAUGHS, "line 1, column 4"),
    ],
)
def test_yaml_anchors_and_aliases_are_refused(base, content, where):
    line = refused_file(base, "--params", "p.yaml", content)
    assert line == f"gitml: error: p.yaml: {where}: invalid YAML: anchors and aliases (&, *) are not allowed"


def test_deep_nesting_is_refused(base):
    deep_yaml = "a: " + "[" * 100_000 + "\n"  # the top mapping is level 1: the 64th [ is too deep
    line = refused_file(base, "--params", "deep.yaml", deep_yaml)
    assert line == (f"gitml: error: deep.yaml: line 1, column {3 + MAX_VALUES_DEPTH}: invalid YAML: "
                    f"nested more than {MAX_VALUES_DEPTH} levels deep")
    line = refused_file(base, "--metrics", "deep.json", "[" * 100_000)
    assert line == f"gitml: error: deep.json: nested more than {MAX_VALUES_DEPTH} levels deep"
    nested = "{" + '"k": {' * MAX_VALUES_DEPTH + '"v": 1' + "}" * (MAX_VALUES_DEPTH + 1)
    line = refused_file(base, "--metrics", "nested.json", nested)
    assert line == f"gitml: error: nested.json: nested more than {MAX_VALUES_DEPTH} levels deep"


def test_nesting_at_the_bound_is_read(tmp_path):
    path = tmp_path / "ok.json"
    path.write_text('{"k": ' * (MAX_VALUES_DEPTH - 1) + '{"v": 1}' + "}" * (MAX_VALUES_DEPTH - 1))
    assert read_values_file(path) == {".".join(["k"] * (MAX_VALUES_DEPTH - 1) + ["v"]): 1}


# -- messages never quote the file -------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("m.json", f'{{"acc": 0.9,\n "x": {SECRET}}}', "m.json: line 2, column 7: invalid JSON: Expecting value"),
        ("m.json", f'{{"acc": "{SECRET}"}}', "m.json: metric 'acc' must be a number, not a string"),
        ("m.json", '{"acc": null}', "m.json: metric 'acc' must be a number, not a null"),
        ("m.json", '{"acc": [1]}', "m.json: metric 'acc' must be a number, not a list"),
        ("m.yaml", f"acc: {SECRET}\n", "m.yaml: metric 'acc' must be a number, not a string"),
        ("m.yaml", f"acc: 1\nb: [unclosed {SECRET}\n", "m.yaml: line 3, column 1: invalid YAML: "
                                                       "did not find expected ',' or ']'"),
        ("m.yaml", f'acc: "\\q {SECRET}"\n', "m.yaml: line 1, column 7: invalid YAML: "
                                             "found unknown escape character"),
        ("m.yaml", f"a: !!python/object/apply:os.system ['{SECRET}']\n",
         "m.yaml: line 1, column 4: invalid YAML: could not determine a constructor for the tag …"),
        ("m.yaml", f'a: "{SECRET}\x01"\n', "m.yaml: line 1, column 19: invalid YAML: "
                                           "control characters are not allowed"),
        ("m.yaml", b"acc: 1\nb: \xff" + SECRET.encode() + b"\n", "m.yaml: line 2, column 4: not UTF-8 text"),
        ("m.yaml", f"{SECRET}:x:19000:0:99999:7:::\n",
         "m.yaml: metric a key (not shown: long or with unusual characters) must be a number, not a null"),
        ("m.yaml", f"root:$6${SECRET}$abc:19000:0:99999:7\nbin:*:19000\n",
         "m.yaml: expected a mapping of names to values, found a string"),
        ("m.yaml", f"- {SECRET}\n", "m.yaml: expected a mapping of names to values, found a list"),
        ("m.yaml", f'"x/../y": 1\nz: {SECRET}\n',
         "m.yaml: metric key has a '.', '..' or absolute path segment: 'x/../y'"),
        ("m.yaml", f'"{SECRET}\\x01": 1\n',
         "m.yaml: metric key contains a control character: "
         "a key (not shown: long or with unusual characters)"),
    ],
)
def test_messages_say_where_and_what_never_the_text(base, name, content, expected):
    assert refused_file(base, "--metrics", name, content) == f"gitml: error: {expected}"


def test_shadow_like_file_is_not_echoed(base):
    """The issue's case: a system file given by mistake (or on purpose) as metrics."""
    shadow = "".join(f"user{i}:$6$salt{i}${SECRET}{i}:19000:0:99999:7:::\n" for i in range(5))
    line = refused_file(base, "--metrics", "shadow", shadow)  # YAML reads "…:::" as a key
    assert line == ("gitml: error: shadow: metric a key (not shown: long or with unusual "
                    "characters) must be a number, not a null")
    if os.path.exists("/etc/shadow") and os.access("/etc/shadow", os.R_OK):
        line = refused(base, "commit-run", "--metrics", "/etc/shadow")
        with open("/etc/shadow") as handle:
            for entry in handle.read().split(":"):
                assert len(entry) < 3 or entry not in line.removeprefix("gitml: error: /etc/shadow"), entry


# -- keys that collide --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "content", "key"),
    [
        ("p.yaml", "train:\n  lr: 0.1\ntrain.lr: 0.2\n", "train.lr"),
        ("p.yaml", "train.lr: 0.2\ntrain:\n  lr: 0.1\n", "train.lr"),
        ("p.yaml", "a:\n  b:\n    c: 1\na.b:\n  c: 2\n", "a.b.c"),
        ("p.json", '{"a": {"b": 1}, "a.b": 2}', "a.b"),
    ],
)
@pytest.mark.parametrize("option", ["--params", "--metrics"])
def test_keys_flattening_to_one_name_are_refused(base, name, content, key, option):
    """(``1: x`` and ``'1': y`` in YAML are refused earlier, as one key given twice.)"""
    if option == "--metrics":
        content = content.replace("x", "1").replace("y", "2")
    line = refused_file(base, option, name, content)
    assert line == f"gitml: error: {name}: key {key!r} is given twice (nested and dotted, say)"


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("p.yaml", "lr: 0.1\nlr: 0.2\n", "p.yaml: line 2, column 1: invalid YAML: key 'lr' given twice"),
        ("p.json", '{"lr": 0.1, "lr": 0.2}', "p.json: key 'lr' is given twice"),
        ("p.json", '{"t": {"lr": 0.1, "lr": 0.2}}', "p.json: key 'lr' is given twice"),
    ],
)
def test_duplicate_keys_in_one_file_are_refused(base, name, content, expected):
    assert refused_file(base, "--params", name, content) == f"gitml: error: {expected}"


def test_later_files_and_options_win_across_files(base):
    """Across files the later one wins a shared key (as DVC's params files), and -p/-m win over
    every file; only within one file is a repeated key an error."""
    (base / "defaults.yaml").write_text("lr: 0.1\ndepth: 3\n")
    (base / "override.json").write_text('{"lr": 0.2}')
    (base / "m1.json").write_text('{"acc": 0.5, "loss": 1.0}')
    (base / "m2.yaml").write_text("acc: 0.7\n")
    result = gitml(base, "commit-run", "--params", "defaults.yaml", "--params", "override.json",
                   "-p", "depth=5", "--metrics", "m1.json", "--metrics", "m2.yaml")
    assert result.code == 0 and result.err == "", result.err
    run = api.get_run(result.out.strip(), repo=base)
    assert run.params == {"lr": 0.2, "depth": 5}
    assert run.metrics == {"acc": 0.7, "loss": 1.0}


def test_refusals_change_nothing_through_the_api(base):
    tip = runs_tip(base)
    (base / "a.yaml").write_text("a: &x 1\nb: *x\n")
    with pytest.raises(BadInputError) as info:
        api.commit_run(params_files=[base / "a.yaml"], repo=base)
    assert "anchors and aliases" in str(info.value) and info.value.exit_code == 2
    assert runs_tip(base) == tip and active_dirs(base) == []


def test_gitml_yaml_named_files_are_read_with_the_same_rules(base):
    (base / "gitml.yaml").write_text("params: [p.yaml]\nmetrics: [m.json]\n")
    (base / "p.yaml").write_text("a: &x [1]\nb: *x\n")
    (base / "m.json").write_text('{"acc": 1}')
    assert "p.yaml: line 1, column 4" in refused(base, "commit-run")
    os.remove(base / "p.yaml")
    os.mkfifo(base / "p.yaml")  # `is_file()` skips it, so the run is made from m.json alone
    result = gitml(base, "commit-run")
    assert result.code == 0, result.err
    assert api.get_run(result.out.strip(), repo=base).metrics == {"acc": 1.0}


def test_yaml_values_keep_their_types(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text("\ufeffa: 1\nb: 0.5\nc: true\nd: null\ne: [1, 2]\nf: {g: x, 'h i': y}\nj: {}\n")
    # An empty mapping stays a value (stored as its text, '{}', as MLflow would store it).
    assert read_values_file(path) == {"a": 1, "b": 0.5, "c": True, "d": None, "e": [1, 2],
                                      "f.g": "x", "f.h i": "y", "j": {}}
    empty = tmp_path / "e.json"
    empty.write_text("  \n")
    assert read_values_file(empty) == {}


def test_one_line_even_for_a_huge_key(base):
    (base / "k.json").write_text(json.dumps({"x" * 10_000: "v"}))
    line = refused(base, "commit-run", "--params", "k.json")
    assert line == ("gitml: error: k.json: param key longer than 250 characters: "
                    "a key (not shown: long or with unusual characters)")


# -- a full (or read-only) disk -------------------------------------------------------------------


# dulwich's half-written object file fails again when it is finalised: expected on a full disk.
full_disk = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


@pytest.fixture
def small_disk(tmp_path):
    """A real 1 MiB tmpfs holding a git repository (with one run), unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs to fill needs root (the tests run as root in CI)")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    assert done.returncode == 0, f"mount failed as root: {done.stderr}"
    try:
        repo = mount / "repo"
        repo.mkdir()
        git(repo, "init", "-q")
        git(repo, "commit", "-q", "--allow-empty", "-m", "initial")
        api.commit_run(name="before", metrics={"acc": 0.5}, repo=repo)
        yield repo
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(repo) -> None:
    """Take every free block of the disk ``repo`` is on."""
    fd = os.open(repo / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        while True:
            os.write(fd, b"\0" * 65536)
    except OSError as exc:
        assert exc.errno == errno.ENOSPC
    finally:
        os.close(fd)
    fd = os.open(repo / "filler", os.O_WRONLY | os.O_APPEND)
    try:
        while True:
            os.write(fd, b"\0")
    except OSError:
        pass
    finally:
        os.close(fd)


def free(repo) -> None:
    os.remove(repo / "filler")


@full_disk
def test_commit_run_on_a_full_disk_records_nothing_and_says_so(small_disk):
    repo = small_disk
    tip = runs_tip(repo)
    fill(repo)
    result = gitml(repo, "commit-run", "-n", "late", "-m", "acc=0.9", "-p", "lr=0.1")
    assert result.code == 1, result.err
    line = one_line(result)
    assert re.fullmatch(r"gitml: error: no space left on device while writing "
                        rf"{re.escape(str(repo))}/\.git\S*: free space and retry( \(nothing was recorded\))?",
                        line), line
    assert runs_tip(repo) == tip and active_dirs(repo) == []
    assert api.list_active_runs(repo=repo) == []
    free(repo)
    result = gitml(repo, "commit-run", "-n", "late", "-m", "acc=0.9", "-p", "lr=0.1")
    assert result.code == 0, result.err
    run = api.get_run(result.out.strip(), repo=repo)
    assert (run.name, run.metrics, run.params) == ("late", {"acc": 0.9}, {"lr": 0.1})


@full_disk
def test_fluent_run_whose_commit_fails_is_kept_marked_and_resumable(small_disk):
    repo = small_disk
    tip = runs_tip(repo)
    run = api.start_run(name="long", repo=repo)
    for step in range(20):
        api.log_metric("loss", 1 / (step + 1))
    api.log_param("lr", 0.01)
    fill(repo)
    with pytest.raises(GitmlError) as info:
        api.end_run()
    error = info.value
    assert error.exit_code == 1 and not isinstance(error, BadInputError)
    assert error.message == f"no space left on device while writing {repo / '.git'}: free space and retry"
    assert error.hint == f"the run is kept: gitml commit-run --resume {run.id} --status FINISHED"
    assert runs_tip(repo) == tip and api.active_run() is None
    (listed,) = api.list_active_runs(repo=repo)
    assert (listed["id"], listed["alive"], listed["commit_failed"]) == (run.id, False, True)
    table = gitml(repo, "runs", "list", "--active")
    assert table.code == 0 and "COMMIT FAILED" in table.out and run.id[:8] in table.out
    # Still full: resuming fails the same way and keeps the run.
    result = gitml(repo, "commit-run", "--resume", run.id)
    assert result.code == 1 and "no space left on device" in one_line(result)
    assert "the run is kept" in one_line(result) and active_dirs(repo) == [run.id]
    free(repo)
    result = gitml(repo, "commit-run", "--resume", run.id[:8])
    assert result.code == 0 and result.out.strip() == run.id, result.err
    done = api.get_run(run.id, repo=repo)
    assert done.status == "FINISHED" and done.params == {"lr": 0.01}
    assert done.metrics == {"loss": 1 / 20} and len(done.history) == 20
    assert active_dirs(repo) == [] and api.list_active_runs(repo=repo) == []


@full_disk
def test_start_run_and_log_artifact_on_a_full_disk(small_disk):
    repo = small_disk
    (repo / "model.bin").write_bytes(os.urandom(4096))
    run = api.start_run(name="artifacts", repo=repo)
    fill(repo)
    with pytest.raises(GitmlError) as info:
        api.log_artifact(str(repo / "model.bin"))
    assert info.value.message.startswith("no space left on device while writing ")
    assert str(repo / ".git" / "gitml" / "cache") in info.value.message
    with pytest.raises(GitmlError):
        api.end_run()
    free(repo)
    api.commit_run(resume=run.id, status="FAILED", repo=repo)
    assert api.get_run(run.id, repo=repo).status == "FAILED"
    fill(repo)
    with pytest.raises(GitmlError) as info:
        api.start_run(name="never", repo=repo)
    assert info.value.message.startswith("no space left on device while writing ")
    assert active_dirs(repo) == [] and api.active_run() is None


@full_disk
def test_read_only_disk_is_one_line(small_disk):
    repo = small_disk
    tip = runs_tip(repo)
    subprocess.run(["mount", "-o", "remount,ro", str(repo.parent)], check=True)
    result = gitml(repo, "commit-run", "-m", "acc=1")
    assert result.code == 1
    assert re.fullmatch(r"gitml: error: read-only file system while writing \S+: remount it read-write "
                        r"or work elsewhere, and retry", one_line(result)), result.err
    assert runs_tip(repo) == tip
    subprocess.run(["mount", "-o", "remount,rw", str(repo.parent)], check=True)
