"""Team configuration: ``gitml.yaml`` at the repository root (committed).

Personal values (credentials, endpoint overrides) live in git config under ``[gitml]``, never here.

The file is checked against a schema (:data:`SCHEMA`) when it is read: an unknown key or a value
of the wrong type is a :class:`BadInputError` naming the key's path (``hooks.pre-push.gates[0]
.metrics.accuracy.min``), so a misspelt gate can never be silently ignored.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gitml.core.errors import BadInputError
from gitml.core.ids import check_name
from gitml.core.tags import check_stage

if TYPE_CHECKING:
    from gitml.core.gitrepo import GitRepo

CONFIG_FILE = "gitml.yaml"
DEFAULT_PARAMS_FILES = ("params.yaml",)
DEFAULT_METRICS_FILES = ("metrics.json",)
MAX_CONFIG_BYTES = 1 << 20  # a team configuration is a few lines; anything near this is not one

TEMPLATE = """\
# gitml team configuration (committed with the code). See docs/formats.md#gitmlyaml.

# Files `gitml commit-run` reads when given no -p/-m/--params/--metrics options.
# Nested keys are flattened with dots (train.lr), as DVC does. Missing files are skipped.
params: [params.yaml]
metrics: [metrics.json]

# Experiment used when a run names none.
# experiment: default

# To mark metric changes in `gitml diff` as improvements or regressions, give goals instead of
# the file list (the files then go under metrics_files):
# metrics_files: [metrics.json]
# metrics:
#   accuracy: max
#   val_loss: {direction: min, tolerance: 0.01}
"""


@dataclass
class Config:
    """The parsed ``gitml.yaml``; every field has a default so the file is optional.

    ``raw`` is the whole document after validation, with one-item lists written as a bare string
    already turned into lists (``branches: main`` reads as ``[main]``).
    """

    params: list[str] = field(default_factory=lambda: list(DEFAULT_PARAMS_FILES))
    metrics: list[str] = field(default_factory=lambda: list(DEFAULT_METRICS_FILES))
    experiment: str = "default"
    goals: dict[str, Goal] = field(default_factory=dict)
    raw: dict = field(default_factory=dict)

    @property
    def pre_push(self) -> dict:
        """The ``hooks.pre-push`` policy (an empty mapping when absent)."""
        return (self.raw.get("hooks") or {}).get("pre-push") or {}


@dataclass(frozen=True)
class Goal:
    """How a metric should move: ``max`` (higher is better) or ``min``, within ``tolerance``.

    ``tolerance`` is an absolute amount a change may go the wrong way before it counts as a
    regression (``relative: true`` makes it a fraction of the old value).
    """

    direction: str
    tolerance: float = 0.0
    relative: bool = False


# -- the schema: a few declarative node types ------------------------------------------------------


def _kind(value: object) -> str:
    """How a YAML value reads to a user, for error messages."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"true/false ({str(value).lower()})"
    if isinstance(value, (int, float)):
        return f"a number ({value!r})"
    if isinstance(value, str):
        short = value if len(value) <= 40 else value[:37] + "..."
        return f"text ({short!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return f"a {type(value).__name__}"


def _key_path(path: str, key: object) -> str:
    """``path`` extended by ``key``: ``a.b`` for a plain name, ``a["odd key"]`` for any other."""
    if isinstance(key, str) and re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key) if isinstance(key, str) else repr(key)}]"


class _Node:
    """A schema node: ``check`` returns the value (normalized) or raises with the key path.

    ``expects`` says what the node takes, for error messages (``"a list of file names"``).
    Subclasses override :meth:`accepts` and :meth:`check`; their arguments are documented here.
    """

    expects = "a value"

    def accepts(self, value: object) -> bool:
        """Whether ``value`` has a type this node takes (:class:`OneOf` picks by it).

        Args:
            value: a value as YAML read it.

        Returns:
            True when :meth:`check` would look at the value rather than refuse its type.
        """
        return True

    def check(self, value: object, path: str) -> Any:
        """Validate ``value`` and return it normalized.

        Args:
            value: a value as YAML read it.
            path: where it sits in the document (``hooks.pre-push.gates[0]``), for errors.

        Returns:
            The value, normalized (a bare string as a one-item list, null entries dropped).

        Raises:
            BadInputError: the value does not fit, with its path and what was expected.
        """
        if not self.accepts(value):
            raise BadInputError(f"{path}: expected {self.expects}, got {_kind(value)}")
        return value


class Text(_Node):
    """A non-empty string."""

    expects = "text"

    def accepts(self, value: object) -> bool:
        """Whether ``value`` is a string."""
        return isinstance(value, str)

    def check(self, value: object, path: str) -> str:
        """A string that is not blank."""
        super().check(value, path)
        if not value.strip():
            raise BadInputError(f"{path}: must not be empty")
        return value


class Flag(_Node):
    """``true`` or ``false``."""

    expects = "true or false"

    def accepts(self, value: object) -> bool:
        """Whether ``value`` is a bool."""
        return isinstance(value, bool)


class Number(_Node):
    """A finite int or float (not a bool), optionally ``>= minimum``.

    Args:
        minimum: the smallest value allowed (default: no bound).
    """

    def __init__(self, minimum: float | None = None) -> None:
        self.minimum = minimum
        self.expects = "a number" if minimum is None else f"a number >= {minimum:g}"

    def accepts(self, value: object) -> bool:
        """Whether ``value`` is an int or a float, and not a bool."""
        return isinstance(value, (int, float)) and not isinstance(value, bool)

    def check(self, value: object, path: str) -> float:
        """A finite number, at least ``minimum`` when one is set."""
        super().check(value, path)
        if not math.isfinite(value):
            raise BadInputError(f"{path}: expected a finite number, got {value!r}")
        if self.minimum is not None and value < self.minimum:
            raise BadInputError(f"{path}: expected {self.expects}, got {value!r}")
        return value


class Choice(_Node):
    """One of a few words.

    Args:
        *words: the words allowed.
    """

    def __init__(self, *words: str) -> None:
        self.words = words
        self.expects = " or ".join(words)

    def accepts(self, value: object) -> bool:
        """Whether ``value`` is a string."""
        return isinstance(value, str)

    def check(self, value: object, path: str) -> str:
        """One of the words, exactly."""
        super().check(value, path)
        if value not in self.words:
            raise BadInputError(f"{path}: expected {self.expects}, got {_kind(value)}")
        return value


class Name(Text):
    """Text that must also pass a grammar (a stage name, an experiment name).

    Args:
        grammar: a checker such as :func:`gitml.core.tags.check_stage`, raising
            :class:`BadInputError` for a bad name.
    """

    def __init__(self, grammar: Callable[[str], str]) -> None:
        self.grammar = grammar

    def check(self, value: object, path: str) -> str:
        """Text that ``grammar`` accepts; its complaint is prefixed with the path."""
        text = super().check(value, path)
        try:
            self.grammar(text)
        except BadInputError as exc:
            raise BadInputError(f"{path}: {exc.message}", hint=exc.hint) from None
        return text


class Scalar(_Node):
    """Text, a number or true/false (a storage option value)."""

    expects = "text, a number or true/false"

    def accepts(self, value: object) -> bool:
        """Whether ``value`` is a string, a number or a bool."""
        return isinstance(value, (str, int, float))  # bool is an int


class ListOf(_Node):
    """A list; for a list of text, a bare string is read as a one-item list (what a user means).

    Args:
        item: the node every item must pass.
        what: the items, in plural, for error messages (``"file names"``).
        non_empty: refuse an empty list.
    """

    def __init__(self, item: _Node, what: str, non_empty: bool = False) -> None:
        self.item, self.non_empty = item, non_empty
        self.expects = f"a list of {what}"

    def accepts(self, value: object) -> bool:
        """Whether ``value`` is a list, or a string where items are text."""
        return isinstance(value, list) or (isinstance(value, str) and isinstance(self.item, Text))

    def check(self, value: object, path: str) -> list:
        """The list with every item checked (``[i]`` added to the path)."""
        super().check(value, path)
        items = [value] if isinstance(value, str) else value
        if self.non_empty and not items:
            raise BadInputError(f"{path}: expected {self.expects}, got an empty list")
        return [self.item.check(v, f"{path}[{i}]") for i, v in enumerate(items)]


class MapOf(_Node):
    """A mapping with keys of the user's choosing (metric names, remote names) and typed values.

    Args:
        value: the node every value must pass.
        what: the entries, in plural, for error messages (``"metric rules"``).
    """

    def __init__(self, value: _Node, what: str) -> None:
        self.value = value
        self.expects = f"a mapping of {what}"

    def accepts(self, value: object) -> bool:
        """Whether ``value`` is a mapping."""
        return isinstance(value, dict)

    def check(self, value: object, path: str) -> dict:
        """The mapping with non-blank text keys and checked values; null values are dropped."""
        super().check(value, path)
        out = {}
        for key, item in value.items():
            where = _key_path(path, key)
            if not isinstance(key, str) or not key.strip():
                raise BadInputError(f"{where}: a key here must be non-empty text (quote it)")
            if item is not None:
                out[key] = self.value.check(item, where)
        return out


class Fields(_Node):
    """A mapping with a fixed set of keys: anything else is an unknown key, never ignored.

    A key whose value is null counts as absent. ``rule`` checks the keys together.

    Args:
        fields: each allowed key and the node its value must pass.
        required: keys that must be present (and not null).
        rule: called with the checked mapping and its path once every key passed; raises
            :class:`BadInputError` for a combination that makes no sense.
        what: what the mapping is, for error messages (default: its key names).
    """

    def __init__(self, fields: dict[str, _Node], required: tuple[str, ...] = (),
                 rule: Callable[[dict, str], None] | None = None, what: str | None = None) -> None:
        self.fields, self.required, self.rule = fields, required, rule
        self.expects = what or f"a mapping with {', '.join(fields)}"

    def accepts(self, value: object) -> bool:
        """Whether ``value`` is a mapping."""
        return isinstance(value, dict)

    def check(self, value: object, path: str) -> dict:
        """The mapping with only known keys, checked; null values dropped, required keys present."""
        super().check(value, path)
        out = {}
        for key, item in value.items():
            where = _key_path(path, key)
            if key not in self.fields:
                expected = ", ".join(sorted(self.fields))
                raise BadInputError(f"{where}: unknown key (expected one of: {expected})")
            if item is not None:
                out[key] = self.fields[key].check(item, where)
        for key in self.required:
            if key not in out:
                raise BadInputError(f"{_key_path(path, key)}: required")
        if self.rule is not None:
            self.rule(out, path)
        return out


class OneOf(_Node):
    """The first alternative that takes the value's type checks it.

    Args:
        *options: the alternatives, in the order they are tried.
    """

    def __init__(self, *options: _Node) -> None:
        self.options = options
        self.expects = " or ".join(o.expects for o in options)

    def accepts(self, value: object) -> bool:
        """Whether any alternative takes ``value``'s type."""
        return any(o.accepts(value) for o in self.options)

    def check(self, value: object, path: str) -> Any:
        """The value as checked by the first alternative that accepts it."""
        super().check(value, path)
        return next(o for o in self.options if o.accepts(value)).check(value, path)


def _one_rule(rule: dict, path: str) -> None:
    if not {"min", "max", "max_regression"} & set(rule):
        raise BadInputError(f"{path}: a metric rule needs min, max or max_regression")
    if "against" in rule and "max_regression" not in rule:
        raise BadInputError(f"{_key_path(path, 'against')}: only means something with max_regression")
    if "min" in rule and "max" in rule and rule["min"] > rule["max"]:
        raise BadInputError(f"{path}: min {rule['min']} is above max {rule['max']}: no value can pass")


def _gate_checks_something(gate: dict, path: str) -> None:
    if not gate.get("require_run") and not gate.get("metrics"):
        raise BadInputError(f"{path}: a gate checks nothing without require_run: true or metrics")


def _check_experiment(text: str) -> str:
    return check_name(text, "experiment")


DIRECTION = Choice("max", "min")
FILES = ListOf(Text(), "file names")
GOAL = OneOf(DIRECTION, Fields({"direction": DIRECTION, "tolerance": Number(0), "relative": Flag()},
                               required=("direction",)))
RULE = Fields({"min": Number(), "max": Number(), "max_regression": Number(0), "against": Text()},
              rule=_one_rule, what="a mapping with min, max, max_regression or against")
GATE = Fields({"branches": ListOf(Text(), "branch patterns", non_empty=True), "require_run": Flag(),
               "metrics": MapOf(RULE, "metric rules")}, required=("branches",), rule=_gate_checks_something)
BLOCK_OR_WARN = Choice("block", "warn")
PRE_PUSH = Fields({"upload": Flag(), "on_unreachable": OneOf(BLOCK_OR_WARN, MapOf(BLOCK_OR_WARN, "git remote policies")),
                   "gates": ListOf(GATE, "gates")})
REMOTE = OneOf(Text(), Fields({"url": Text(), "options": MapOf(Scalar(), "storage options")}, required=("url",)))
STAGES = ListOf(Name(check_stage), "stage names")
PARAMETER = OneOf(Text(), Fields({"type": Text(), "default": Scalar()}))
ENTRY_POINT = OneOf(Text(), Fields({"command": Text(), "parameters": MapOf(PARAMETER, "parameters")},
                                   required=("command",)))
# The project descriptor (docs/projects.md); gitml.projects.spec checks what a shape cannot say.
PROJECT = Fields({"name": Text(), "environment": Text(), "entry_points": MapOf(ENTRY_POINT, "entry points")})
SCHEMA = Fields({
    "params": FILES,
    "metrics": OneOf(FILES, MapOf(GOAL, "metric goals")),
    "metrics_files": FILES,
    "experiment": Name(_check_experiment),
    "remotes": MapOf(REMOTE, "artifact remotes"),
    "default_remote": Text(),
    "registry": Fields({"stages": STAGES, "promotion": STAGES, "one_stage_per_version": Flag()}),
    "hooks": Fields({"pre-push": PRE_PUSH}),
    "project": PROJECT,
})


# -- reading ---------------------------------------------------------------------------------------


def parse_config(text: str | bytes, where: str = CONFIG_FILE) -> Config:
    """Parse and validate the text of a ``gitml.yaml`` against :data:`SCHEMA`.

    Args:
        text: the file's content; bytes must be UTF-8.
        where: how errors name the file (``"gitml.yaml at 1a2b3c4"``).

    Returns:
        The configuration, defaults filled in for what the file leaves out.

    Raises:
        BadInputError: the text is too large, not YAML, uses anchors or duplicate keys, or does
            not fit the schema (unknown key, wrong type), naming the key's path.
    """
    if len(text) > MAX_CONFIG_BYTES:
        raise BadInputError(f"{where}: larger than {MAX_CONFIG_BYTES >> 20} MiB, not a configuration file")
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise BadInputError(f"{where}: not UTF-8 text ({exc.reason})") from None
    from gitml.core import yamlfmt

    try:  # no anchors, aliases, merge keys or key given twice: a gate's `min` must not hide
        doc = yamlfmt.load_untrusted(text, yaml12=True)
    except yamlfmt.YamlProblem as exc:
        line = f" line {exc.line}" if exc.line else ""
        raise BadInputError(f"{where}{line}: invalid YAML: {exc.problem}") from None
    if doc is None:
        doc = {}
    if not isinstance(doc, dict):
        raise BadInputError(f"{where}: expected a mapping at the top level, got {_kind(doc)}")
    try:
        doc = SCHEMA.check(doc, "")
    except BadInputError as exc:
        raise BadInputError(f"{where}: {exc.message}", exc.hint) from None
    return _config(doc, where)


def _config(doc: dict, where: str) -> Config:
    # `metrics:` is either the list of metrics files, or a mapping of metric goals; with the
    # mapping, the files are named by `metrics_files:`.
    metrics = doc.get("metrics")
    if isinstance(metrics, list) and "metrics_files" in doc:
        raise BadInputError(f"{where}: metrics: a list of files and metrics_files both name the metrics "
                            "files; keep one (metrics_files goes with a mapping of goals)")
    goals = {}
    for name, spec in (metrics if isinstance(metrics, dict) else {}).items():
        spec = {"direction": spec} if isinstance(spec, str) else spec
        goals[name] = Goal(spec["direction"], float(spec.get("tolerance", 0.0)), spec.get("relative", False))
    files = doc.get("metrics_files", metrics if isinstance(metrics, list) else None)
    return Config(
        params=doc.get("params", list(DEFAULT_PARAMS_FILES)),
        metrics=files if files is not None else list(DEFAULT_METRICS_FILES),
        experiment=doc.get("experiment", "default"),
        goals=goals,
        raw=doc,
    )


def load_config(root: str | Path) -> Config:
    """Read ``gitml.yaml`` from a work tree root; a missing file gives the defaults.

    Args:
        root: the work tree's top folder.

    Returns:
        The configuration (``Config()`` when there is no file).

    Raises:
        BadInputError: the file cannot be read or fails :func:`parse_config`.
    """
    path = Path(root) / CONFIG_FILE
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        return Config()
    except OSError as exc:
        raise BadInputError(f"cannot read {path}: {exc.strerror or exc}") from None
    return parse_config(data, CONFIG_FILE)


def load_config_at(git: GitRepo, commit: str) -> Config | None:
    """Read ``gitml.yaml`` as it is in ``commit``.

    This is how the pre-push hook reads the gates of the branch pushed to, never the pushed
    commit's: a push cannot loosen the rules it is checked against.

    Args:
        git: the open repository.
        commit: a commit sha (hex) this repository has.

    Returns:
        The configuration, or None when that commit has no ``gitml.yaml`` at its root.

    Raises:
        BadInputError: the entry is not a regular file, or fails :func:`parse_config`.
    """
    tree, _, _ = git.read_commit(commit)
    entry = git.read_tree(tree).get(CONFIG_FILE)
    if entry is None:
        return None
    mode, sha = entry
    where = f"{CONFIG_FILE} at {commit[:7]}"
    if mode & 0o170000 != 0o100000:
        raise BadInputError(f"{where}: not a regular file")
    return parse_config(git.read_blob(sha), where)
