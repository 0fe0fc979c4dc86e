"""MLflow's model registry and gitml's: tags from MLflow's versions on import, versions from tags on export.

Each MLflow model version whose run was imported becomes a registry version of the same model
(a GTO-style tag at the run's source commit, naming the run and the artifact), and each alias on
it, and its legacy stage (``Staging``, ``Production``, ``Archived``, read as ``staging`` …), a
stage assignment. The version is MLflow's number as a major version (MLflow's version 3 is
``v3.0.0``), or the version it was exported from (the tag ``gitml_version`` that ``gitml export
mlflow`` writes), so a round trip keeps gitml's numbers.

Left out, each with its reason in the summary: a model name gitml's registry (GTO's grammar)
does not take, a version without a run, or whose run was not imported, or whose run's commit is
not in this repository (a registry tag must point at a commit), an artifact that cannot be told
apart, a version number taken by another artifact, an alias that is not a stage name.

On export (:func:`export_registry`), each live version whose run is in DEST becomes an MLflow
model version (source: the artifact's location under that run, tagged ``gitml_version``), and
the model's aliases are made exactly its stages now.
"""

from __future__ import annotations

import re
from typing import Any

from gitml.core import store, yamlfmt
from gitml.core.errors import GitmlError, RunNotFoundError
from gitml.core.tags import check_model, check_stage, check_version
from gitml.core.workspace import Workspace
from gitml.registry.ops import assign, register_model
from gitml.tracking.query import get_run

VERSION_TAG = "gitml_version"  # written by gitml export mlflow
ALIAS_RE = re.compile(r"^[\w-]{1,255}$")  # what MLflow takes as an alias


def import_registry(ws: Workspace, reader: Any, summary: Any, dry_run: bool,
                    pending: frozenset[str] = frozenset()) -> None:
    """Registered model versions and aliases become registry tags; see docs/migrate.md.

    Args:
        ws: the workspace imported into (its runs are already committed).
        reader: the MLflow store's reader (``registry()`` gives its versions).
        summary: the import's summary: ``registry`` gets each tag made (``churn@v1.0.0``,
            ``churn#champion``), ``registry_skipped`` each ``(what, why)`` left out.
        dry_run: decide everything, write nothing.
        pending: with ``dry_run``, the runs the import would have written: their versions are
            counted as registered (their artifacts cannot be checked before the runs exist).
    """
    state = ws.registry_state()
    planned: set[tuple[str, str]] = set()
    for version in sorted(reader.registry(), key=lambda v: (v.model, v.version)):
        what = f"{version.model} version {version.version}"
        try:
            if dry_run and version.run_id in pending:
                _would(version, summary)
                continue
            _one(ws, version, state, summary, dry_run, planned)
        except _Skip as skip:
            summary.registry_skipped.append((what, str(skip)))
        except GitmlError as exc:
            summary.registry_skipped.append((what, exc.message))


class _Skip(Exception):
    """One version left out, and why."""


def _name_and_number(version) -> tuple[str, str]:
    """The model name and registry version an MLflow version becomes (:class:`_Skip` for a name gitml does not take)."""
    try:
        model = check_model(version.model)
    except GitmlError:
        raise _Skip("not a model name gitml's registry takes (lowercase letters, digits and '-', as GTO)") from None
    wanted = version.tags.get(VERSION_TAG)
    try:
        number = check_version(wanted) if wanted else f"v{int(version.version)}.0.0"
    except GitmlError:
        number = f"v{int(version.version)}.0.0"
    return model, number


def _would(version, summary: Any) -> None:
    """A dry run's version whose run the import would write: what it would tag."""
    model, number = _name_and_number(version)
    summary.registry.append(f"{model}@{number}")
    stages = [*version.aliases, *([version.stage] if version.stage and version.stage not in ("None", "") else [])]
    for name in stages:
        try:
            summary.registry.append(f"{model}#{check_stage(name)} ({number})")
        except GitmlError:
            summary.registry_skipped.append((f"{model} alias {name!r}", "not a stage name gitml takes"))


def _one(ws: Workspace, version, state: dict, summary: Any, dry_run: bool, planned: set) -> None:
    model, number = _name_and_number(version)
    if not version.run_id:
        raise _Skip("it names no run")
    try:
        run = get_run(version.run_id, repo=ws)
    except (RunNotFoundError, GitmlError):
        raise _Skip(f"its run {version.run_id[:8]} is not in this repository (not imported)") from None
    commit = run.source.get("commit")
    if not commit or not ws.repo.has_object(commit):
        raise _Skip(f"its run's commit {str(commit or 'none')[:12]} is not in this repository "
                    "(a registry tag points at a commit: fetch it, then import again)")
    path = _artifact(ws, version, run)
    held = state.get(model)
    existing = held.versions.get(number) if held is not None else None
    if existing is not None and not existing.deregistered:
        if existing.run_id != run.id or existing.path != path:
            raise _Skip(f"{model}@{number} is already registered for another artifact")
    elif (model, number) not in planned:
        if not dry_run:
            register_model(model, run.id, path, number, message=version.description, repo=ws)
        planned.add((model, number))
        summary.registry.append(f"{model}@{number}")
    stages = list(version.aliases)
    if version.stage and version.stage not in ("None", ""):
        stages.append(version.stage)
    for name in stages:
        try:
            stage = check_stage(name)
        except GitmlError:
            summary.registry_skipped.append((f"{model} alias {name!r}", "not a stage name gitml takes"))
            continue
        if existing is not None and stage in existing.stages:
            continue
        if not dry_run:
            assign(model, number, stage, repo=ws)
        summary.registry.append(f"{model}#{stage} ({number})")


def _artifact(ws: Workspace, version, run) -> str:
    """The logical path, in the run, of the version's model folder or file."""
    source = version.source or ""
    prefix = f"runs:/{run.id}/"
    if source.startswith(prefix) and source[len(prefix):].strip("/") in run.artifacts:
        return source[len(prefix):].strip("/")
    # MLflow stores where the version's files are: <run's artifact location>/<path>, as file:///…,
    # mlflow-artifacts:/…, s3://… or a plain path; the part after the run's own folder is the path
    marker = f"/{run.id}/artifacts/"
    if marker in source:
        inner = source.split(marker, 1)[1].strip("/")
        if inner in run.artifacts:
            return inner
    models = _mlmodels(ws, run)  # {path: model_id} of the run's folders holding an MLmodel
    if version.model_id:
        found = [path for path, model_id in models.items() if model_id == version.model_id]
        if len(found) == 1:
            return found[0]
    if source.startswith(prefix):  # MLflow 3: runs:/<run>/model names the logged model "model"
        name = source[len(prefix):].strip("/")
        if name in models:
            return name
    if len(models) == 1:
        return next(iter(models))
    if len(run.artifacts) == 1:
        return next(iter(run.artifacts))
    raise _Skip(f"cannot tell which artifact of run {run.id[:8]} it is ({source or 'no source'})")


def _mlmodels(ws: Workspace, run) -> dict[str, str | None]:
    cache = store.cache_dir(ws.repo.gitml_dir)
    out: dict[str, str | None] = {}
    for path, entry in run.artifacts.items():
        if entry.get("kind") != "dir":
            continue
        manifest = store.object_path(cache, entry["sha256"])
        if not manifest.is_file():
            continue
        files = store.manifest_files(manifest.read_bytes(), f"run {run.id[:8]} {path}")
        mlmodel = next((f for f in files if f["path"] == "MLmodel"), None)
        if mlmodel is None:
            continue
        model_id = None
        body = store.object_path(cache, mlmodel["sha256"])
        if body.is_file() and mlmodel["size"] < 1 << 20:
            try:
                doc = yamlfmt.load_untrusted(body.read_text(encoding="utf-8", errors="replace"))
                model_id = doc.get("model_id") if isinstance(doc, dict) else None
            except Exception:  # noqa: BLE001 - an MLmodel gitml cannot read names no model id
                model_id = None
        out[path] = str(model_id) if model_id else None
    return out


# -- export: gitml's registry into MLflow's ------------------------------------------------------


def export_registry(ws: Workspace, target: Any, exported: dict[str, str], dry_run: bool, summary: Any) -> None:
    """Each gitml model's live versions as MLflow model versions, and its aliases made gitml's stages (export's last step).

    Args:
        ws: the repository exported from.
        target: the export's MLflow store (its ``client`` and ``registered_model(name)``), or
            None for a dry run into a store not there yet (no model in it).
        exported: ``{gitml run id: MLflow run id}`` of the runs in DEST.
        dry_run: count, write nothing.
        summary: the export's summary: ``versions``, ``aliases`` and ``skipped`` are counted.

    Models MLflow has and gitml does not are left alone; a version whose run is not in DEST is
    skipped with its reason.
    """
    for name, state in sorted(ws.registry_state().items()):
        model = target.registered_model(name) if target is not None else None
        live = [v for v in state.versions.values() if not v.deregistered]
        live.sort(key=lambda v: (v.registered_at or 0, v.version))
        if not live and model is None:
            continue
        have: dict[str, str] = {}
        if model is not None:
            have = {mv.tags.get(VERSION_TAG): mv.version
                    for mv in target.client.search_model_versions(f"name = '{name}'", max_results=10000)}
        elif not dry_run:
            target.client.create_registered_model(name, tags={"gitml_model": name})
        numbers = {version.version: _export_version(target, name, version, have, exported, dry_run, summary)
                   for version in live}
        _set_aliases(target, name, state.stages, {k: v for k, v in numbers.items() if v is not None},
                     dict(model.aliases) if model is not None else {}, dry_run, summary)


def _export_version(target: Any, name: str, version, have: dict[str, str], exported: dict[str, str],
                    dry_run: bool, summary: Any) -> str | None:
    """The MLflow version number of a gitml version, created when DEST lacks it.

    ``?`` for one a dry run would create; None for one that cannot go (its run does not).
    """
    if version.version in have:
        return have[version.version]
    if not version.run_id or version.run_id not in exported:
        summary.skipped.append((f"{name} {version.version}",
                                "its run is not exported (not a finished run of this repository)"
                                if version.run_id else "registered without a run (tagged by hand or GTO)"))
        return None
    summary.versions += 1
    if dry_run:
        return "?"
    # the artifact's location in DEST, as MLflow's register_model("runs:/<run>/<path>") records
    # it: a runs:/ source would be resolved by each reader through its own tracking URI
    artifact_uri = target.client.get_run(exported[version.run_id]).info.artifact_uri.rstrip("/")
    created = target.client.create_model_version(
        name, f"{artifact_uri}/{version.path}" if version.path else artifact_uri, run_id=exported[version.run_id],
        tags={VERSION_TAG: version.version, "gitml_commit": version.commit}, await_creation_for=0)
    return created.version


def _set_aliases(target: Any, name: str, stages: dict[str, str], numbers: dict[str, str],
                 current: dict[str, Any], dry_run: bool, summary: Any) -> None:
    """Make the model's aliases exactly its stages (those MLflow can hold); count what changes."""
    wanted: dict[str, str] = {}
    for stage, version in sorted(stages.items()):
        if version not in numbers:
            continue  # its version is not in DEST: the alias, if MLflow has it, goes
        if not ALIAS_RE.match(stage) or stage.lower() == "latest" or re.match(r"^v\d+$", stage, re.I):
            summary.skipped.append((f"{name}@{stage}", "not a name MLflow takes for an alias"))
            continue
        wanted[stage] = numbers[version]
    for alias in sorted(set(current) - set(wanted)):
        if not dry_run:
            target.client.delete_registered_model_alias(name, alias)
        summary.aliases += 1
    for alias, number in sorted(wanted.items()):
        if alias not in current or str(current[alias]) != str(number):
            if not dry_run:
                target.client.set_registered_model_alias(name, alias, number)
            summary.aliases += 1
