"""Canonical YAML for run files: a strict subset we emit ourselves and parse fast.

Run files are committed to git, so equal content must give byte-identical text, and an index
rebuild reads hundreds of thousands of them, so parsing must be far cheaper than PyYAML's.
:func:`dump` writes a subset that is still real YAML (PyYAML reads it as the same data);
:func:`load` parses that subset with one regex pass and hands anything else (hand edits) to
PyYAML's safe loader. The subset, one entry per line, nesting by exactly two spaces:

* ``key: scalar``, ``key: [scalar, scalar]``, ``key: []``, ``key: {}``, or ``key:`` followed by
  the lines of a non-empty nested mapping; keys sorted by Python ``str`` order;
* keys plain when they match ``[A-Za-z_][A-Za-z0-9_./-]*`` and are not a YAML 1.1 special word,
  otherwise double-quoted;
* scalars ``null``, ``true``, ``false``, decimal ints, floats with a dot (``1.0e-05``),
  ``.nan``, ``.inf``, ``-.inf`` and double-quoted strings using JSON escapes.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from json.decoder import scanstring
from json.encoder import encode_basestring
from typing import Any

__all__ = ["YamlProblem", "dump", "load", "load_untrusted"]

# Characters YAML does not allow raw in a double-quoted scalar (controls, line and paragraph
# separators, surrogates, the BOM, non-characters): written as a four-hex-digit \u escape. The
# classes below are spelled as this complement: the same sets as listing the printable ranges,
# but compiled in under a millisecond instead of ~40 ms (re optimizes wide ranges slowly).
_NOT_PRINTABLE = r"\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff\ufeff\ufffe\uffff"
class _Lazy:
    """A regex compiled on first use: these take ~30 ms to compile, too much for every command."""

    def __init__(self, pattern: str, flags: int = 0) -> None:
        self._args = (pattern, flags)
        self._compiled: re.Pattern | None = None

    def __getattr__(self, name: str):
        if self._compiled is None:
            self._compiled = re.compile(*self._args)
        return getattr(self._compiled, name)


_NEEDS_ESCAPE = _Lazy(f"[{_NOT_PRINTABLE}]")
_STR = f'"(?:[^"\\\\{_NOT_PRINTABLE}]|\\\\["\\\\/bfnrtu])*"'
_SPECIAL_WORDS = frozenset({"y", "n", "yes", "no", "on", "off", "true", "false", "null", "~"})
_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_./-]*")
# _SPECIAL_WORDS spelled out case-insensitively; a trie of classes is much faster than (?i:...).
_SPECIAL_KEY = (
    "(?:[yY](?:[eE][sS])?|[nN](?:[oO]|[uU][lL][lL])?|[oO](?:[nN]|[fF][fF])"
    "|[tT][rR][uU][eE]|[fF][aA][lL][sS][eE]):"
)
_KEY = f"(?!{_SPECIAL_KEY}){_PLAIN_KEY.pattern}|{_STR}"
_SCALAR = (
    f"{_STR}|-?(?:0|[1-9][0-9]*)(?:\\.[0-9]+(?:e[-+][0-9]+)?)?"
    r"|null|true|false|\.nan|\.inf|-\.inf"
)
_VALUE = f"{_SCALAR}|\\{{\\}}|\\[(?:(?:{_SCALAR})(?:, (?:{_SCALAR}))*)?\\]"
# Anchored per line so a match never starts mid-line; the caller checks every line matched.
_ROW = _Lazy(f"^((?:  )*)({_KEY}):(?: ({_VALUE}))?\n", re.M)
_ITEM = _Lazy(_SCALAR)
_CONSTANTS = dict(
    zip(
        ("null", "true", "false", ".nan", ".inf", "-.inf"),
        (None, True, False, math.nan, math.inf, -math.inf),
        strict=True,
    )
)
# JSON would merge an escaped surrogate pair into one character; YAML keeps two code points.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_ESCAPE = re.compile(r"\\(?:u([0-9a-fA-F]{4})|(.))")
_SIMPLE_ESCAPES = dict(zip('"\\/bfnrt', '"\\/\b\f\n\r\t', strict=True))
# PyYAML and libyaml give up on an implicit key longer than this many characters.
_MAX_KEY_CHARS = 1024
# Nesting deeper than this is refused before PyYAML builds anything (its constructor recurses).
MAX_DEPTH = 32


def dump(data: Mapping) -> str:
    """Render a mapping as canonical YAML text.

    Args:
        data: Mapping with ``str`` keys whose values are ``None``, ``bool``, ``int``, ``float``,
            ``str``, lists or tuples of those, or nested mappings of the same kind.

    Returns:
        The canonical text, ending with exactly one newline; equal content always gives equal
        text whatever the insertion order of the mappings.

    Raises:
        TypeError: If a key is not a ``str`` or a value has an unsupported type.
        ValueError: If a key is too long for YAML readers to accept as a simple key.
    """
    if not isinstance(data, Mapping):
        raise TypeError(f"expected a mapping at the top level, got {type(data).__name__}")
    if not data:
        return "{}\n"
    lines: list[str] = []
    _dump_mapping(data, "", lines)
    lines.append("")
    return "\n".join(lines)


def load(text: str) -> dict:
    """Parse YAML text, fast for :func:`dump` output and via PyYAML's safe loader otherwise.

    Args:
        text: The document. Anything outside the canonical subset (comments, plain strings,
            block lists, CRLF, tabs ...) is accepted as long as it is a valid YAML mapping.

    Returns:
        The mapping; an empty document gives ``{}``.

    Raises:
        ValueError: If the text is not valid YAML (the message names the problem and line), its
            top level is not a mapping, it uses anchors or aliases (a few hundred bytes of
            aliases can expand to gigabytes: "billion laughs"), or it nests deeper than
            :data:`MAX_DEPTH`. Text from a remote is hostile; none of these is ever expanded.
    """
    if text == "{}\n":
        return {}
    try:
        data = _parse_fast(text)
    except ValueError:  # e.g. a malformed \u escape; PyYAML will word the error
        data = None
    return _parse_yaml(text) if data is None else data


def _dump_mapping(mapping: Mapping, indent: str, lines: list[str]) -> None:
    for key in mapping:
        if not isinstance(key, str):
            raise TypeError(f"mapping keys must be str, got {type(key).__name__}: {key!r}")
    for key in sorted(mapping):
        value = mapping[key]
        head = f"{indent}{_format_key(key)}:"
        if isinstance(value, Mapping):
            if value:
                lines.append(head)
                _dump_mapping(value, indent + "  ", lines)
            else:
                lines.append(f"{head} {{}}")
        elif isinstance(value, (list, tuple)):
            lines.append(f"{head} [{', '.join(map(_format_scalar, value))}]")
        else:
            lines.append(f"{head} {_format_scalar(value)}")


def _format_key(key: str) -> str:
    plain = _PLAIN_KEY.fullmatch(key) and key.lower() not in _SPECIAL_WORDS
    text = key if plain else _quote(key)
    if len(text) > _MAX_KEY_CHARS:
        raise ValueError(f"key too long for YAML ({len(text)} characters once written)")
    return text


def _format_scalar(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return int.__repr__(value)  # an IntEnum's own repr is not a number
    if isinstance(value, float):
        if math.isnan(value):
            return ".nan"
        if math.isinf(value):
            return ".inf" if value > 0 else "-.inf"
        text = float.__repr__(value)
        # PyYAML (YAML 1.1) only reads a float if it has a dot: 1e-05 would come back a string.
        return text if "." in text else text.replace("e", ".0e")
    if isinstance(value, str):
        return _quote(value)
    raise TypeError(f"unsupported value type {type(value).__name__}: {value!r}")


def _quote(text: str) -> str:
    return _NEEDS_ESCAPE.sub(_u_escape, encode_basestring(text))


def _u_escape(match: re.Match) -> str:
    return f"\\u{ord(match.group()):04x}"


def _parse_fast(text: str) -> dict | None:
    """The document as a dict, or None when it is not entirely in the canonical subset."""
    rows = _ROW.findall(text)
    if len(rows) != text.count("\n") or text[-1:] not in ("\n", ""):
        return None
    root: dict = {}
    stack = [root]
    top = root
    opened = False  # the previous line was "key:" and must be followed by its children
    for indent, key, value in rows:
        depth = len(indent) >> 1
        if depth != len(stack) - 1:
            if opened or depth > len(stack) - 1:
                return None
            del stack[depth + 1 :]
            top = stack[-1]
        if key[0] == '"':
            key = _unquote(key)
        if key in top:
            raise ValueError(f"YAML key {_short(key)} given twice")
        if not value:
            child: dict = {}
            top[key] = child
            stack.append(child)
            top = child
            opened = True
            continue
        opened = False
        # _scalar inlined for the common cases: this loop is the index rebuild's hot path.
        first = value[0]
        if first == '"':
            top[key] = value[1:-1] if "\\" not in value else _unquote(value)
        elif first == "[":
            top[key] = [_scalar(item) for item in _ITEM.findall(value)]
        elif value in _CONSTANTS:
            top[key] = _CONSTANTS[value]
        elif first == "{":
            top[key] = {}
        else:
            top[key] = float(value) if "." in value else int(value)
    return None if opened else root  # a bare "key:" at the end means null in YAML


def _scalar(token: str) -> object:
    if token[0] == '"':
        return token[1:-1] if "\\" not in token else _unquote(token)
    if token in _CONSTANTS:
        return _CONSTANTS[token]
    return float(token) if "." in token else int(token)


def _unquote(token: str) -> str:
    if "\\" not in token:
        return token[1:-1]
    if _SURROGATE_ESCAPE.search(token):
        return _ESCAPE.sub(_unescape_one, token[1:-1])
    return scanstring(token, 1)[0]


def _unescape_one(match: re.Match) -> str:
    code, char = match.groups()
    if code is not None:
        return chr(int(code, 16))
    if char not in _SIMPLE_ESCAPES:
        raise ValueError(f"bad escape \\{char}")
    return _SIMPLE_ESCAPES[char]


def _parse_yaml(text: str) -> dict:
    try:
        data = load_untrusted(text)
    except YamlProblem as exc:
        raise ValueError(str(exc)) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError("expected a mapping at the top level")
    return data


class YamlProblem(ValueError):
    """Text that :func:`load_untrusted` refuses, with where (1-based line and column, or None).

    ``ours`` is True for gitml's own refusals (aliases, merge keys, a key given twice, depth),
    whose wording never quotes the text beyond a short key; PyYAML's own problems may quote it.

    Args:
        problem: what is wrong, one line.
        line: the 1-based line it is on, if known.
        column: the 1-based column, if known.
        ours: whether gitml (not PyYAML) refused the text.
    """

    def __init__(self, problem: str, line: int | None = None, column: int | None = None,
                 ours: bool = False) -> None:
        self.problem, self.line, self.column, self.ours = problem, line, column, ours
        where = f" (line {line}, column {column})" if line else ""
        super().__init__(f"invalid YAML: {problem}{where}")


def load_untrusted(text: str, max_depth: int = MAX_DEPTH, yaml12: bool = False) -> Any:
    """Parse YAML from anyone (a pulled run, a team's gitml.yaml, a params file) safely.

    PyYAML's safe loader reads it, after a pass over its event stream (before anything is
    built) refuses what a safe loader lets through but a reader must not: anchors and aliases
    (a few hundred bytes of them expand to gigabytes), merge keys (``<<``), a key given twice
    in one mapping (PyYAML silently keeps the last), and nesting deeper than ``max_depth`` (its
    constructor recurses).

    Args:
        text: the document.
        max_depth: the deepest nesting of mappings and lists allowed.
        yaml12: read plain (unquoted) scalars by YAML 1.2's core schema, gitml's one grammar of
            values written as text (:func:`gitml.core.formats.parse_scalar`: ``1e-5`` is a
            number, ``yes``, ``on`` and ``1_000`` are text), instead of PyYAML's YAML 1.1 rules.

    Returns:
        Whatever the document holds (None for an empty one).

    Raises:
        YamlProblem: the refusal or PyYAML's error, with its line and column.
    """
    import yaml  # only here: gitml's own files never need PyYAML, which costs ~20 ms to import

    # libyaml is fast but rejects escaped lone surrogates that the pure loader (and dump) accept:
    # the pure loader gets a second try, and the first loader's error is the one reported.
    loaders = [getattr(yaml, "CSafeLoader", None), yaml.SafeLoader]
    if yaml12:
        loaders = [_core12_loader(yaml, base) if base else None for base in loaders]
    first = None
    for loader in filter(None, loaders):
        try:
            _check_events(yaml, text, loader, max_depth)
            return yaml.load(text, Loader=loader)  # noqa: S506 - only ever a safe loader
        except YamlProblem as exc:
            if exc.ours:  # gitml's own refusal, with its position, beats a loader's own limit
                raise  # (libyaml since PyYAML 6.0.4 stops at 1000 flow levels before we can count)
            first = first or exc
        except yaml.YAMLError as exc:
            first = first or _problem(exc, text)
    raise first


_PLAIN_TAG = "tag:gitml.dev,2026:plain"
_CORE12: dict = {}


def _core12_loader(yaml, base):
    """A subclass of safe loader ``base`` whose plain scalars go through ``parse_scalar``."""
    if base not in _CORE12:
        from gitml.core.formats import parse_scalar  # formats imports this module

        class Core12Loader(base):
            def resolve(self, kind, value, implicit):
                if kind is yaml.ScalarNode and implicit[0]:  # plain: no quotes, no tag
                    return _PLAIN_TAG
                return super().resolve(kind, value, implicit)

        Core12Loader.add_constructor(
            _PLAIN_TAG, lambda loader, node: None if node.value == "" else parse_scalar(node.value))
        _CORE12[base] = Core12Loader
    return _CORE12[base]


def _check_events(yaml, text: str, loader, max_depth: int) -> None:
    stack: list[list] = []  # per open collection: [is mapping, next node is a key, keys seen]
    for event in yaml.parse(text, Loader=loader):
        mark = event.start_mark
        where = (mark.line + 1, mark.column + 1)
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None) is not None:
            raise YamlProblem("anchors and aliases (&, *) are not allowed", *where, ours=True)
        if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent, yaml.ScalarEvent)):
            if stack and stack[-1][0]:
                top = stack[-1]
                if top[1] and isinstance(event, yaml.ScalarEvent):
                    if event.value == "<<" and event.implicit[0]:
                        raise YamlProblem("merge keys (<<) are not allowed", *where, ours=True)
                    if event.value in top[2]:
                        raise YamlProblem(f"key {_short(event.value)} given twice", *where, ours=True)
                    top[2].add(event.value)
                top[1] = not top[1]
            if not isinstance(event, yaml.ScalarEvent):
                stack.append([isinstance(event, yaml.MappingStartEvent), True, set()])
                if len(stack) > max_depth:
                    raise YamlProblem(f"nested more than {max_depth} levels deep", *where, ours=True)
        elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
            stack.pop()


def _short(key: str) -> str:
    return repr(key) if len(key) <= 40 and key.isprintable() else "a key (not shown: long or unprintable)"


def _problem(exc, text: str) -> YamlProblem:
    """PyYAML's error as a :class:`YamlProblem`."""
    import yaml

    if isinstance(exc, yaml.MarkedYAMLError):
        mark = exc.problem_mark or exc.context_mark
        problem = str(exc.problem or exc.context or "not valid YAML")
        return YamlProblem(problem, *((mark.line + 1, mark.column + 1) if mark else (None, None)))
    if isinstance(exc, yaml.reader.ReaderError) and isinstance(exc.position, int):
        line = text.count("\n", 0, exc.position) + 1
        column = exc.position - (text.rfind("\n", 0, exc.position) + 1) + 1
        return YamlProblem(str(exc.reason), line, column)
    return YamlProblem(str(exc))
