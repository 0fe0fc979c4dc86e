"""Pushing many objects: what a push asks the remote, what it uploads, and what it must never lose.

Requests are counted for real: S3 is a moto server started here behind a WSGI layer that logs
each request it answers; local folders go through ``counting://``, a LocalFileSystem registered
with fsspec that counts the calls made to it. Nothing is mocked and nothing is timed.
"""

from __future__ import annotations

import collections
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import fsspec
import pytest
from conftest import gitml
from fsspec.implementations.local import LocalFileSystem

import gitml as api
from gitml import artifacts
from gitml.artifacts.backend import ObjectStore, RemoteError
from gitml.artifacts.record import RemoteRecord, record_path
from gitml.core import store

N = 300  # above the 64 objects past which existence checks become listings


# -- a moto server whose requests are counted -----------------------------------------------------


class CountingMoto:
    """moto's S3 app served on a free loopback port, logging ``(method, path, query)`` per request."""

    def __init__(self) -> None:
        from moto.server import DomainDispatcherApplication, create_backend_app
        from werkzeug.serving import make_server

        app = DomainDispatcherApplication(create_backend_app)
        self.log: list[tuple[str, str, str]] = []

        def counting(environ, start_response):
            self.log.append((environ["REQUEST_METHOD"], environ.get("PATH_INFO", ""),
                             environ.get("QUERY_STRING", "")))
            return app(environ, start_response)

        self.server = make_server("127.0.0.1", 0, counting, threaded=True)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.endpoint = f"http://127.0.0.1:{self.server.server_port}"

    def since(self, mark: int) -> collections.Counter:
        """Requests since ``mark`` by kind: LIST (a bucket listing), GET, HEAD, PUT, POST, DELETE."""
        counts: collections.Counter = collections.Counter()
        for method, path, query in self.log[mark:]:
            is_list = method == "GET" and ("list-type" in query or path.strip("/").count("/") == 0)
            counts["LIST" if is_list else method] += 1
        return counts


@pytest.fixture(scope="module")
def counted_moto():
    server = CountingMoto()
    yield server
    server.server.shutdown()


@pytest.fixture
def s3_repo(repo, counted_moto, aws_env):
    import s3fs

    bucket = f"push-{uuid.uuid4().hex[:8]}"
    s3fs.S3FileSystem(endpoint_url=counted_moto.endpoint, key="testing", secret="testing").mkdir(bucket)
    s3fs.S3FileSystem.clear_instance_cache()
    artifacts.add_remote("s3", f"s3://{bucket}/store", {"endpoint_url": counted_moto.endpoint}, default=True,
                         repo=repo)
    return repo


def _raw_s3(counted_moto):
    import s3fs

    return s3fs.S3FileSystem(endpoint_url=counted_moto.endpoint, key="testing", secret="testing", skip_instance_cache=True)


# -- a local filesystem that counts the calls made to it -------------------------------------------


class CountingFileSystem(LocalFileSystem):
    """The local filesystem under ``counting://``, counting each call by method name."""

    protocol = "counting"
    calls: collections.Counter = collections.Counter()

    @classmethod
    def _strip_protocol(cls, path):
        if isinstance(path, str) and path.startswith("counting://"):
            path = path[len("counting://"):]
        return super()._strip_protocol(path)

    def __getattribute__(self, name):
        if name in ("ls", "find", "info", "exists", "put_file", "pipe_file", "cat_file", "mv", "rm", "rm_file",
                    "makedirs"):
            CountingFileSystem.calls[name] += 1
        return super().__getattribute__(name)


fsspec.register_implementation("counting", CountingFileSystem, clobber=True)


# -- helpers ---------------------------------------------------------------------------------------


def _log_many(repo: Path, tmp_path: Path, n: int = N, name: str = "many") -> tuple[str, Path]:
    folder = tmp_path / name
    folder.mkdir()
    for i in range(n):
        (folder / f"f{i:04d}.bin").write_bytes(f"{name} payload {i} ".encode() * (40 + i % 50))
    with api.start_run(name=name, repo=repo) as run:
        api.log_artifact(str(folder))
    return run.id, folder


def _digests(folder: Path) -> set[str]:
    return {hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def _object_key(digest: str) -> str:
    return f"sha256/{digest[:2]}/{digest[2:]}"


# -- S3 -------------------------------------------------------------------------------------------


def test_first_push_puts_each_object_once_and_checks_by_listing(s3_repo, tmp_path, counted_moto):
    _log_many(s3_repo, tmp_path)
    mark = len(counted_moto.log)
    first = artifacts.push(repo=s3_repo)
    requests = counted_moto.since(mark)
    assert len(first.transferred) == N + 1 and first.skipped == 0
    assert requests["PUT"] == N + 1  # one PUT per object, no temporary copies on S3
    assert requests["HEAD"] <= 2  # never one existence check per object
    assert requests["LIST"] <= 2 * 256 + 4  # at most the shard folders, and the deletion notes


def test_noop_push_to_s3_asks_only_for_deletion_notes(s3_repo, tmp_path, counted_moto):
    _log_many(s3_repo, tmp_path)
    artifacts.push(repo=s3_repo)
    mark = len(counted_moto.log)
    again = artifacts.push(repo=s3_repo)
    requests = counted_moto.since(mark)
    assert again.transferred == [] and again.skipped == N + 1
    assert requests["PUT"] == requests["HEAD"] == requests["GET"] == 0
    assert requests["LIST"] <= 2  # the deletion notes' folder, nothing per object or per shard


def test_recheck_asks_the_remote_in_listings_not_per_object(s3_repo, tmp_path, counted_moto):
    _log_many(s3_repo, tmp_path)
    artifacts.push(repo=s3_repo)
    mark = len(counted_moto.log)
    again = artifacts.push(repo=s3_repo, recheck=True)
    requests = counted_moto.since(mark)
    assert again.transferred == [] and again.skipped == N + 1
    assert requests["PUT"] == 0 and requests["HEAD"] <= 2
    assert requests["LIST"] <= 2 * 256 + 4


def test_objects_deleted_by_another_tool_are_found_by_recheck_and_status(s3_repo, tmp_path, counted_moto):
    _, folder = _log_many(s3_repo, tmp_path)
    artifacts.push(repo=s3_repo)
    remote = artifacts.list_remotes(repo=s3_repo)[0]
    gone = sorted(_digests(folder))[:7]
    raw = _raw_s3(counted_moto)
    raw.rm([f"{remote.url[len('s3://'):]}/{_object_key(d)}" for d in gone])
    # A plain push trusts what this repository recorded (documented); a recheck asks the remote.
    assert artifacts.push(repo=s3_repo).transferred == []
    mark = len(counted_moto.log)
    rechecked = artifacts.push(repo=s3_repo, recheck=True)
    assert sorted(r.digest for r in rechecked.transferred) == gone
    assert counted_moto.since(mark)["PUT"] == len(gone)
    # status asks the remote too, and what it learns serves the next push
    raw.rm([f"{remote.url[len('s3://'):]}/{_object_key(d)}" for d in gone[:3]])
    missing = [s.ref.digest for s in artifacts.status(repo=s3_repo) if not s.remote]
    assert sorted(missing) == gone[:3]
    assert sorted(r.digest for r in artifacts.push(repo=s3_repo).transferred) == gone[:3]
    assert artifacts.verify(check_remote=True, repo=s3_repo) == []


def test_objects_gitml_deletes_are_uploaded_again_by_a_plain_push(s3_repo, tmp_path):
    run_id, folder = _log_many(s3_repo, tmp_path, n=80)
    artifacts.push(repo=s3_repo)
    remote = artifacts.list_remotes(repo=s3_repo)[0]
    target = ObjectStore(remote)
    gone = sorted(_digests(folder))[:5]
    target.delete(gone)  # as gc --remote and verify --delete-bad do, from any clone
    assert target.deletion_notes()  # the deletion was noted on the remote
    again = artifacts.push(repo=s3_repo)
    assert sorted(r.digest for r in again.transferred) == gone
    assert artifacts.push(repo=s3_repo).transferred == []
    assert all(s.remote for s in artifacts.status(repo=s3_repo))


def test_killed_push_to_s3_resumes(s3_repo, tmp_path, counted_moto):
    _log_many(s3_repo, tmp_path, n=600)
    mark = len(counted_moto.log)
    env_script = f"import gitml.artifacts\ngitml.artifacts.push(jobs=4, repo={str(s3_repo)!r})\n"
    proc = subprocess.Popen([sys.executable, "-c", env_script])
    try:
        deadline = time.monotonic() + 120
        while counted_moto.since(mark)["PUT"] < 40 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    target = ObjectStore(artifacts.list_remotes(repo=s3_repo)[0])
    before = target.all_objects()
    assert before  # some objects made it
    resumed = artifacts.push(repo=s3_repo)  # a request in flight at the kill may have landed since
    assert resumed.skipped + len(resumed.transferred) == 601 and len(resumed.transferred) <= 601 - len(before)
    assert artifacts.verify(check_remote=True, repo=s3_repo) == []  # every object whole


# -- local folders, calls counted -----------------------------------------------------------------


def test_noop_push_to_a_folder_calls_no_per_object_operation(repo, tmp_path):
    _log_many(repo, tmp_path)
    artifacts.add_remote("store", f"counting://{tmp_path / 'remote'}", default=True, repo=repo)
    CountingFileSystem.calls.clear()
    first = artifacts.push(repo=repo)
    assert len(first.transferred) == N + 1
    assert CountingFileSystem.calls["put_file"] == N + 1 and CountingFileSystem.calls["exists"] == 0
    CountingFileSystem.calls.clear()
    again = artifacts.push(repo=repo)
    assert again.transferred == [] and again.skipped == N + 1
    assert CountingFileSystem.calls["put_file"] == CountingFileSystem.calls["exists"] == 0
    assert CountingFileSystem.calls["ls"] + CountingFileSystem.calls["find"] <= 1  # the deletion notes
    # a partial upload is never under an object's name: temporaries only, renamed in
    assert not list((tmp_path / "remote").rglob("*.tmp-*"))


def test_failed_uploads_keep_the_rest_and_the_next_push_finishes(repo, tmp_path):
    _log_many(repo, tmp_path, n=100)
    remote_dir = tmp_path / "remote"
    artifacts.add_remote("store", str(remote_dir), default=True, repo=repo)
    every = {r.digest for r in artifacts.referenced_objects(repo=repo)}
    victims = sorted(d for d in every if d[:2] == min(every)[:2])  # one shard's objects
    (remote_dir / "sha256").mkdir(parents=True)
    (remote_dir / "sha256" / victims[0][:2]).write_text("a file where a shard folder goes")
    with pytest.raises(RemoteError, match="uploading"):
        artifacts.push(repo=repo)
    assert len(ObjectStore(artifacts.list_remotes(repo=repo)[0]).all_objects()) == 101 - len(victims)
    (remote_dir / "sha256" / victims[0][:2]).unlink()
    finished = artifacts.push(repo=repo)
    assert sorted(r.digest for r in finished.transferred) == victims  # the others were recorded
    assert artifacts.verify(check_remote=True, repo=repo) == []


def test_gc_in_another_clone_is_seen_by_the_next_push(repo, tmp_path):
    """Clone B collects garbage on the shared remote; clone A, whose run B never saw, loses nothing."""
    shared = tmp_path / "shared"
    artifacts.add_remote("store", str(shared), default=True, repo=repo)
    run_id, folder = _log_many(repo, tmp_path, n=70)
    artifacts.push(repo=repo)
    other = tmp_path / "other"
    other.mkdir()
    subprocess.run(["git", "init", "-q", str(other)], check=True)
    artifacts.add_remote("store", str(shared), default=True, repo=other)
    collected = artifacts.gc(on_remote=True, grace=0, repo=other)  # B knows no run: everything goes
    assert len(collected) == 71
    again = artifacts.push(repo=repo)
    assert len(again.transferred) == 71 and again.skipped == 0
    assert all(s.remote for s in artifacts.status(repo=repo))


def test_concurrent_pushes_lose_nothing(repo, tmp_path):
    shared = tmp_path / "shared"
    artifacts.add_remote("store", str(shared), default=True, repo=repo)
    _, one = _log_many(repo, tmp_path, n=120, name="one")
    _, two = _log_many(repo, tmp_path, n=120, name="two")
    script = "import sys, gitml.artifacts\ngitml.artifacts.push(repo=sys.argv[1])\n"
    procs = [subprocess.Popen([sys.executable, "-c", script, str(repo)]) for _ in range(3)]
    assert [p.wait() for p in procs] == [0, 0, 0]
    assert artifacts.push(repo=repo).transferred == []
    assert artifacts.push(repo=repo, recheck=True).transferred == []  # the record told the truth
    assert (_digests(one) | _digests(two)) <= ObjectStore(artifacts.list_remotes(repo=repo)[0]).all_objects()


def test_the_record_is_per_remote_store_and_a_damaged_one_is_ignored(repo, tmp_path):
    _, folder = _log_many(repo, tmp_path, n=10)
    artifacts.add_remote("store", str(tmp_path / "first"), default=True, repo=repo)
    artifacts.push(repo=repo)
    artifacts.add_remote("store", str(tmp_path / "second"), default=True, repo=repo)  # same name, new store
    assert len(artifacts.push(repo=repo).transferred) == 11
    remote = artifacts.list_remotes(repo=repo)[0]
    path = record_path(repo / ".git" / "gitml", remote)
    assert path.exists() and len(_digests(folder) & set(path.read_text().split())) == 10
    path.write_text(path.read_text() + "0123")  # a torn last line
    target = ObjectStore(remote)
    assert len(RemoteRecord(repo / ".git" / "gitml", target).refresh()) == 11
    path.write_text("something else entirely\n" + "ab" * 32 + "\n")
    assert RemoteRecord(repo / ".git" / "gitml", target).refresh() == set()
    assert artifacts.push(repo=repo).transferred == []  # asked the remote, which has them


def test_cli_push_recheck(repo, tmp_path):
    _log_many(repo, tmp_path, n=5)
    remote_dir = tmp_path / "remote"
    artifacts.add_remote("store", str(remote_dir), default=True, repo=repo)
    assert gitml(repo, "artifacts", "push").out.startswith("6 uploaded")
    victim = next(p for p in (remote_dir / "sha256").rglob("*") if p.is_file())
    victim.unlink()
    assert gitml(repo, "artifacts", "push").out.startswith("0 uploaded")
    result = gitml(repo, "artifacts", "push", "--recheck")
    assert result.code == 0 and result.err == "" and result.out.startswith("1 uploaded")
    bad = gitml(repo, "artifacts", "push", "-j", "0")
    assert bad.code == 2 and len(bad.err.strip().splitlines()) == 1


def test_store_put_many_attempts_every_object(tmp_path):
    from gitml.core.remotes import Remote

    cache = tmp_path / "cache"
    files = []
    for i in range(20):
        digest, size = store.put_file(cache, _write(tmp_path / f"in{i}", f"bytes {i}".encode()))
        files.append((str(store.object_path(cache, digest)), digest, size))
    target = ObjectStore(Remote("m", f"memory://put-many-{uuid.uuid4().hex[:6]}"))
    done: list[str] = []
    target.put_many(files, jobs=3, done=done.append)
    assert sorted(done) == sorted(f[1] for f in files) == sorted(target.all_objects())


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_a_note_applied_by_another_push_still_counts_for_what_this_one_saw(repo, tmp_path):
    """Push A refreshes, then another push applies a deletion note before A records what it saw."""
    _, folder = _log_many(repo, tmp_path, n=3)
    remote_dir = tmp_path / "remote"
    artifacts.add_remote("store", str(remote_dir), default=True, repo=repo)
    artifacts.push(repo=repo)
    target = ObjectStore(artifacts.list_remotes(repo=repo)[0])
    gitml_dir = repo / ".git" / "gitml"
    victim = sorted(_digests(folder))[0]
    first = RemoteRecord(gitml_dir, target)
    assert victim in first.refresh()  # A: the notes listed, then A "sees" the victim on the remote
    target.delete([victim])  # a gc elsewhere: note first, then the object
    note = target.deletion_notes()
    assert len(note) == 1 and target.read_note(note[0]) == {victim}
    assert (remote_dir / "deletions" / note[0]).read_text() == victim + "\n"
    assert victim not in RemoteRecord(gitml_dir, target).refresh()  # B applies the note
    first.learn({victim})  # A records what it saw before the deletion
    assert victim not in RemoteRecord(gitml_dir, target).refresh()
    assert [r.digest for r in artifacts.push(repo=repo).transferred] == [victim]


# -- a folder on this machine: plain system calls, one object after the other ------------------------


def _folder_store(url: Path | str) -> ObjectStore:
    from gitml.core.remotes import Remote

    return ObjectStore(Remote("folder", str(url)))


def test_push_to_a_folder_writes_every_object_whole_under_its_name(repo, tmp_path):
    _, folder = _log_many(repo, tmp_path)
    remote_dir = tmp_path / "remote"
    artifacts.add_remote("store", str(remote_dir), default=True, repo=repo)
    target = ObjectStore(artifacts.list_remotes(repo=repo)[0])
    assert target.local  # fsspec's own local filesystem: the system-call path
    assert not _folder_store(f"counting://{tmp_path / 'c'}").local  # a subclass keeps its own calls
    first = artifacts.push(repo=repo)
    assert len(first.transferred) == N + 1
    on_disk = {p.parent.name + p.name: p for p in (remote_dir / "sha256").glob("*/*")}
    assert set(on_disk) == _digests(folder) | {r.digest for r in first.transferred}
    for digest, path in on_disk.items():
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
    umask = os.umask(0)
    os.umask(umask)
    assert {p.stat().st_mode & 0o777 for p in on_disk.values()} == {0o666 & ~umask}
    assert not list(remote_dir.rglob("*.tmp-*"))
    assert artifacts.verify(check_remote=True, repo=repo) == []
    assert artifacts.push(repo=repo, recheck=True).transferred == []


def test_a_failed_copy_to_a_folder_leaves_no_temporary_and_no_object(tmp_path):
    cache = tmp_path / "cache"
    digest, size = store.put_file(cache, _write(tmp_path / "in", b"some bytes"))
    target = _folder_store(tmp_path / "remote")
    in_the_way = Path(target.path(digest))
    in_the_way.mkdir(parents=True)
    (in_the_way / "keep").write_text("a folder where the object goes")
    with pytest.raises(RemoteError, match=f"uploading {digest[:12]}"):
        target.put_many([(str(store.object_path(cache, digest)), digest, size)])
    assert sorted(p.name for p in in_the_way.parent.iterdir()) == [in_the_way.name]  # no temporary left
    assert (in_the_way / "keep").read_text() == "a folder where the object goes"
    with pytest.raises(RemoteError, match="uploading"):  # a missing source: nothing made either
        target.put(str(tmp_path / "no-such-file"), "b" * 64)
    assert not (tmp_path / "remote" / "sha256" / "bb").exists()


def test_a_shard_folder_removed_between_uploads_is_made_again(tmp_path):
    """Another process (a cleanup, a gc by hand) may remove folders this store already wrote into."""
    cache = tmp_path / "cache"
    items = []
    for i in range(2):
        digest, size = store.put_file(cache, _write(tmp_path / f"in{i}", f"object {i}".encode()))
        items.append((str(store.object_path(cache, digest)), digest, size))
    target = _folder_store(tmp_path / "remote")
    target.put_many(items[:1])
    shutil.rmtree(tmp_path / "remote")
    done: list[str] = []
    target.put_many(items, done=done.append)
    assert sorted(done) == sorted(d for _, d, _ in items) == sorted(target.all_objects())
    for local, digest, _ in items:
        assert Path(target.path(digest)).read_bytes() == Path(local).read_bytes()


@pytest.mark.skipif(not Path("/proc/version").exists(), reason="needs a file the kernel will not sendfile")
def test_a_file_the_kernel_will_not_sendfile_is_copied_by_read_and_write(tmp_path):
    from gitml.artifacts.backend import _copy_fd

    src = os.open("/proc/version", os.O_RDONLY)  # procfs refuses sendfile (EINVAL)
    out = os.open(tmp_path / "copy", os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        _copy_fd(src, out)
    finally:
        os.close(src)
        os.close(out)
    assert (tmp_path / "copy").read_bytes() == Path("/proc/version").read_bytes() != b""


def test_push_to_a_folder_with_several_jobs_writes_the_same(repo, tmp_path):
    _, folder = _log_many(repo, tmp_path, n=100)
    artifacts.add_remote("store", str(tmp_path / "remote"), default=True, repo=repo)
    pushed = artifacts.push(repo=repo, jobs=4)
    assert len(pushed.transferred) == 101
    assert _digests(folder) < ObjectStore(artifacts.list_remotes(repo=repo)[0]).all_objects()
    assert artifacts.verify(check_remote=True, repo=repo) == []


@pytest.mark.skipif(not shutil.which("findmnt") or not Path("/proc/self/mountinfo").exists(),
                    reason="needs Linux's mount table and util-linux's findmnt")
def test_the_mount_type_is_the_one_findmnt_reports(tmp_path):
    from gitml.artifacts.backend import LOCAL_DISK_TYPES, _mount_type

    for where in (tmp_path, Path("/proc/version"), Path("/")):
        told = subprocess.run(["findmnt", "-no", "FSTYPE", "--target", str(where)], capture_output=True,
                              text=True, check=True).stdout.strip().splitlines()[-1]
        assert _mount_type(str(where)) == told
    assert _mount_type(str(tmp_path / "not" / "made" / "yet")) == _mount_type(str(tmp_path))
    assert _mount_type("/proc/version") == "proc" and "proc" not in LOCAL_DISK_TYPES


def test_small_and_big_objects_to_a_folder_all_arrive_whole(tmp_path):
    """Small objects go one after the other, big ones (over 1 MiB) on threads: every one arrives, once."""
    from gitml.artifacts.backend import SMALL_LOCAL_OBJECT

    cache = tmp_path / "cache"
    items = []
    for i, size in enumerate([10, SMALL_LOCAL_OBJECT, SMALL_LOCAL_OBJECT + 1, 3 * SMALL_LOCAL_OBJECT, 4000]):
        data = (f"object {i} ".encode() * (size // 9 + 1))[:size]
        digest, stored = store.put_file(cache, _write(tmp_path / f"in{i}", data))
        assert stored == size
        items.append((str(store.object_path(cache, digest)), digest, size))
    target = _folder_store(tmp_path / "remote")
    done: list[str] = []
    target.put_many(items, done=done.append)
    assert sorted(done) == sorted(d for _, d, _ in items) == sorted(target.all_objects())
    for local, digest, _ in items:
        assert Path(target.path(digest)).read_bytes() == Path(local).read_bytes()
        assert hashlib.sha256(Path(target.path(digest)).read_bytes()).hexdigest() == digest
    assert not list((tmp_path / "remote").rglob("*.tmp-*"))
