"""The Workspace: one repository as every gitml service sees it, opened once per call.

A :class:`Workspace` owns the open repository, its configuration (the team's ``gitml.yaml``,
the personal git config), the local content store, the artifact remotes and the query index
(opened on first use). It answers the questions every capability asks — which run an id prefix
names, which runs a commit made, what ``runs:/`` or ``models:/`` URI points at, which objects
the runs reference, what the registry holds — so that no service re-opens the repository or
reaches into another service for them.

Open one with :func:`open_workspace` from a path, an open :class:`~gitml.core.gitrepo.GitRepo`
or another Workspace; whoever opened it closes it::

    with open_workspace("path/to/repo") as ws:
        run_id = ws.resolve_run("1a2b")
        uri = ws.resolve_uri("models:/churn@prod")   # ArtifactURI(run_id=..., path="model.pkl")
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Union

from gitml.core import runsref, store
from gitml.core.errors import BadInputError, GitmlError, NoVersionError, RunNotFoundError
from gitml.core.formats import RUN_FILES, STATUSES, parse_history, parse_run
from gitml.core.gitrepo import GitRepo
from gitml.core.ids import check_artifact_path, check_run_prefix, is_digest

if TYPE_CHECKING:
    from gitml.core.config import Config
    from gitml.core.formats import Run
    from gitml.core.index import Index
    from gitml.core.registry import ModelState, Version
    from gitml.core.remotes import Remote

WorkspaceLike = Union[str, os.PathLike, GitRepo, "Workspace", None]
_FULL_SHA = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")
_FULL_RUN_ID = re.compile(r"^[0-9a-f]{32}$")


@dataclass(frozen=True)
class ArtifactURI:
    """Where a ``runs:/`` or ``models:/`` URI points: a run and a logical artifact path ("" = all).

    ``model`` and ``version`` are set when the URI named a registry version.
    """

    run_id: str
    path: str
    model: str | None = None
    version: str | None = None

    def __str__(self) -> str:
        return f"runs:/{self.run_id}/{self.path}" if self.path else f"runs:/{self.run_id}"


@dataclass
class ObjectRef:
    """One stored object and where it is used: sha256 digest, size in bytes, run, logical path."""

    digest: str
    size: int
    run_id: str
    path: str
    mode: int = 0o644


@dataclass
class Referenced:
    """What runs reference: one :class:`ObjectRef` per object, and the runs that were refused.

    ``refused`` is ``{run id: problem}`` for runs that cannot be read (a bad record or
    manifest), so that one bad run never hides the others.
    """

    refs: list[ObjectRef] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)


@dataclass
class Unpulled:
    """Runs this clone knows exist elsewhere but has not pulled (see :meth:`Workspace.unpulled_runs`).

    Attributes:
        remotes: git remotes whose remote-tracking runs ref (``refs/gitml/remotes/<remote>/runs``,
            brought by a ``git fetch`` or ``gitml fetch``) has commits the local runs ref lacks.
        registered: ``{run id: registry version naming it}`` (``churn@v0.0.1``) for registry
            versions whose run is not on the local runs ref: in a fresh clone the tags came and
            the runs did not (a plain ``git clone`` does not fetch ``refs/gitml/*``); where the
            runs ref exists, the run may also have been deleted here.
        no_runs_here: the local runs ref does not exist (a fresh clone, before ``gitml pull``).
    """

    remotes: list[str] = field(default_factory=list)
    registered: dict[str, str] = field(default_factory=dict)
    no_runs_here: bool = True

    def __bool__(self) -> bool:
        return bool(self.remotes or self.registered)

    @property
    def pull(self) -> str:
        """The command that brings the runs: ``gitml pull REMOTE`` when one remote is known."""
        return f"gitml pull {self.remotes[0]}" if len(self.remotes) == 1 else "gitml pull"

    def hint(self, naming: str | None = None) -> str | None:
        """One sentence saying what is missing and that ``gitml pull`` brings it.

        Args:
            naming: the registry version that names the run asked for, when one does.

        Returns:
            The sentence, or None when nothing is missing.
        """
        if self.remotes:
            who = " and ".join(self.remotes)
            return f"{who} {'has' if len(self.remotes) == 1 else 'have'} runs this clone has not pulled: {self.pull}"
        if not self.registered:
            return None
        if naming is not None:
            if self.no_runs_here:
                return f"{naming} names it, but this clone has no runs yet: {self.pull}"
            return f"{naming} names it, but it is not here: deleted, or not pulled yet: {self.pull}"
        versions = sorted(self.registered.values())
        more = f" and {len(versions) - 2} more" if len(versions) > 2 else ""
        plural = len(versions) > 1
        tags = f"registry tag{'s' if plural else ''} {', '.join(versions[:2])}{more}"
        runs = "name runs" if plural else "names a run"
        if self.no_runs_here:
            return f"this clone has no runs yet, but {tags} {runs}: {self.pull}"
        return f"{tags} {runs} that {'are' if plural else 'is'} not here: deleted, or not pulled yet: {self.pull}"


#: Fetches missing objects (directory manifests) into the local store: given by the artifacts
#: service when a remote may have what the cache lacks.
Fetcher = Callable[[list[ObjectRef]], None]


class Workspace:
    """One repository with everything gitml keeps beside it. See the module docstring.

    Prefer :func:`open_workspace`, which closes what it opened.

    Args:
        repo: an open repository; the workspace closes it on :meth:`close` only if ``owns_repo``.
        owns_repo: whether :meth:`close` closes ``repo``.
    """

    def __init__(self, repo: GitRepo, owns_repo: bool = False) -> None:
        self.repo = repo
        self._owns_repo = owns_repo
        self._config: Config | None = None
        self._index: Index | None = None

    @classmethod
    def open(cls, path: str | os.PathLike | None = None) -> Workspace:
        """Open the repository containing ``path`` (default: the current directory).

        Args:
            path: any path inside the work tree.

        Returns:
            A workspace that owns its repository: :meth:`close` closes it.

        Raises:
            NotARepositoryError: ``path`` is not inside a git work tree.
        """
        return cls(GitRepo(path), owns_repo=True)

    def close(self) -> None:
        """Close the index, and the repository if this workspace opened it."""
        if self._index is not None:
            self._index.close()
            self._index = None
        if self._owns_repo:
            self.repo.close()

    def __enter__(self) -> Workspace:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- what it owns ----------------------------------------------------------------------------
    @property
    def root(self) -> Path:
        """The work tree's top folder."""
        return self.repo.root

    @property
    def gitml_dir(self) -> Path:
        """``<git common dir>/gitml``: the index, the content store and runs in progress."""
        return self.repo.gitml_dir

    @property
    def cache(self) -> Path:
        """The local content store's folder (see :mod:`gitml.core.store`)."""
        return store.cache_dir(self.repo.gitml_dir)

    @property
    def config(self) -> Config:
        """The team's ``gitml.yaml`` in the work tree (defaults when there is none), read once.

        Raises:
            BadInputError: gitml.yaml does not pass its schema.
        """
        if self._config is None:
            from gitml.core.config import load_config  # most commands never read gitml.yaml

            self._config = load_config(self.repo.root)
        return self._config

    def remotes(self) -> list[Remote]:
        """The artifact remotes: gitml.yaml's and the personal ones in git config, merged.

        Returns:
            The remotes, by name (see :func:`gitml.core.remotes.list_remotes`).

        Raises:
            BadInputError: gitml.yaml is invalid.
        """
        from gitml.core.remotes import list_remotes

        return list_remotes(self.repo)

    def remote(self, name: str | None = None) -> Remote:
        """The artifact remote ``name``, or the default one.

        Args:
            name: the remote's name (default: the default remote).

        Returns:
            The remote, with its real values: credentials included (display
            :func:`gitml.core.remotes.masked` instead).

        Raises:
            BadInputError: no such remote, or no default when ``name`` is None.
        """
        from gitml.core.remotes import get_remote

        return get_remote(self.repo, name)

    @property
    def index(self) -> Index:
        """The query index, opened (and brought up to date with the runs ref) on first use."""
        if self._index is None:
            from gitml.core.index import Index

            self._index = Index(self.repo)
        return self._index

    @property
    def runs_tip(self) -> str | None:
        """The commit the runs ref points at, or None before the first run."""
        return self.repo.ref(runsref.RUNS_REF)

    # -- questions -------------------------------------------------------------------------------
    def resolve_run(self, id_or_prefix: str) -> str:
        """The full id of the one run on the runs ref whose id starts with ``id_or_prefix``.

        Args:
            id_or_prefix: a run id, or 4 or more of its first hex digits (any case).

        Returns:
            The full run id (32 lowercase hex).

        Raises:
            BadInputError: the text is not a hex run id or prefix.
            RunNotFoundError: no run, or more than one, matches.
        """
        if not isinstance(id_or_prefix, str):
            raise BadInputError(f"a run id must be text, got {type(id_or_prefix).__name__}: {id_or_prefix!r}")
        prefix = check_run_prefix(id_or_prefix)
        if len(prefix) == 32:
            if runsref.run_entry(self.repo, self.runs_tip, prefix):
                return prefix
            raise RunNotFoundError(f"no run {prefix} on {runsref.RUNS_REF}", hint=self.unpulled_hint(prefix))
        if self.index.current():
            matches = self.index.ids_with_prefix(prefix)
        else:  # the index is behind (a fresh clone, a pull): the prefix's shard says as much
            matches = runsref.ids_with_prefix(self.repo, self.runs_tip, prefix)
        if not matches:
            raise RunNotFoundError(f"no run matches {id_or_prefix!r}",
                                   hint=self.unpulled_hint(prefix) or "see `gitml runs list`")
        if len(matches) > 1:
            more = ", ..." if len(matches) > 2 else ""
            raise RunNotFoundError(f"run prefix {id_or_prefix!r} is ambiguous ({', '.join(matches[:2])}{more})",
                                   hint="give more characters")
        return matches[0]

    def unpulled_runs(self, ask_remotes: bool = False) -> Unpulled:
        """Runs this clone knows exist elsewhere but has not pulled, from what is here (no network).

        Two signs: a remote-tracking runs ref (``refs/gitml/remotes/<remote>/runs``) that the
        local runs ref does not contain, and registry versions whose run is not on the local
        runs ref (in a fresh clone the tags came, the runs did not).

        With ``ask_remotes``, a clone that has no runs at all, no remote-tracking runs ref (a
        fresh ``git clone``, which does not bring ``refs/gitml/*``) and no registry tag naming a
        run (nothing here to go by) also asks each git remote
        whether it has a runs ref (``git ls-remote``, at most 10 s each, never a prompt; an
        unreachable remote is not counted).

        Args:
            ask_remotes: ask the git remotes, as above (the one question here that uses the
                network; callers ask it only where a fresh clone would otherwise say nothing).

        Returns:
            The :class:`Unpulled` remotes and registered runs; false when there are none.
        """
        local = self.runs_tip
        found = Unpulled(no_runs_here=local is None)
        prefix = "refs/gitml/remotes/"
        tracked = sorted(self.repo.refs_under(prefix).items())
        for ref, tip in tracked:
            remote = ref[len(prefix):-len("/runs")] if ref.endswith("/runs") else ""
            if not remote or tip == local or (local is not None and self.repo.is_ancestor(tip, local)):
                continue
            found.remotes.append(remote)
        try:
            state = self.registry_state()
        except GitmlError:  # an invalid gitml.yaml: the tags cannot be folded, say nothing of them
            state = {}
        for name in sorted(state):
            for version, info in state[name].versions.items():
                run_id = info.run_id
                if run_id and run_id not in found.registered and _FULL_RUN_ID.match(run_id) \
                        and runsref.run_entry(self.repo, local, run_id) is None:
                    found.registered[run_id] = f"{name}@{version}"
        if ask_remotes and local is None and not tracked and not found.registered:
            found.remotes += [name for name in sorted(self.repo.remotes())
                              if self.repo.remote_has_ref(name, runsref.RUNS_REF)]
        return found

    def unpulled_hint(self, run: str | None = None, ask_remotes: bool = True) -> str | None:
        """What to tell a user who asked for a run (or listed runs) this clone may not have pulled.

        Args:
            run: a run id or prefix that was not found; None for "no runs at all".
            ask_remotes: in a clone with no runs and no fetched runs ref, ask the git remotes
                whether they have runs (see :meth:`unpulled_runs`).

        Returns:
            A hint ending in ``gitml pull …`` (naming where the run is, when that is known), or
            None when nothing here says runs are missing.
        """
        missing = self.unpulled_runs(ask_remotes)
        if not missing:
            return None
        if run:
            run = run.lower()
            for remote in missing.remotes:
                tip = self.repo.ref(runsref.tracking_ref(remote))
                if len(run) == 32 and runsref.run_entry(self.repo, tip, run) is not None:
                    return f"it is on {remote}'s runs, not pulled here yet: gitml pull {remote}"
            named = sorted(version for run_id, version in missing.registered.items() if run_id.startswith(run))
            if named and not missing.remotes:
                return missing.hint(named[0])
        return missing.hint()

    def runs_at(self, commits: Iterable[str], status: str | None = "FINISHED") -> list[Run]:
        """Runs made from any of ``commits``, newest first, as the query index has them.

        Args:
            commits: full code commit shas (``source.commit`` of the runs), or one as text.
            status: only runs with this status (RUNNING, FINISHED, FAILED, KILLED); None for any.

        Returns:
            The runs, without history or patch text (read one whole with ``gitml.get_run``).

        Raises:
            BadInputError: a commit that is not a full lowercase sha (resolve revisions first
                with ``ws.repo.rev_parse``), or an unknown status.
        """
        commits = [commits] if isinstance(commits, str) else list(commits)
        for commit in commits:
            if not isinstance(commit, str) or not _FULL_SHA.match(commit):
                raise BadInputError(f"not a full commit sha: {commit!r}",
                                    hint="resolve a revision first: ws.repo.rev_parse('main')")
        if status is not None and status not in STATUSES:
            raise BadInputError(f"unknown run status {status!r}", hint=f"one of {', '.join(STATUSES)}")
        return self.index.runs_at(list(dict.fromkeys(commits)), status)

    def resolve_uri(self, uri: str) -> ArtifactURI:
        """Where an artifact URI points.

        Args:
            uri: ``runs:/<run id or prefix>[/<path>]``, or
                ``models:/<model>@<stage|latest|vX.Y.Z>`` or ``models:/<model>/<vX.Y.Z|latest>``
                (MLflow's two spellings).

        Returns:
            The run and logical artifact path (``""`` for all of the run's artifacts), with the
            model and version for a ``models:/`` URI.

        Raises:
            BadInputError: another scheme, a bad run id or path, an unknown model, version or stage.
            RunNotFoundError: the run is not on the runs ref (its hint says ``gitml pull`` when
                a remote-tracking runs ref or a registry tag shows it exists elsewhere).
            NoVersionError: no version holds the stage, or every version is deregistered.
            GitmlError: the model version records no run artifact (a hand-made or GTO tag whose
                commit has no single-artifact run).
        """
        if uri.startswith("runs:/"):
            run, _, path = uri[len("runs:/"):].lstrip("/").partition("/")
            path = path.strip("/")
            return ArtifactURI(self.resolve_run(run), check_artifact_path(path) if path else "")
        if uri.startswith("models:/"):
            body = uri[len("models:/"):].strip("/")
            if "@" not in body:
                # models:/<model>/<version|stage> (MLflow's path form), or models:/<model> for the
                # latest version, where a model name may itself hold "/" (nlp/sentiment).
                model, _, version = body.rpartition("/")
                if model and body not in self.registry_state():
                    if version.isdigit():  # MLflow numbers versions 1, 2, 3; GTO's are semver tags
                        known = sorted(self.model_state(model).versions)
                        raise BadInputError(f"{uri}: gitml's model versions are semver tags like v0.0.1, not "
                                            f"MLflow's numbers ({model} has: {', '.join(known[-5:]) or 'none'})",
                                            hint=f"use models:/{model}/vX.Y.Z, models:/{model}@<stage> or "
                                                 f"models:/{model}@latest")
                    body = f"{model}@{version}"
            model, version, info = self.model_version(body)
            if not (info.run_id and info.path):
                raise GitmlError(f"{uri}: {model} {version} records no run artifact",
                                 hint="it was tagged without gitml's metadata; fetch it with runs:/<run>/<path>")
            if _FULL_RUN_ID.match(info.run_id) and runsref.run_entry(self.repo, self.runs_tip, info.run_id) is None:
                raise RunNotFoundError(f"{uri}: the run of {model} {version} ({info.run_id}) is not on "
                                       f"{runsref.RUNS_REF} here", hint=self.unpulled_hint(info.run_id))
            return ArtifactURI(info.run_id, info.path, model, version)
        raise BadInputError(f"unsupported artifact URI {uri!r}",
                            hint="use runs:/<run-id>/<path> or models:/<model>@<stage>")

    def registry_state(self, model: str | None = None) -> dict[str, ModelState]:
        """Every model in the registry (or only ``model``, when it exists), folded from the tags.

        Stage rules come from gitml.yaml's ``registry:`` section (``one_stage_per_version``).

        Args:
            model: only this model (default: every model).

        Returns:
            ``{model name: state}``; an unknown ``model`` gives ``{}``.

        Raises:
            BadInputError: ``model`` is not a valid model name, or gitml.yaml is invalid.
        """
        from gitml.core.registry import fold, load_events
        from gitml.core.tags import check_model

        raw = self.config.raw.get("registry") or {}
        one_stage = bool(raw.get("one_stage_per_version", False)) if isinstance(raw, dict) else False
        # With a model, only its tags are listed and read: the fold holds that model or nothing.
        return fold(load_events(self.repo, check_model(model) if model is not None else None), one_stage)

    def model_state(self, model: str) -> ModelState:
        """One model's registry state.

        Args:
            model: the model's name.

        Returns:
            Its state, folded from its tags.

        Raises:
            BadInputError: a bad model name, or no such model.
        """
        found = self.registry_state(model)
        if not found:
            raise BadInputError(f"no model {model!r} in the registry", hint="see `gitml registry show`")
        return next(iter(found.values()))

    def model_version(self, ref: str) -> tuple[str, str, Version]:
        """Resolve a model reference to one registered version.

        A version tagged without gitml's metadata (by GTO or by hand) gets the run and artifact
        of the newest finished run made from its commit, when that run has exactly one artifact.

        Args:
            ref: ``MODEL@STAGE``, ``MODEL@latest`` or ``MODEL@vX.Y.Z``; a bare ``MODEL`` means
                latest.

        Returns:
            ``(model, version, version info)``.

        Raises:
            BadInputError: an unknown model, or a version not registered (or deregistered).
            NoVersionError: no version holds the stage, or every version is deregistered
                (``@latest``): exit 1, the model exists but holds nothing now.
        """
        from gitml.core.tags import check_stage, check_version

        model, sep, what = ref.rpartition("@")
        if not sep:
            model, what = ref, "latest"
        state = self.model_state(model)
        if what == "latest":
            version = state.latest
            if version is None:
                raise NoVersionError(f"{model} has no live version: every version is deregistered")
        elif what.startswith("v") and what[1:2].isdigit():
            version = check_version(what)
        else:
            stage = check_stage(what)  # any case: churn@Production is stage production
            version = state.stages.get(stage)
            if version is None:
                raise NoVersionError(f"no version of {model} is in stage {stage!r}")
        info = state.versions.get(version or "")
        if info is None or info.deregistered:
            raise BadInputError(f"{model} has no registered version {what!r}")
        if info.run_id is None:
            runs = self.runs_at([info.commit])
            if runs and len(runs[0].artifacts) == 1:
                info.run_id, info.path = runs[0].id, next(iter(runs[0].artifacts))
        return model, version, info

    def referenced_objects(self, run_ids: Iterable[str] | None = None, tip: str | None = None,
                           fetch: Fetcher | None = None, strict: bool = False) -> Referenced:
        """Every object the runs reference, one :class:`ObjectRef` per digest.

        That is: artifact files, directory manifests and their files, and full metric histories.

        Args:
            run_ids: ids or prefixes (default: every run at ``tip``).
            tip: a runs-ref commit (default: the runs ref).
            fetch: brings a directory manifest missing from the local store (from a remote);
                without it, a missing manifest's files are not listed (the manifest shows as
                referenced, so it shows as missing).
            strict: raise on the first unreadable run instead of listing it in ``refused``.

        Returns:
            The objects, and the runs refused (without ``strict``). A size unknown from the
            record is taken from the local store, else 0.

        Raises:
            BadInputError: ``tip`` is not the full sha of a commit in this repository.
            GitmlError: with ``strict``, a run or one of its manifests cannot be read.
            RunNotFoundError: a run id does not resolve.
        """
        if isinstance(run_ids, str):
            run_ids = [run_ids]
        if tip is not None and (not isinstance(tip, str) or not _FULL_SHA.match(tip)
                                or not self.repo.has_object(tip) or self.repo.rev_parse(tip) != tip):
            raise BadInputError(f"not a commit in this repository: {tip!r}",
                                hint="give the full sha of a runs-ref commit")
        refs: dict[str, ObjectRef] = {}
        refused: dict[str, str] = {}
        for run_id, files in self._run_files(run_ids, tip).items():
            try:
                found = self._run_objects(run_id, files, fetch)
            except GitmlError as exc:
                if strict:
                    raise
                refused[run_id] = exc.message.removeprefix(f"run {run_id}: ")
                continue
            for ref in found:
                refs.setdefault(ref.digest, ref)
        for ref in refs.values():
            if not ref.size:
                local = store.object_path(self.cache, ref.digest)
                ref.size = local.stat().st_size if local.exists() else 0
        return Referenced(list(refs.values()), refused)

    def manifest(self, digest: str, where: str, fetch: Fetcher | None = None) -> list[dict]:
        """The checked file list of directory manifest ``digest``.

        Args:
            digest: the manifest's sha256, hex.
            where: what the manifest belongs to, for errors.
            fetch: brings the manifest into the local store when it is missing there.

        Returns:
            Its entries (see :func:`gitml.core.store.manifest_files`).

        Raises:
            GitmlError: the manifest is not in the local store (and ``fetch`` could not bring
                it), or it is malformed or unsafe.
        """
        path = store.object_path(self.cache, digest)
        if not path.exists():
            if fetch is None:
                raise GitmlError(f"manifest of {where} ({digest[:12]}) is not in the local cache")
            fetch([ObjectRef(digest, 0, "", f"manifest of {where}")])
        return store.manifest_files(path.read_bytes(), where)

    def _run_files(self, run_ids: Iterable[str] | None, tip: str | None) -> dict[str, dict[str, bytes]]:
        tip = tip or self.runs_tip
        if tip is None:
            return {}
        wanted = None if run_ids is None else {self.resolve_run(r) for r in run_ids}
        if wanted is not None and len(wanted) <= 32:
            trees = {r: runsref.run_tree(self.repo, tip, r) for r in wanted}
            return {r: runsref.read_run_files(self.repo, t) for r, t in trees.items() if t}
        return runsref.bulk_read_runs(self.repo, tip, wanted, (*RUN_FILES, "history.tsv"))

    def _run_objects(self, run_id: str, files: dict[str, bytes], fetch: Fetcher | None) -> list[ObjectRef]:
        run = parse_run(run_id, files)
        out: list[ObjectRef] = []
        for path, entry in run.artifacts.items():
            digest, size = entry["sha256"], int(entry.get("size") or 0)
            if entry["kind"] == "dir":
                out.append(ObjectRef(digest, 0, run_id, path + "/ (manifest)"))
                if fetch is None and not store.object_path(self.cache, digest).exists():
                    continue  # its files are unknown here; the manifest itself shows as missing
                for item in self.manifest(digest, f"run {run_id[:8]} {path}", fetch):
                    out.append(ObjectRef(item["sha256"], item["size"], run_id, f"{path}/{item['path']}"))
            else:
                out.append(ObjectRef(digest, size, run_id, path))
        if "history.tsv" in files:
            _, full = parse_history(run_id, files["history.tsv"])
            if full:
                out.append(ObjectRef(full, 0, run_id, "history.tsv (full)"))
        return out

    def active_objects(self) -> set[str]:
        """Digests logged by runs still in progress (or killed and resumable), manifests expanded.

        Returns:
            sha256 digests (hex); a directory's files are included when its manifest is in the
            local store.

        Raises:
            GitmlError: a manifest in the local store is malformed or unsafe.
        """
        from gitml.core import active

        found: set[str] = set()
        for meta in active.list_active(self.gitml_dir):
            for entry in active.read_log(self.gitml_dir / active.ACTIVE_DIR / meta["id"]).artifacts.values():
                digest = entry.get("sha256")
                if not is_digest(digest):
                    continue
                found.add(digest)
                manifest = store.object_path(self.cache, digest)
                if entry.get("kind") == "dir" and manifest.exists():
                    found.update(i["sha256"] for i in store.manifest_files(manifest.read_bytes(), meta["id"]))
        return found


@contextlib.contextmanager
def open_workspace(where: WorkspaceLike = None) -> Iterator[Workspace]:
    """Yield a :class:`Workspace`; whoever opened a thing closes it.

    Args:
        where: a path inside a repository (opened here, closed after), an open
            :class:`~gitml.core.gitrepo.GitRepo` (kept open), a :class:`Workspace` (passed
            through, kept open), or None for the current directory.

    Yields:
        The workspace.

    Raises:
        NotARepositoryError: a path that is not inside a git work tree.
    """
    if isinstance(where, Workspace):
        yield where
        return
    if isinstance(where, GitRepo):
        ws = Workspace(where)
    else:
        ws = Workspace.open(where)
    try:
        yield ws
    finally:
        ws.close()
