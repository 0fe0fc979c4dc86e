"""MLflow's model registry as gitml registry tags (``gitml import mlflow``'s last step)."""

from __future__ import annotations

from typing import Any

from gitml.core.workspace import Workspace


def import_registry(ws: Workspace, reader: Any, summary: Any, dry_run: bool) -> None:
    """Registered model versions and aliases become registry tags; see docs/migrate.md."""
    for version in reader.registry():
        summary.registry_skipped.append((f"{version.model} version {version.version}", "registry import not done yet"))
