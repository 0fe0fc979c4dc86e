"""A verified local copy of what an artifact URI names, for code that must open it (a model).

:func:`materialize` fetches the files into the local content store (each hash checked as it
arrives), copies them once into ``<git common dir>/gitml/materialized/<key>/``, where ``key``
is a hash of the files' paths, digests and modes, and checks every file there against its
digest again on each call: a copy edited after the fact is refused, never loaded.
"""

from __future__ import annotations

import hashlib
import os
import posixpath
import shutil
import tempfile
from pathlib import Path

from gitml.artifacts.transfer import _fetch_objects, _inside, _is_folder, _optional_remote, _select, _targets
from gitml.core import store
from gitml.core.errors import TamperedError
from gitml.core.workspace import WorkspaceLike, open_workspace

FOLDER = "materialized"


def materialize(uri: str, remote: str | None = None, repo: WorkspaceLike = None) -> Path:
    """A local folder (or file) holding exactly what ``uri`` names, every byte verified.

    Args:
        uri: ``runs:/<run>/<path>`` or ``models:/<model>@<stage>``, ``models:/<model>/vX.Y.Z``.
        remote: artifact remote to fetch from when the local cache lacks an object.
        repo: a Workspace, an open repository or a path.

    Returns:
        The path: a folder for a directory artifact (or a folder inside one), else the file.
        Read it, never write it (the next call checks it again).

    Raises:
        BadInputError: a bad URI, an unknown model, version or stage, no such artifact, a
            ``remote`` that is not configured.
        RunNotFoundError: the run is not on the runs ref.
        TamperedError: a file of the local copy does not match its digest (nothing is opened).
        GitmlError: an object is in no store, or corrupted on the remote.
    """
    with open_workspace(repo) as ws:
        where = ws.resolve_uri(uri)
        source = _optional_remote(ws, remote)
        refs = _select(ws, where.run_id, where.path, source)
        single = len(refs) == 1 and refs[0].path == where.path
        rels = [posixpath.basename(where.path) if single else posixpath.relpath(ref.path, where.path or ".")
                for ref in refs]
        key = hashlib.sha256("\n".join(f"{rel}\t{ref.digest}\t{ref.mode:o}" for rel, ref in
                                       sorted(zip(rels, refs, strict=True))).encode()).hexdigest()
        root = ws.gitml_dir / FOLDER
        target = root / key
        if not target.exists():
            _fetch_objects(ws, source, [ref for ref in refs if not _is_folder(ref)], None)
            root.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=root, prefix=".tmp-"))
            try:
                paths = _targets(staging, [rel for rel in rels if rel != "."])
                for ref, path in zip([r for r, rel in zip(refs, rels, strict=True) if rel != "."], paths, strict=True):
                    if _is_folder(ref):
                        path.mkdir(parents=True, exist_ok=True)
                        continue
                    path.parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(store.object_path(ws.cache, ref.digest), path)
                    if store.hash_file(path) != ref.digest:  # the cache's own copy went bad since it was stored
                        raise TamperedError(
                            f"the cached bytes of {ref.path} (run {ref.run_id[:8]}) do not match their sha256 "
                            f"{ref.digest[:12]}; refusing to use them",
                            hint="`gitml artifacts verify --delete-bad` drops them; the next load fetches them "
                                 "again from the artifact remote")
                    os.chmod(path, 0o444 if ref.mode == 0o644 else 0o555)
                try:
                    os.rename(staging, target)
                except OSError:  # another process made it first: theirs is checked below
                    pass
            finally:
                if staging.exists():
                    shutil.rmtree(staging, ignore_errors=True)
        for ref, rel in zip(refs, rels, strict=True):
            if _is_folder(ref) or rel == ".":
                continue
            path = _inside(target, rel)
            if not path.is_file() or store.hash_file(path) != ref.digest:
                raise TamperedError(f"the local copy of {ref.path} (run {ref.run_id[:8]}) does not match "
                                    f"its recorded sha256 {ref.digest[:12]}; refusing to use it",
                                    hint=f"delete {target} and try again (it is rebuilt from the cache, "
                                         f"whose bytes are checked too)")
        return target / rels[0] if single else target
