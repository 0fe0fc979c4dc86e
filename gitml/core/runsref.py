"""The runs ref: ``refs/gitml/runs``, one commit per change, one directory per run.

The tree of every commit is ``runs/<id[:2]>/<id>/<files>``. A change rewrites the run's own
directory, its shard and the two trees above it: O(1) trees whatever the run count. The ref moves
by compare-and-swap only; a lost race or a held lock re-reads the tip, rebuilds the few trees
on it and tries again, so parallel writers (whose runs live at disjoint paths) lose nothing.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator

from gitml.core.cas import attempts
from gitml.core.errors import BadInputError, CorruptRunError, MissingObjectError, RunNotFoundError
from gitml.core.formats import KNOWN_FILES, MAX_FILE_BYTES, MAX_RECORD_BYTES, NotAFile, TooLarge
from gitml.core.gitrepo import BLOB_MODE, TREE_MODE, GitRepo
from gitml.core.ids import COMMIT_RE, RUN_ID_RE, printable, shard

RUNS_REF = "refs/gitml/runs"
FILE_MODES = (0o100644, 0o100755)  # regular files; symlinks and submodules in a run are ignored
SHARD_RE = re.compile(r"^[0-9a-f]{2}$")
MISSING_OBJECT_ATTEMPTS = 3  # reads of a missing object before it counts as lost, not moved
GC_AUTO_DEFAULT = 6700
# The lookup maps kept beside runs/ in the same commits (docs/formats.md, "Lookup maps"):
# maps/commits/<c[:2]>/<c>/<id[:2]>/<run id> for each run made from code commit c, and
# maps/started/<YYYY-MM-DD>/<HH>/<MM>/<id[:2]>/<SS.mmm>-<run id> by the UTC time a run started
# (entries are empty blobs; the leaves are sharded like runs/, so a sweep of many runs on one
# commit or in one minute rewrites small trees, and a leaf's name orders it without a read), and maps/runs-<id of the runs/ tree they describe> (an empty blob: read by name, no
# object to open). A writer that changes runs/ without the maps leaves that name stale, and
# readers then do not use them.
MAPS_DIR = "maps"
MAPS_FOR = "runs-"  # + the runs/ tree id
COMMITS_DIR = "commits"
STARTED_DIR = "started"
MAP_DIRS = (COMMITS_DIR, STARTED_DIR)
_DAY_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_HOUR_RE = re.compile(r"^[0-9]{2}$")
_START_RE = re.compile(r"^([0-9]{4}-[0-9]{2}-[0-9]{2})T([0-9]{2}):([0-9]{2}):([0-9]{2}\.[0-9]{3})Z$")
_LEAF_RE = re.compile(r"^([0-9]{2}\.[0-9]{3})-([0-9a-f]{32})$")

log = logging.getLogger(__name__)


def tracking_ref(remote: str) -> str:
    """The remote-tracking runs ref of a git remote.

    Args:
        remote: the git remote's name.

    Returns:
        ``refs/gitml/remotes/<remote>/runs``.
    """
    return f"refs/gitml/remotes/{remote}/runs"


class BadEntry(str):
    """The object id of an entry under ``runs/`` that is not a well-formed run folder.

    A ``str`` (its object id) so it travels where a run's tree id does, with ``problem`` saying
    what is wrong. Its key is the run id when the name is one, else the entry's path
    (``runs/ab`` or ``runs/ab/<name>``), which :func:`commit_runs` can remove.
    """

    problem: str

    def __new__(cls, sha: str, problem: str) -> BadEntry:
        """The entry's object id (hex), carrying ``problem``: one line saying what is wrong."""
        obj = super().__new__(cls, sha)
        obj.problem = problem
        return obj


def display_key(key: str) -> str:
    """A key as it can be shown on one line and stored.

    Control characters and bytes that are not UTF-8 are backslash-escaped (a newline in a name
    shows as a backslash and ``n``); ``gitml runs delete`` takes this form.

    Args:
        key: a run id, or the path of a bad entry (``runs/ab/<name>``).

    Returns:
        The key, escaped where needed (see :func:`gitml.core.ids.printable`).
    """
    return printable(key)


def write_run_tree(repo: GitRepo, files: dict[str, bytes]) -> str:
    """Store a run directory's files as blobs and a tree.

    Args:
        repo: the open repository.
        files: ``{file name: bytes}``, as :func:`gitml.core.formats.run_files` gives them.

    Returns:
        The tree's sha; nothing points at it until :func:`commit_runs`.
    """
    return repo.write_tree({name: (BLOB_MODE, repo.write_blob(data)) for name, data in files.items()})


def read_run_files(repo: GitRepo, tree_sha: str, names: tuple[str, ...] | None = None,
                   run_id: str = "") -> dict[str, bytes]:
    """Read a run directory's files (or only ``names``) into ``{name: bytes}``.

    Only the files the format defines (:data:`~gitml.core.formats.KNOWN_FILES`) are read, and
    only regular files; a file over its bound is not read at all and comes back as a
    :class:`~gitml.core.formats.TooLarge` for the parser to refuse.

    Args:
        repo: the open repository.
        tree_sha: the run folder's tree sha (a :class:`BadEntry` raises its problem).
        names: the files to read (default: every file the format defines).
        run_id: the run, for errors.

    Returns:
        ``{file name: bytes}`` of the files present.

    Raises:
        CorruptRunError: the entry is not a readable run folder (see :class:`BadEntry`).
    """
    return read_runs_files(repo, {run_id: tree_sha}, names)[run_id]


def read_runs_files(repo: GitRepo, trees: dict[str, str], names: tuple[str, ...] | None = None
                    ) -> dict[str, dict[str, bytes]]:
    """:func:`read_run_files` for many runs, sizing every blob with one git process first.

    The sizes come from one ``git cat-file --batch-check`` before any blob is read.

    Args:
        repo: the open repository.
        trees: ``{run id: tree sha}``.
        names: the files to read (default: every file the format defines).

    Returns:
        ``{run id: {file name: bytes}}``.

    Raises:
        CorruptRunError: one of the entries is not a readable run folder.
    """
    wanted: dict[str, dict[str, str]] = {}
    for run_id, tree_sha in trees.items():
        if isinstance(tree_sha, BadEntry):
            raise CorruptRunError("", tree_sha.problem)
        try:
            entries = repo.read_tree(tree_sha)
        except (BadInputError, KeyError, AttributeError) as exc:
            raise CorruptRunError(run_id, f"run folder cannot be read: {exc}") from None
        for name, (mode, _sha) in entries.items():
            if name in KNOWN_FILES and mode not in FILE_MODES:
                raise CorruptRunError(run_id, f"{name} is not a regular file (mode {mode:o})")
        wanted[run_id] = {name: sha for name, (mode, sha) in entries.items()
                          if mode in FILE_MODES and name in (names or KNOWN_FILES)}
    sizes = repo.object_sizes(sorted({sha for files in wanted.values() for sha in files.values()}))
    out: dict[str, dict[str, bytes]] = {}
    for run_id, files in wanted.items():
        out[run_id] = {}
        for name, sha in files.items():
            if sha not in sizes:
                raise CorruptRunError(run_id, f"{name} is missing from the repository")
            if sizes[sha] > MAX_FILE_BYTES.get(name, MAX_RECORD_BYTES):
                out[run_id][name] = TooLarge(sizes[sha])
                continue
            try:
                out[run_id][name] = repo.read_blob(sha)
            except (KeyError, AttributeError) as exc:
                raise CorruptRunError(run_id, f"{name} cannot be read: {exc}") from None
    return out


def read_runs_or_errors(repo: GitRepo, trees: dict[str, str], names: tuple[str, ...] | None = None
                        ) -> dict[str, dict[str, bytes] | CorruptRunError]:
    """:func:`read_runs_files`, where a run folder that cannot be read maps to its error.

    One batch for all, then one by one only when some run is broken, so one bad run does not
    fail the others.

    Args:
        repo: the open repository.
        trees: ``{run id or entry key: tree sha}``.
        names: the files to read (default: every file the format defines).

    Returns:
        ``{key: {file name: bytes} or the CorruptRunError for that key}``.
    """
    try:
        return dict(read_runs_files(repo, trees, names))
    except CorruptRunError:
        out: dict[str, dict[str, bytes] | CorruptRunError] = {}
        for key, tree in trees.items():
            try:
                out.update(read_runs_files(repo, {key: tree}, names))
            except CorruptRunError as exc:
                out[key] = exc
        return out


def bulk_read_runs(
    repo: GitRepo, tip: str, ids: set[str] | None, names: tuple[str, ...]
) -> dict[str, dict[str, bytes]]:
    """Read the files ``names`` of many runs at ``tip`` with two git processes in all.

    Used when an index sync has thousands of runs to read. Entries that are not
    ``runs/<shard>/<run id>/<file>`` are skipped, and a file over its bound is not read: it
    comes back as a :class:`~gitml.core.formats.TooLarge` for the parser to refuse (a file that
    is not a regular blob as a :class:`~gitml.core.formats.NotAFile`).

    Args:
        repo: the open repository.
        tip: a runs-ref commit sha.
        ids: the run ids to read; None reads every run.
        names: the files to read (``("run.yaml", "metrics.yaml")``).

    Returns:
        ``{run id: {file name: bytes}}`` for the runs that have any of those files.

    Raises:
        GitmlError: git failed (``tip`` does not resolve).
        KeyError: a blob is missing from the repository.
    """
    listing = repo.ls_tree_sized(tip, "runs")
    wanted: dict[str, list[tuple[str, str | TooLarge]]] = {}
    for record in listing.split(b"\0"):
        if not record:
            continue
        meta, _, path = record.partition(b"\t")
        parts = path.decode("utf-8", "surrogateescape").split("/")
        if len(parts) < 4 or parts[3] not in names or (ids is not None and parts[2] not in ids):
            continue
        if not RUN_ID_RE.match(parts[2]) or parts[1] != parts[2][:2]:
            continue
        fields = meta.split()
        if len(parts) != 4 or len(fields) != 4 or fields[1] != b"blob" or int(fields[0], 8) not in FILE_MODES:
            wanted.setdefault(parts[2], []).append((parts[3], NotAFile(0)))
            continue
        size = int(fields[3]) if fields[3].isdigit() else 0
        bound = MAX_FILE_BYTES.get(parts[3], MAX_RECORD_BYTES)
        wanted.setdefault(parts[2], []).append((parts[3], TooLarge(size) if size > bound else fields[2].decode()))
    shas = sorted({sha for files in wanted.values() for _, sha in files if not isinstance(sha, TooLarge)})
    blobs = repo.cat_blobs(shas)
    return {run_id: {name: sha if isinstance(sha, TooLarge) else blobs[sha] for name, sha in files}
            for run_id, files in wanted.items()}


def _subtree(repo: GitRepo, tree_sha: str | None, name: str) -> dict[str, tuple[int, str]]:
    if tree_sha is None:
        return {}
    entry = repo.read_tree(tree_sha).get(name)
    if not entry or entry[0] != TREE_MODE:
        return {}
    try:
        return repo.read_tree(entry[1])
    except (BadInputError, KeyError):
        return {}


def runs_tree(repo: GitRepo, tip: str | None) -> str | None:
    """The sha of the ``runs/`` tree of a runs-ref commit.

    Args:
        repo: the open repository.
        tip: a runs-ref commit sha, or None.

    Returns:
        The tree's sha, or None when ``tip`` is None or has no ``runs/`` folder.
    """
    if tip is None:
        return None
    root, _, _ = repo.read_commit(tip)
    entry = repo.read_tree(root).get("runs")
    return entry[1] if entry and entry[0] == TREE_MODE else None


def run_entry(repo: GitRepo, tip: str | None, run_id: str) -> tuple[int, str] | None:
    """What sits at ``runs/<shard>/<run_id>`` at ``tip``, well formed or not.

    Args:
        repo: the open repository.
        tip: a runs-ref commit sha, or None.
        run_id: a full run id.

    Returns:
        ``(mode, sha)`` of the entry, or None when there is none.

    Raises:
        BadInputError: ``run_id`` is not a full run id.
    """
    return _subtree(repo, runs_tree(repo, tip), shard(run_id)).get(run_id)


def run_tree(repo: GitRepo, tip: str | None, run_id: str) -> str | None:
    """The tree sha of one run's directory at ``tip``.

    Args:
        repo: the open repository.
        tip: a runs-ref commit sha, or None.
        run_id: a full run id.

    Returns:
        The sha, or None when the run is not there (or its entry is not a folder).

    Raises:
        BadInputError: ``run_id`` is not a full run id.
    """
    entry = run_entry(repo, tip, run_id)
    return entry[1] if entry and entry[0] == TREE_MODE else None


def shard_runs(repo: GitRepo, name: str, entry: tuple[int, str]) -> dict[str, str]:
    """``{key: tree sha or BadEntry}`` for one entry of ``runs/``: its runs, and what is wrong there.

    Whatever a stranger put under ``runs/`` — a file where a shard folder should be, a name that
    is not a run id, a run id in the wrong shard, a file where a run folder should be — comes
    back as a :class:`BadEntry`, so it is reported by name while every other run still works.

    Args:
        repo: the open repository.
        name: the entry's name under ``runs/`` (a shard: two hex digits).
        entry: its ``(mode, sha)``.

    Returns:
        ``{run id: tree sha}`` for its runs, and ``{key: BadEntry}`` for what is wrong, keyed
        by run id or by path (``runs/<name>``, ``runs/<name>/<entry>``).
    """
    mode, sha = entry
    here = display_key(f"runs/{name}")
    if not SHARD_RE.match(name):
        return {f"runs/{name}": BadEntry(sha, f"{here}: not a shard folder (two hex digits)")}
    if mode != TREE_MODE:
        return {f"runs/{name}": BadEntry(sha, f"{here}: a file where a shard folder should be")}
    try:
        entries = repo.read_tree(sha)
    except (BadInputError, KeyError):
        return {f"runs/{name}": BadEntry(sha, f"{here}: shard folder cannot be read")}
    out: dict[str, str] = {}
    for run_id, (run_mode, run_sha) in entries.items():
        if not RUN_ID_RE.match(run_id) or run_id[:2] != name:
            out[f"runs/{name}/{run_id}"] = BadEntry(
                run_sha, f"{display_key(f'runs/{name}/{run_id}')}: not a run id of shard {name}")
        elif run_mode != TREE_MODE:
            out[run_id] = BadEntry(run_sha, f"run {run_id}: a file where the run folder should be")
        else:
            out[run_id] = run_sha
    return out


def iter_run_trees(repo: GitRepo, tip: str | None, bad: dict[str, str] | None = None) -> Iterator[tuple[str, str]]:
    """Every well-formed run at ``tip``, in id order.

    Args:
        repo: the open repository.
        tip: a runs-ref commit sha, or None (no runs).
        bad: filled with ``{key: problem}`` for each malformed entry, which is skipped.

    Yields:
        ``(run id, tree sha)``.
    """
    top = runs_tree(repo, tip)
    if top is None:
        return
    for name, entry in sorted(repo.read_tree(top).items()):
        for key, tree in sorted(shard_runs(repo, name, entry).items()):
            if isinstance(tree, BadEntry):
                if bad is not None:
                    bad[key] = tree.problem
            else:
                yield key, tree


def diff_runs(repo: GitRepo, old_tip: str | None, new_tip: str | None) -> tuple[dict[str, str], set[str]]:
    """Runs changed or added, and removed, between two tips; reads only changed shards.

    Args:
        repo: the open repository.
        old_tip: the older runs-ref commit, or None (no runs).
        new_tip: the newer one, or None.

    Returns:
        ``(changed, removed)``: ``{key: tree sha at new_tip}`` for runs added or changed (a
        malformed entry as a :class:`BadEntry` under its key), and the keys gone at ``new_tip``.
    """
    old_top, new_top = runs_tree(repo, old_tip), runs_tree(repo, new_tip)
    changed: dict[str, str] = {}
    removed: set[str] = set()
    if old_top == new_top:
        return changed, removed
    old_shards = repo.read_tree(old_top) if old_top else {}
    new_shards = repo.read_tree(new_top) if new_top else {}
    for name in old_shards.keys() | new_shards.keys():
        old_entry, new_entry = old_shards.get(name), new_shards.get(name)
        if old_entry == new_entry:
            continue
        old_runs = shard_runs(repo, name, old_entry) if old_entry else {}
        new_runs = shard_runs(repo, name, new_entry) if new_entry else {}
        for key in old_runs.keys() | new_runs.keys():
            before, after = old_runs.get(key), new_runs.get(key)
            if after is None:
                removed.add(key)
            elif before != after or type(before) is not type(after):
                changed[key] = after
    return changed, removed


def apply_changes(repo: GitRepo, tip: str | None, changes: dict[str, str | None],
                  hints: dict[str, tuple[str | None, str | None]] | None = None) -> str:
    """Build the root tree of ``tip`` with ``changes`` applied, lookup maps included.

    A run written into a shard whose entry is not a folder replaces that entry. The maps
    (``commits/``, ``started/``) follow every run added, changed or removed, when the tip has
    them or has no runs; each run's keys are read from its ``run.yaml`` unless ``hints`` gives
    them.

    Args:
        repo: the open repository.
        tip: the runs-ref commit to start from, or None (an empty tree).
        changes: ``{run id: new tree sha, or None to remove it}``; a key ``runs/<name>`` or
            ``runs/<shard>/<name>`` (a :class:`BadEntry`'s key) can only be removed.
        hints: ``{run tree sha: (source commit, start_time)}`` for trees the caller just wrote
            (their objects may not be readable yet).

    Returns:
        The sha of the new root tree (written, not committed).

    Raises:
        BadInputError: a ``runs/…`` key with a tree, or one that is not such a path.
        KeyError: an object the tip leads to is missing.
    """
    root = repo.read_tree(repo.read_commit(tip)[0]) if tip else {}
    top_sha = root["runs"][1] if "runs" in root and root["runs"][0] == TREE_MODE else None
    # The big trees (runs/ and its shards) are edited by name, never read whole: a run's commit
    # costs the same at 100 runs and at 100,000 (see GitRepo.edit_tree).
    top_names, shard_names = _changed_names(changes)
    top = repo.tree_entries(top_sha, top_names) if top_sha else {}
    had_runs = bool(top_sha) and repo.edit_tree(top_sha, {}) is not None  # None: an empty tree
    # The maps are kept where they are complete: on a ref that has them, or that has no runs.
    # An older ref without them stays without (readers then use the query index).
    maps_entry = root.get(MAPS_DIR)
    maps = {}
    if maps_entry and maps_entry[0] == TREE_MODE:
        try:
            maps = repo.read_tree(maps_entry[1])
        except (BadInputError, KeyError):
            maps = {}
    keep_maps = bool(maps) and _maps_for(repo, maps) == (top_sha or "") or not had_runs
    map_edits: dict[tuple[str, ...], str | None] = {}
    top_edits: dict[str, tuple[int, str] | None] = {name: None for name in top_names if name not in shard_names}
    for name, shard_changes in shard_names.items():
        entry = top.get(name)
        shard_sha = entry[1] if entry and entry[0] == TREE_MODE else None
        try:
            before = repo.tree_entries(shard_sha, shard_changes) if shard_sha else {}
        except BadInputError:  # not a tree: the shard is written anew
            before, shard_sha = {}, None
        for run_id, tree in shard_changes.items():
            if keep_maps and RUN_ID_RE.match(run_id):
                old = before.get(run_id)
                old_tree = old[1] if old and old[0] == TREE_MODE else None
                if old_tree != tree:
                    for path in map_paths(run_id, *_map_keys(repo, old_tree, hints)):
                        map_edits[path] = None
                    for path in map_paths(run_id, *_map_keys(repo, tree, hints)):
                        map_edits[path] = _EMPTY_BLOB
        new_shard = repo.edit_tree(shard_sha, {run_id: None if tree is None else (TREE_MODE, tree)
                                               for run_id, tree in shard_changes.items()})
        if new_shard is not None:
            top_edits[name] = (TREE_MODE, new_shard)
        elif entry and (entry[0] == TREE_MODE or any(t is not None for t in shard_changes.values())):
            top_edits[name] = None
    new_top = repo.edit_tree(top_sha, top_edits)
    if new_top:
        root["runs"] = (TREE_MODE, new_top)
    else:
        root.pop("runs", None)
    if keep_maps and new_top:
        repo.write_blob(b"")  # the maps' entries (written with the batch; one already there is kept)
        for name in MAP_DIRS:
            edits = {path[1:]: blob for path, blob in map_edits.items() if path[0] == name}
            entry = maps.get(name)
            sha = _edit_tree(repo, entry[1] if entry and entry[0] == TREE_MODE else None, edits)
            maps[name] = (TREE_MODE, sha or repo.write_tree({}))
        for name in [n for n in maps if n.startswith(MAPS_FOR)]:
            del maps[name]
        maps[MAPS_FOR + new_top] = (BLOB_MODE, _EMPTY_BLOB)
        root[MAPS_DIR] = (TREE_MODE, repo.write_tree(maps))
    else:
        root.pop(MAPS_DIR, None)  # no runs, or maps this writer cannot vouch for
    return repo.write_tree(root)


def _changed_names(changes: dict[str, str | None]) -> tuple[list[str], dict[str, dict[str, str | None]]]:
    """The ``runs/`` entries ``changes`` touch, and the changes of each shard.

    Returns:
        ``(names under runs/, {shard name: {run id or entry name: tree sha or None}})``; a
        name under ``runs/`` not in the second part is to be removed (a ``runs/<name>`` key).

    Raises:
        BadInputError: a ``runs/…`` key with a tree, or one that is not such a path.
    """
    removed: list[str] = []
    by_shard: dict[str, dict[str, str | None]] = {}
    for key, tree in changes.items():
        if key.startswith("runs/"):
            parts = key.split("/")
            if tree is not None or len(parts) not in (2, 3):
                raise BadInputError(f"{key!r} can only be removed")
            if len(parts) == 2:
                removed.append(parts[1])
                continue
            by_shard.setdefault(parts[1], {})[parts[2]] = None
        else:
            by_shard.setdefault(shard(key), {})[key] = tree
    return [*removed, *by_shard], by_shard


def commit_runs(
    repo: GitRepo,
    changes: dict[str, str | None],
    message: str,
    ref: str = RUNS_REF,
    when: float | None = None,
    hints: dict[str, tuple[str | None, str | None]] | None = None,
) -> str:
    """Commit run directories (``{run id: tree sha}``; None removes) onto ``ref``; return the tip.

    Retries a lost compare-and-swap (or a held lock) in :func:`gitml.core.cas.attempts`, each
    time rebuilding the changed trees on the newest tip.

    Args:
        repo: the open repository.
        changes: ``{run id: run folder tree sha, or None to remove the run}`` (see
            :func:`apply_changes` for removing bad entries).
        message: the commit message (``run <id>: <name>``).
        ref: the ref to move.
        when: the commit time, POSIX seconds (default: now).
        hints: the lookup-map keys of the trees in ``changes``, as :func:`apply_changes` takes.

    Returns:
        The sha of the new commit, now the ref's tip.

    Raises:
        MissingObjectError: an object the tip or ``changes`` lead to is still missing after
            :data:`MISSING_OBJECT_ATTEMPTS` reads (a pack written under us is found on a re-read;
            past that the repository is corrupt, and waiting would not help).
        ConcurrencyError: the ref kept moving (or stayed locked) for every attempt.
    """
    missing = 0
    for _ in attempts(f"update {ref}", hint="another process keeps the ref busy; try again"):
        tip = repo.ref(ref)
        try:
            tree = apply_changes(repo, tip, changes, hints)
        except KeyError as exc:  # a missing object: moved into a new pack under our feet, or lost
            missing += 1
            if missing >= MISSING_OBJECT_ATTEMPTS:
                raise MissingObjectError(_missing_sha(exc), f"updating {ref}") from None
            continue
        commit = repo.write_commit(tree, [tip] if tip else [], message, when=when)
        repo.flush()
        if repo.set_ref_if_equals(ref, tip, commit):
            _maybe_pack(repo)
            return commit
    raise AssertionError("unreachable: attempts() raises when it runs out")


def edit_run(repo: GitRepo, run_id: str, edit: Callable[[dict[str, bytes]], dict[str, bytes]],
             message: str, ref: str = RUNS_REF) -> tuple[str | None, str, dict[str, bytes]]:
    """Change one run's files in one commit that touches nothing else; return what was written.

    ``edit`` is called with the run's files as the newest tip holds them, and again after a
    lost compare-and-swap, so that two edits of the same run both land (neither is applied to
    a copy the other has replaced). Files ``edit`` returns unchanged keep their blobs.

    Args:
        repo: the open repository.
        run_id: a full run id.
        edit: ``{file name: bytes}`` in, the run's new files out (it may raise to refuse).
        message: the commit message.
        ref: the ref to move.

    Returns:
        ``(parent, commit, files)``: the tip before, the new tip, and the files written;
        when ``edit`` changes nothing, no commit is made and both tips are the current one.

    Raises:
        RunNotFoundError: the run is not on ``ref``.
        CorruptRunError: its folder cannot be read.
        MissingObjectError, ConcurrencyError: as :func:`commit_runs`.
    """
    missing = 0
    for _ in attempts(f"update {ref}", hint="another process keeps the ref busy; try again"):
        tip = repo.ref(ref)
        try:
            tree = run_tree(repo, tip, run_id)
            if tree is None:
                raise RunNotFoundError(f"no run {run_id} on {ref}", hint="gitml runs list shows the runs")
            before = read_run_files(repo, tree, run_id=run_id)
            files = edit(dict(before))
            if files == before:
                return tip, tip, files  # nothing to change: no commit
            new_tree = write_run_tree(repo, files)
            # the lookup maps' keys of both folders, from the run.yaml bytes in hand: no re-read
            hints = {tree: _keys_of(before.get("run.yaml")), new_tree: _keys_of(files.get("run.yaml"))}
            root = apply_changes(repo, tip, {run_id: new_tree}, hints)
        except KeyError as exc:  # a missing object: moved into a new pack under our feet, or lost
            missing += 1
            if missing >= MISSING_OBJECT_ATTEMPTS:
                raise MissingObjectError(_missing_sha(exc), f"updating {ref}") from None
            continue
        commit = repo.write_commit(root, [tip] if tip else [], message)
        repo.flush()
        if repo.set_ref_if_equals(ref, tip, commit):
            _maybe_pack(repo)
            return tip, commit, files
    raise AssertionError("unreachable: attempts() raises when it runs out")


def _missing_sha(exc: KeyError) -> str:
    """The object id a dulwich KeyError names (bytes or str), as hex text."""
    key = exc.args[0] if exc.args else "?"
    return key.decode("ascii", "replace") if isinstance(key, bytes) else str(key)


def _maybe_pack(repo: GitRepo) -> None:
    """Pack loose objects the way git does, once they pass ``gc.auto`` (default 6700).

    The estimate and the threshold are git's own (more than ``ceil(gc.auto / 256)`` objects in
    ``objects/17``), so this costs one directory listing per commit and spawns
    ``git gc --auto`` only when git will have work to do: a looser rule would spawn a git
    that does nothing, on every commit, until the folder gained one more object.
    """
    estimate = repo.loose_object_estimate()
    if estimate == 0:
        return
    setting = repo.config_value("gc", "auto")
    try:
        limit = int(setting) if setting is not None else GC_AUTO_DEFAULT
    except ValueError:
        limit = GC_AUTO_DEFAULT
    if limit <= 0 or estimate // 256 <= -(-limit // 256):
        return
    log.debug("packing loose objects (about %d)", estimate)
    repo.gc_auto()


def merge_changes(repo: GitRepo, ours: str, theirs: str, base: str | None) -> dict[str, str | None]:
    """What to apply on ``ours`` to hold the union of runs of ``ours`` and ``theirs``.

    Three-way against ``base``: a run added or changed on one side only is taken from that side;
    a run deleted on one side and untouched on the other stays deleted; deleted on one side and
    changed on the other, the changed copy is kept; changed on both sides, the copy whose
    ``run.yaml`` has the later ``updated`` wins (ties: the greater tree id), and the other copy
    stays in history. Nothing is ever lost silently.

    Args:
        repo: the open repository.
        ours: the local runs-ref commit sha.
        theirs: the other side's.
        base: their merge base, or None when they share no history.

    Returns:
        ``{run id: tree sha or None}`` to pass to :func:`apply_changes` on ``ours``.
    """
    mine = dict(iter_run_trees(repo, ours))
    other = dict(iter_run_trees(repo, theirs))
    old = dict(iter_run_trees(repo, base)) if base else {}
    changes: dict[str, str | None] = {}
    for run_id in mine.keys() | other.keys():
        a, b, o = mine.get(run_id), other.get(run_id), old.get(run_id)
        if a == b or b == o:
            continue  # same on both sides, or only we changed it
        if a == o:
            changes[run_id] = b  # only they changed (or deleted) it
        elif a is None:
            changes[run_id] = b  # we deleted it, they changed it: keep their copy
        elif b is None:
            continue  # they deleted it, we changed it: keep ours
        elif _updated(repo, b) > _updated(repo, a):
            changes[run_id] = b
    return changes


def _updated(repo: GitRepo, tree: str) -> tuple[str, str]:
    from gitml.core import yamlfmt

    try:
        head = yamlfmt.load(read_run_files(repo, tree, ("run.yaml",))["run.yaml"].decode())
        stamp = str(head.get("updated") or head.get("end_time") or "")
    except (KeyError, ValueError, CorruptRunError):
        stamp = ""
    return stamp, tree


# -- lookup maps ---------------------------------------------------------------------------------

_EMPTY_BLOB = "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391"  # git's id of the empty blob


def map_paths(run_id: str, commit: str | None, start: str | None) -> list[tuple[str, ...]]:
    """Where run ``run_id`` is entered in the lookup maps, as path components.

    Args:
        run_id: the run's id.
        commit: its source commit (``source.commit`` in ``run.yaml``), or None.
        start: its ``start_time`` (``2026-11-27T10:23:27.123Z``), or None.

    Returns:
        ``("commits", c[:2], c, run_id[:2], run_id)`` when ``commit`` is a full sha, and
        ``("started", day, hour, minute, run_id[:2], "SS.mmm-<run id>")`` when ``start`` is a
        timestamp (read in UTC).
    """
    paths: list[tuple[str, ...]] = []
    if isinstance(commit, str) and COMMIT_RE.match(commit):
        paths.append((COMMITS_DIR, commit[:2], commit, run_id[:2], run_id))
    from gitml.core.filter import utc_text  # any ISO time a record may hold, filed by its UTC hour

    utc = utc_text(start) if isinstance(start, str) else None
    match = _START_RE.match(utc) if utc else None
    if match:
        day, hour, minute, second = match.groups()
        paths.append((STARTED_DIR, day, hour, minute, run_id[:2], f"{second}-{run_id}"))
    return paths


def _map_keys(repo: GitRepo, tree: str | None, hints: dict | None) -> tuple[str | None, str | None]:
    """``(source commit, start_time)`` of the run folder ``tree`` (None, None when unreadable)."""
    if tree is None:
        return None, None
    if hints and tree in hints:
        return hints[tree]
    try:
        raw = read_run_files(repo, tree, ("run.yaml",))["run.yaml"]
    except (KeyError, CorruptRunError, BadInputError):
        return None, None
    return _keys_of(raw)


def _keys_of(raw: bytes | None) -> tuple[str | None, str | None]:
    """``(source commit, start_time)`` from a ``run.yaml``'s bytes (None, None when unreadable)."""
    from gitml.core import yamlfmt

    if raw is None or isinstance(raw, TooLarge):
        return None, None
    try:
        head = yamlfmt.load(raw.decode())
        source = head.get("source") if isinstance(head, dict) else None
        commit = source.get("commit") if isinstance(source, dict) else None
        return (commit if isinstance(commit, str) else None,
                head.get("start_time") if isinstance(head.get("start_time"), str) else None)
    except (KeyError, ValueError, UnicodeError, CorruptRunError, BadInputError, AttributeError):
        return None, None


def _edit_tree(repo: GitRepo, sha: str | None, edits: dict[tuple[str, ...], str | None]) -> str | None:
    """Apply ``{path: blob sha or None}`` below the tree ``sha``; None when it ends up empty.

    Reads only the entries on the edited paths (see :meth:`GitRepo.edit_tree`).
    """
    if not edits:
        return sha
    here: dict[str, tuple[int, str] | None] = {}
    nested: dict[str, dict[tuple[str, ...], str | None]] = {}
    for path, blob in edits.items():
        if len(path) == 1:
            here[path[0]] = None if blob is None else (BLOB_MODE, blob)
        else:
            nested.setdefault(path[0], {})[path[1:]] = blob
    try:
        entries = repo.tree_entries(sha, nested) if sha else {}
    except (BadInputError, KeyError):  # unreadable: written anew
        entries, sha = {}, None
    for name, sub in nested.items():
        entry = entries.get(name)
        child = _edit_tree(repo, entry[1] if entry and entry[0] == TREE_MODE else None, sub)
        here[name] = None if child is None else (TREE_MODE, child)
    return repo.edit_tree(sha, here)


def _maps_for(repo: GitRepo, maps: dict[str, tuple[int, str]]) -> str | None:
    """The runs/ tree id a ``maps/`` folder says it describes (None when it says none or many).

    Read from the name of its ``runs-<tree id>`` entry: no object is opened.
    """
    named = [name[len(MAPS_FOR):] for name, (mode, _) in maps.items()
             if name.startswith(MAPS_FOR) and mode in FILE_MODES]
    return named[0] if len(named) == 1 else None


def _map_root(repo: GitRepo, tip: str | None, name: str) -> dict[str, tuple[int, str]] | None:
    """The top tree of map ``name`` at ``tip``, when the maps there describe its runs/ tree.

    None when the tip has no maps, or they were left behind by a writer that changed runs/
    without them (``maps/runs-<id>`` names another tree), or cannot be read.
    """
    if tip is None:
        return None
    try:
        root = repo.read_tree(repo.read_commit(tip)[0])
        runs, entry = root.get("runs"), root.get(MAPS_DIR)
        if not runs or not entry or runs[0] != TREE_MODE or entry[0] != TREE_MODE:
            return None
        maps = repo.read_tree(entry[1])
        if _maps_for(repo, maps) != runs[1]:
            return None
        top = maps.get(name)
        return repo.read_tree(top[1]) if top and top[0] == TREE_MODE else None
    except (BadInputError, KeyError):
        return None


def has_maps(repo: GitRepo, tip: str | None) -> bool:
    """Whether the runs-ref commit ``tip`` carries lookup maps that describe its runs.

    Refs written before the maps, or changed since by a writer that does not keep them, do
    not: readers then ask the query index.
    """
    return _map_root(repo, tip, COMMITS_DIR) is not None and _map_root(repo, tip, STARTED_DIR) is not None


def _run_names(repo: GitRepo, entry: tuple[int, str] | None) -> list[str]:
    """The run ids entered in one map folder (``<id[:2]>/<run id>`` below it); the rest is ignored."""
    if not entry or entry[0] != TREE_MODE:
        return []
    names: list[str] = []
    try:
        for shard_name, (mode, sha) in repo.read_tree(entry[1]).items():
            if mode != TREE_MODE or not SHARD_RE.match(shard_name):
                continue
            names += [name for name, (kind, _) in repo.read_tree(sha).items()
                      if kind in FILE_MODES and RUN_ID_RE.match(name) and name.startswith(shard_name)]
    except (BadInputError, KeyError):
        return names
    return names


def runs_of_commits(repo: GitRepo, tip: str | None, commits: list[str]) -> dict[str, list[str]] | None:
    """The ids of the runs made from each of ``commits``, from the ``commits/`` map at ``tip``.

    Costs two tree reads per commit however many runs the ref holds. The map is a lookup aid
    written by whoever pushed the runs: callers read each run and check its ``source.commit``.

    Args:
        repo: the open repository.
        tip: a runs-ref commit.
        commits: full commit shas.

    Returns:
        ``{commit: [run id, ...]}`` for the commits that have runs, or None when ``tip`` has no
        lookup maps (the caller falls back to the query index).
    """
    top = _map_root(repo, tip, COMMITS_DIR)
    if top is None or _map_root(repo, tip, STARTED_DIR) is None:
        return None
    found: dict[str, list[str]] = {}
    shards: dict[str, dict[str, tuple[int, str]]] = {}
    for commit in commits:
        if not COMMIT_RE.match(commit):
            continue
        if commit[:2] not in shards:
            entry = top.get(commit[:2])
            try:
                shards[commit[:2]] = repo.read_tree(entry[1]) if entry and entry[0] == TREE_MODE else {}
            except (BadInputError, KeyError):
                shards[commit[:2]] = {}
        ids = _run_names(repo, shards[commit[:2]].get(commit))
        if ids:
            found[commit] = sorted(ids)
    return found


def started_minutes(repo: GitRepo, tip: str | None) -> Iterator[list[tuple[str, str]]] | None:
    """The ``started/`` map at ``tip``, newest minute first, each as its runs in search order.

    Each item is one minute's ``[(start time, run id), ...]``, sorted as a search sorts with no
    sort key (start time descending, then id), the times as ``YYYY-MM-DDTHH:MM:SS.mmmZ``. Lazy:
    a minute's folders are read when the caller asks for it, so a caller that wants the newest
    runs reads the newest minutes only (their trees, not their runs), whatever the ref holds.

    Args:
        repo: the open repository.
        tip: a runs-ref commit.

    Returns:
        The minutes, or None when ``tip`` has no lookup maps.
    """
    top = _map_root(repo, tip, STARTED_DIR)
    if top is None or _map_root(repo, tip, COMMITS_DIR) is None:
        return None

    def folders(entry: tuple[int, str], pattern: re.Pattern) -> list[tuple[str, tuple[int, str]]]:
        try:
            tree = repo.read_tree(entry[1]) if entry[0] == TREE_MODE else {}
        except (BadInputError, KeyError):
            return []
        return sorted(((name, sub) for name, sub in tree.items() if pattern.match(name)), reverse=True)

    def minutes() -> Iterator[list[tuple[str, str]]]:
        for day, day_entry in sorted(((d, e) for d, e in top.items() if _DAY_RE.match(d)), reverse=True):
            for hour, hour_entry in folders(day_entry, _HOUR_RE):
                for minute, minute_entry in folders(hour_entry, _HOUR_RE):
                    found = []
                    for shard_name, shard_entry in folders(minute_entry, SHARD_RE):
                        for leaf, (mode, _) in folders(shard_entry, _LEAF_RE):
                            second, run_id = _LEAF_RE.match(leaf).groups()
                            if mode in FILE_MODES and run_id.startswith(shard_name):
                                found.append((f"{day}T{hour}:{minute}:{second}Z", run_id))
                    found.sort(key=lambda item: item[1])
                    found.sort(key=lambda item: item[0], reverse=True)
                    if found:
                        yield found

    return minutes()


def start_key(start: object) -> str | None:
    """A ``start_time`` as the ``started/`` map files it (UTC, ``…T…:SS.mmmZ``); None: not a time."""
    from gitml.core.filter import utc_text

    utc = utc_text(start) if isinstance(start, str) else None
    return utc if utc and _START_RE.match(utc) else None

def ids_with_prefix(repo: GitRepo, tip: str | None, prefix: str, limit: int = 3) -> list[str]:
    """Up to ``limit`` run ids at ``tip`` starting with hex ``prefix`` (2 or more characters).

    Reads the prefix's shard only. Well-formed runs and run-named entries that are not (a file
    where a run folder should be) both count, as the query index counts its corrupt runs.

    Args:
        repo: the open repository.
        tip: a runs-ref commit, or None.
        prefix: lowercase hex, at least the two characters of a shard.
        limit: at most this many ids.

    Returns:
        The matching ids, sorted.
    """
    top = runs_tree(repo, tip)
    if top is None or len(prefix) < 2:
        return []
    entry = repo.read_tree(top).get(prefix[:2])
    if entry is None:
        return []
    found = sorted(key for key in shard_runs(repo, prefix[:2], entry)
                   if RUN_ID_RE.match(key) and key.startswith(prefix))
    return found[:limit]


def run_trees(repo: GitRepo, tip: str | None, run_ids: Iterable[str]) -> dict[str, str]:
    """``{run id: tree sha}`` of the runs among ``run_ids`` that are folders at ``tip``.

    Reads ``runs/`` once and each shard the ids fall in once.

    Args:
        repo: the open repository.
        tip: a runs-ref commit, or None.
        run_ids: full run ids (others are skipped).

    Returns:
        The runs found, in the order asked.
    """
    top_sha = runs_tree(repo, tip)
    if top_sha is None:
        return {}
    top = repo.read_tree(top_sha)
    shards: dict[str, dict[str, tuple[int, str]]] = {}
    found: dict[str, str] = {}
    for run_id in dict.fromkeys(run_ids):
        if not RUN_ID_RE.match(run_id):
            continue
        name = run_id[:2]
        if name not in shards:
            entry = top.get(name)
            try:
                shards[name] = repo.read_tree(entry[1]) if entry and entry[0] == TREE_MODE else {}
            except (BadInputError, KeyError):
                shards[name] = {}
        entry = shards[name].get(run_id)
        if entry and entry[0] == TREE_MODE:
            found[run_id] = entry[1]
    return found


def write_maps(repo: GitRepo, ref: str = RUNS_REF) -> int | None:
    """Give a runs ref that lacks them its lookup maps, in one commit that changes nothing else.

    A ref written before the maps existed, or changed since by a writer that does not keep
    them (plain git, an older gitml), has none, and every later write leaves it so: fresh
    clones then answer ``diff`` and ``runs list`` through a full index rebuild. This reads each
    run's ``run.yaml`` once (with two git processes), enters every run whose record names a
    source commit or a start time, and commits the maps beside the unchanged ``runs/`` tree;
    from then on every write keeps them. A run whose ``run.yaml`` cannot be read is left out
    of the maps, as it is out of every answer.

    Args:
        repo: the open repository.
        ref: the runs ref.

    Returns:
        The number of runs entered, or None when the tip already has maps that describe its
        runs (nothing is written) or there are no runs.

    Raises:
        ConcurrencyError: the ref kept moving for every attempt.
        GitmlError: git failed.
    """
    from gitml.core import yamlfmt

    for _ in attempts(f"update {ref}", hint="another process keeps the ref busy; try again"):
        tip = repo.ref(ref)
        top_sha = runs_tree(repo, tip)
        if top_sha is None or has_maps(repo, tip):
            return None
        edits: dict[tuple[str, ...], str | None] = {}
        entered = 0
        for run_id, files in bulk_read_runs(repo, tip, None, ("run.yaml",)).items():
            raw = files.get("run.yaml")
            if raw is None or isinstance(raw, TooLarge):
                continue
            try:
                head = yamlfmt.load(raw.decode())
            except (ValueError, UnicodeError):
                continue
            source = head.get("source")
            commit = source.get("commit") if isinstance(source, dict) else None
            paths = map_paths(run_id, commit, head.get("start_time"))
            entered += bool(paths)
            edits.update(dict.fromkeys(paths, _EMPTY_BLOB))
        repo.write_blob(b"")
        maps: dict[str, tuple[int, str]] = {}
        for name in MAP_DIRS:
            sha = _edit_tree(repo, None, {path[1:]: blob for path, blob in edits.items() if path[0] == name})
            maps[name] = (TREE_MODE, sha or repo.write_tree({}))
        maps[MAPS_FOR + top_sha] = (BLOB_MODE, _EMPTY_BLOB)
        root = repo.read_tree(repo.read_commit(tip)[0])
        root[MAPS_DIR] = (TREE_MODE, repo.write_tree(maps))
        commit = repo.write_commit(repo.write_tree(root), [tip], f"lookup maps for {entered} runs")
        repo.flush()
        if repo.set_ref_if_equals(ref, tip, commit):
            return entered
    raise AssertionError("unreachable: attempts() raises when it runs out")
