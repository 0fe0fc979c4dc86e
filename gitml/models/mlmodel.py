"""The ``MLmodel`` file: a model folder's description, in MLflow's schema (docs/formats.md, "Models").

Written as MLflow writes it (YAML, keys sorted), so MLflow reads gitml's models and gitml reads
MLflow's. Read as a stranger's file: bounded in size, no YAML aliases, every field gitml uses
checked for its type; fields gitml does not know are kept and written back.
"""

from __future__ import annotations

import datetime as _dt
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from gitml.core.errors import ModelFormatError
from gitml.models.signature import ModelSignature

MLMODEL = "MLmodel"
MAX_MLMODEL_BYTES = 1 << 20
PYFUNC = "python_function"


@dataclass
class Model:
    """What an ``MLmodel`` file says.

    Attributes:
        flavors: ``{flavor name: its block}``; ``python_function`` names the ``loader_module``.
        model_uuid: 32 hex digits, new for every save.
        utc_time_created: ``YYYY-MM-DD HH:MM:SS.ffffff`` in UTC (MLflow's spelling).
        signature: the :class:`ModelSignature`, or None.
        saved_input_example_info: where the input example is and its type, or None.
        run_id: the run the model was logged in (None for a plain save).
        artifact_path: its path in the run's artifacts.
        metadata: the user's free-form mapping.
        model_size_bytes: bytes of the model's files before ``MLmodel`` was written.
        extra: every other top-level field, kept as read (``mlflow_version``, ``gitml`` …).
    """

    flavors: dict[str, dict[str, Any]] = field(default_factory=dict)
    model_uuid: str = field(default_factory=lambda: uuid.uuid4().hex)
    utc_time_created: str = field(default_factory=lambda: str(_dt.datetime.now(_dt.timezone.utc).replace(tzinfo=None)))
    signature: ModelSignature | None = None
    saved_input_example_info: dict[str, Any] | None = None
    run_id: str | None = None
    artifact_path: str | None = None
    metadata: dict[str, Any] | None = None
    model_size_bytes: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def loader_module(self) -> str:
        """The ``python_function`` flavor's ``loader_module`` (how MLflow loads the model)."""
        return self.flavors[PYFUNC]["loader_module"]

    def to_dict(self) -> dict[str, Any]:
        """The mapping written to ``MLmodel`` (empty fields left out, as MLflow does)."""
        out: dict[str, Any] = dict(self.extra)
        out.update(flavors=self.flavors, model_uuid=self.model_uuid, utc_time_created=self.utc_time_created)
        if self.signature is not None and any(self.signature.to_dict().values()):
            out["signature"] = self.signature.to_dict()
        for name in ("saved_input_example_info", "run_id", "artifact_path", "metadata", "model_size_bytes"):
            if getattr(self, name) is not None:
                out[name] = getattr(self, name)
        return out

    def save(self, folder: Path) -> None:
        """Write ``folder/MLmodel`` (YAML, keys sorted, as MLflow writes it).

        gitml's canonical YAML writer is used when it can hold the fields (it needs no PyYAML
        import, 20 ms); a user's metadata it cannot hold (a list of mappings) goes through PyYAML.
        """
        from gitml.core import yamlfmt

        data = self.to_dict()
        try:
            text = yamlfmt.dump(data)
        except (TypeError, ValueError):
            import yaml

            text = yaml.dump(data, Dumper=getattr(yaml, "CSafeDumper", yaml.SafeDumper), sort_keys=True,
                             default_flow_style=False)
        (Path(folder) / MLMODEL).write_text(text)

    @classmethod
    def load(cls, folder: str | Path) -> Model:
        """Read ``folder/MLmodel`` (written by gitml or by MLflow).

        Raises:
            ModelFormatError: no ``MLmodel``, over :data:`MAX_MLMODEL_BYTES`, not YAML, or a
                field gitml relies on is missing or of the wrong type (the message names it).
        """
        from gitml.core.yamlfmt import YamlProblem, load_untrusted

        path = Path(folder) / MLMODEL
        if not path.is_file():
            raise ModelFormatError(f"{str(folder)!r} is not a model: it has no MLmodel file",
                                   hint="a model folder is what gitml.save_model or mlflow's save_model writes")
        if path.stat().st_size > MAX_MLMODEL_BYTES:
            raise ModelFormatError(f"{path} is over {MAX_MLMODEL_BYTES} bytes")
        try:
            data = load_untrusted(path.read_text(encoding="utf-8"))
        except (YamlProblem, UnicodeDecodeError) as exc:
            raise ModelFormatError(f"{path}: {exc}") from None
        return cls.from_dict(data, str(path))

    @classmethod
    def from_dict(cls, data: object, where: str = MLMODEL) -> Model:
        """Check and wrap the mapping an ``MLmodel`` holds.

        Raises:
            ModelFormatError: as :meth:`load`.
        """
        if not isinstance(data, dict):
            raise ModelFormatError(f"{where} is not a mapping")
        data = dict(data)
        flavors = data.pop("flavors", None)
        if not isinstance(flavors, dict) or not all(isinstance(k, str) and isinstance(v, dict)
                                                    for k, v in flavors.items()):
            raise ModelFormatError(f"{where} has no 'flavors' mapping")
        pyfunc = flavors.get(PYFUNC)
        if pyfunc is None:
            raise ModelFormatError(f"{where}: the model has no python_function flavor, so it cannot predict")
        if not isinstance(pyfunc.get("loader_module"), str):
            raise ModelFormatError(f"{where}: python_function has no loader_module")
        signature = data.pop("signature", None)
        info = data.pop("saved_input_example_info", None)
        if info is not None and not isinstance(info, dict):
            raise ModelFormatError(f"{where}: saved_input_example_info is not a mapping")
        metadata = data.pop("metadata", None)
        if metadata is not None and not isinstance(metadata, dict):
            raise ModelFormatError(f"{where}: metadata is not a mapping")
        text = {name: data.pop(name, None) for name in ("model_uuid", "utc_time_created", "run_id", "artifact_path")}
        for name, value in text.items():
            if value is not None and not isinstance(value, str):
                text[name] = str(value)
        size = data.pop("model_size_bytes", None)
        return cls(flavors=flavors, model_uuid=text["model_uuid"] or "", utc_time_created=text["utc_time_created"] or "",
                   signature=ModelSignature.from_dict(signature) if signature is not None else None,
                   saved_input_example_info=info, run_id=text["run_id"], artifact_path=text["artifact_path"],
                   metadata=metadata, model_size_bytes=size if isinstance(size, int) else None, extra=data)
