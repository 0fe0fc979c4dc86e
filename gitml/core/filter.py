"""MLflow-style run filters and sort keys, parsed into a :class:`Query` the index runs.

The filter language is MLflow's ``search_runs`` syntax, read as MLflow reads it (a quoted value
is the text between its quotes; docs/tracking.md lists what gitml adds, such as ``OR`` and
parentheses, and tests/test_search_mlflow.py checks it against MLflow). This module
owns the language: it reads the text, checks every comparison can hold (a metric compares with a
number, ``LIKE`` takes a quoted pattern …) and returns plain data — :class:`Condition`,
:class:`Group`, :class:`SortKey`, gathered in a :class:`Query`. It writes no SQL: turning a query
into a statement is :mod:`gitml.core.index`'s job (``Index.search(query)``), so every key name
and literal stays a value, never query text.

Every input is bounded before it can cost much: a filter or order-by string of at most
:data:`MAX_FILTER_CHARS` characters (read once, token by token, stopping at the first error),
at most :data:`MAX_DEPTH` levels of parentheses and :data:`MAX_TERMS` conditions. The index
keeps any query within those bounds inside SQLite's own limits.
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any, NamedTuple, NoReturn

from gitml.core.errors import BadInputError

__all__ = [
    "ATTRIBUTES", "DATASET_FIELDS", "MAX_DEPTH", "MAX_FILTER_CHARS", "MAX_ORDER_KEYS", "MAX_TERMS", "TIME_ATTRIBUTES",
    "Condition", "Group", "Node", "Query", "SortKey", "Value", "compile_query", "parse_filter",
    "parse_order_by", "utc_text",
]  # fmt: skip

#: Longest filter or order-by string accepted, in characters.
MAX_FILTER_CHARS = 1024 * 1024
#: Deepest nesting of parentheses in a filter.
MAX_DEPTH = 64
#: Most conditions in a filter; each value of an IN list counts as one.
MAX_TERMS = 4096
#: Most sort keys in an order-by.
MAX_ORDER_KEYS = 64

_NAMES = ("id", "name", "experiment", "status", "start_time", "end_time", "user", "branch", "commit", "dirty",
          "artifact_uri")
#: Attribute names a filter may use (any case), mapped to the run attribute they stand for. MLflow's
#: names (``run_id``, ``run_name`` and its spellings ``run name``, ``created``, ``user_id``) included.
ATTRIBUTES = {n: n for n in _NAMES} | {
    "run_id": "id", "run_name": "name", "run name": "name", "source_commit": "commit",
    "created": "start_time", "user_id": "user",
}  # fmt: skip
#: What a ``dataset.`` key may name (MLflow's dataset fields).
DATASET_FIELDS = frozenset({"name", "digest", "context"})
#: Attributes holding a time: compared as instants (epoch milliseconds or ISO 8601), not as text.
TIME_ATTRIBUTES = frozenset({"start_time", "end_time"})
_PREFIXES = {
    "metrics": "metric", "metric": "metric", "params": "param", "param": "param",
    "parameters": "param", "parameter": "param", "tags": "tag", "tag": "tag",
    "attributes": "attr", "attribute": "attr", "attr": "attr", "run": "attr",
    "datasets": "dataset", "dataset": "dataset",
}  # fmt: skip
_RESERVED = {"AND", "OR", "NOT", "IN", "IS", "NULL", "LIKE", "ILIKE", "ASC", "DESC", "NUMERIC"}
_OPS = ("==", "!=", "<>", "<=", ">=", "=", "<", ">")  # longest first so "<=" is not read as "<"
_NUM = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_WORD = re.compile(r"[^\W\d][\w.\-/:]*")
_OPERATOR_HINT = "use =, !=, <, <=, >, >=, [NOT] LIKE, [NOT] ILIKE, [NOT] IN (...), IS [NOT] NULL"
_PREFIX_HINT = "use metrics.<name>, params.<name>, tags.<name>, attributes.<name> or datasets.<field>"
_QUOTE_HINT = "quote names with spaces or symbols, e.g. metrics.`val loss`"
_TIME_HINT = (
    "e.g. start_time >= '2026-11-30T10:00:00+05:30', the same instant as MLflow's milliseconds "
    "1796013000000; a time without an offset is UTC"
)


# -- what a parsed filter is ---------------------------------------------------------------------
# Named tuples, not dataclasses: the same immutable records at a fifth of the import cost, which
# every `gitml runs list` pays.

class Value(NamedTuple):
    """A literal as the user wrote it.

    ``kind`` is ``"str"``, ``"num"``, ``"bool"`` or ``"time"``; ``value`` the parsed value (for
    a string, the text between its quotes as it stands, as MLflow takes it; an int below 2**63,
    else a float, for numbers; for a time compared with ``start_time`` or ``end_time``, the
    instant as UTC text in the run records' form, see :func:`utc_text`); ``text`` the source
    text, quotes included, so that a text key can match a number by the digits typed
    (``params.lr = 1e-3`` matches the text ``1e-3``).
    """

    kind: str
    text: str
    value: Any


class Condition(NamedTuple):
    """One comparison of a run's key with literal values.

    ``field`` is ``"metric"``, ``"param"``, ``"tag"``, ``"attr"`` or ``"dataset"``; ``name``
    the key as logged, for ``"attr"`` one of the values of :data:`ATTRIBUTES`, for
    ``"dataset"`` one of :data:`DATASET_FIELDS`. ``op`` is one of ``=``, ``!=``,
    ``<``, ``<=``, ``>``, ``>=``, ``LIKE``, ``ILIKE``, ``IN`` or ``NULL`` (``IS NULL``, no
    values); ``negate`` makes it ``NOT LIKE``, ``NOT ILIKE``, ``NOT IN`` or ``IS NOT NULL``.
    A run that lacks the key never matches, except ``IS NULL``.
    """

    field: str
    name: str
    op: str
    values: tuple[Value, ...] = ()
    negate: bool = False


class Group(NamedTuple):
    """Operands joined by ``"AND"`` or ``"OR"``; never holds a group with the same joiner."""

    joiner: str
    parts: tuple[Node, ...]


Node = Condition | Group


class SortKey(NamedTuple):
    """One sort key: a field and name as in :class:`Condition`, ascending unless ``descending``.

    ``numeric`` (``NUMERIC`` in an order-by, for params and tags only) sorts the values that are
    plainly numbers by value, before the others, which sort as text.
    """

    field: str
    name: str
    descending: bool = False
    numeric: bool = False


@dataclass(frozen=True)
class Query:
    """A run search, as :meth:`gitml.core.index.Index.search` runs it.

    Attributes:
        where: the filter (None: every run).
        order: sort keys; runs lacking a key sort after the others, and runs that tie come
            newest start first, then by run id (MLflow's order); none means newest start first.
        experiments: only runs of these experiments (empty: any).
        limit: at most this many runs (None: all).
        offset: runs skipped before the first one given (a page further on).
    """

    where: Node | None = None
    order: tuple[SortKey, ...] = ()
    experiments: tuple[str, ...] = ()
    limit: int | None = None
    offset: int = 0


# -- times ---------------------------------------------------------------------------------------
# Run records hold times as UTC ISO 8601 text with milliseconds and a Z, which sorts as time does.
# A time in a filter becomes that text, so the index compares like with like.

_EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_MS = timedelta(milliseconds=1)


def _record_text(moment: datetime) -> str:
    """``moment`` (aware, UTC) as a run record writes it; four-digit years, even below 1000."""
    return (f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:"
            f"{moment.minute:02d}:{moment.second:02d}.{moment.microsecond // 1000:03d}Z")


def _iso_instant(text: str) -> datetime | None:
    """The UTC instant an ISO 8601 text names (UTC when it has no offset), or None."""
    try:
        moment = datetime.fromisoformat(text.strip())
        if moment.tzinfo is None:
            return moment.replace(tzinfo=timezone.utc)
        return moment.astimezone(timezone.utc)
    except (ValueError, OverflowError, TypeError):
        return None


def utc_text(text: str) -> str | None:
    """An ISO 8601 time as run records write it: UTC, milliseconds, ``Z``.

    Args:
        text: e.g. ``2026-11-30T10:00:00+05:30``, ``2026-11-30 04:30Z`` or ``2026-11-30``;
            a time without an offset is taken as UTC.

    Returns:
        e.g. ``2026-11-30T04:30:00.000Z`` (below a millisecond is cut off), or None when the
        text is not an ISO 8601 time between the years 1 and 9999.
    """
    moment = _iso_instant(text) if isinstance(text, str) else None
    return None if moment is None else _record_text(moment)


def _time_value(lit: _Tok, op: str) -> str | None:
    """The record text a time literal compares as, or None when it is not a time.

    Numbers are epoch milliseconds (MLflow's ``start_time``); text is ISO 8601. Records keep
    whole milliseconds, so an instant between two is rounded the way that keeps ``op`` exact:
    ``x > 2.5`` is ``x > 2``, ``x >= 2.5`` is ``x >= 3``; equal to it is no record (``""``).
    """
    if lit.kind == "num":
        millis = Decimal(lit.text)
    elif lit.kind == "str" and (moment := _iso_instant(lit.value)) is not None:
        millis = Decimal((moment - _EPOCH) // timedelta(microseconds=1)) / 1000
    else:
        return None
    rounding = ROUND_FLOOR if op in (">", "<=") else ROUND_CEILING
    whole = millis.to_integral_value(rounding)
    if whole != millis and op in ("=", "!=", "IN"):
        return ""  # no record is at a fraction of a millisecond
    try:
        return _record_text(_EPOCH + int(whole) * _MS)
    except OverflowError:
        return None


# -- reading the text ----------------------------------------------------------------------------

class _Tok(NamedTuple):
    kind: str  # word, key, str, num, bool, op, "(", ")", ",", end
    text: str  # source text, quoted as the user wrote it, for messages
    pos: int  # 0-based offset into the source
    value: Any = None


# Quoted text is read as MLflow's parser reads it: inside single quotes, '' and \' do not end the
# text, and in double quotes "" and \" do not; in backticks, ``. What stands between the quotes is
# then taken as it is, with no escape undone: 'O''Neil' is the text O''Neil and 'a\b' is a\b,
# which is what an MLflow store compares (a value holding a quote is written in the other quotes:
# "O'Neil"). A failed match backtracks in linear time: a quote can always close the text.
_QUOTED = {
    "'": re.compile(r"'((?:''|\\'|[^'])*)'"),
    '"': re.compile(r'"((?:""|\\"|[^"])*)"'),
    "`": re.compile(r"`((?:``|[^`])*)`"),
}


def _read_quoted(src: str, start: int, what: str) -> tuple[str, int]:
    """Read the quoted text opening at ``start``; return (text between the quotes, index after it)."""
    quote = src[start]
    match = _QUOTED[quote].match(src, start)
    if match:
        return match.group(1), match.end()
    raise BadInputError(
        f"bad {what}: unterminated string {src[start : start + 20]!r} starting at position "
        f"{start + 1}",
        hint=f"close it with {quote}; to put {quote} in a value, quote it with the other quotes",
    )


_SPACE = re.compile(r"\s+")


def _check_source(src: str, what: str) -> None:
    if not isinstance(src, str):
        raise BadInputError(f"bad {what}: expected a string, got {type(src).__name__}")
    if len(src) > MAX_FILTER_CHARS:
        raise BadInputError(
            f"bad {what}: too long: {len(src):,} characters, at most {MAX_FILTER_CHARS:,} "
            f"(the excess starts at position {MAX_FILTER_CHARS + 1})",
            hint="a long list of values fits an IN (...) list",
        )


def _key_name(src: str, start: int, what: str) -> tuple[str, int]:
    """The name after a prefix's dot: quoted in any quotes, or a word; (name, index after it)."""
    if start < len(src) and src[start] in "`\"'":
        return _read_quoted(src, start, what)
    word = _WORD.match(src, start)
    return (word.group(), word.end()) if word else ("", start)


def _tokenize(src: str, what: str) -> Iterator[_Tok]:
    """Tokens of ``src``, made as the parser asks: a bad filter stops at its first error."""
    i = 0
    while i < len(src):
        c = src[i]
        if c.isspace():
            i = _SPACE.match(src, i).end()
            continue
        op = next((o for o in _OPS if src.startswith(o, i)), None)
        num = _NUM.match(src, i)
        word = _WORD.match(src, i)
        if c in "(),":
            yield _Tok(c, c, i)
            i += 1
        elif op:
            yield _Tok("op", op, i)
            i += len(op)
        elif num:
            raw = num.group()
            # sqlite3 cannot bind integers beyond 64 bits, so those become floats.
            small_int = re.fullmatch(r"[+-]?\d+", raw) and abs(int(raw)) < 2**63
            value = int(raw) if small_int else float(raw)
            yield _Tok("num", raw, i, value)
            i = num.end()
        elif c in "'\"`":
            text, end = _read_quoted(src, i, what)
            if c == "`" and end < len(src) and src[end] == ".":
                # A prefix in backticks, as MLflow allows: `metrics`.acc.
                name, end = _key_name(src, end + 1, what)
                yield _Tok("key", src[i:end], i, (text, name))
            else:
                # Backticks quote a name; double quotes a name or a value, as the parser needs.
                yield _Tok("name" if c == "`" else "str", src[i:end], i, text)
            i = end
        elif word:
            end = word.end()
            if word.group().endswith(".") and end < len(src) and src[end] in "`\"'":
                # A quoted name glued to its prefix: metrics.`val loss`, params."a.b", metrics.'acc'.
                name, end = _key_name(src, end, what)
                yield _Tok("key", src[i:end], i, (word.group()[:-1], name))
            else:
                yield _Tok("word", word.group(), i, word.group())
            i = end
        else:
            raise BadInputError(f"bad {what}: unexpected character {c!r} at position {i + 1}",
                                "quote key names with symbols, e.g. metrics.`val loss`")
    while True:  # the parser may look at the end more than once
        yield _Tok("end", "", len(src))


class _Parser:
    def __init__(self, src: str, what: str, attributes: dict[str, str] | None = None,
                 time_attributes: frozenset[str] | None = None) -> None:
        _check_source(src, what)
        self.what = what
        self.attributes = ATTRIBUTES if attributes is None else attributes
        self.time_attributes = TIME_ATTRIBUTES if time_attributes is None else time_attributes
        self._tokens = _tokenize(src, what)
        self._ahead: _Tok | None = None  # the next token, once looked at
        self._last: _Tok | None = None  # the last token consumed, for "end of input after …"

    def peek(self) -> _Tok:
        if self._ahead is None:
            self._ahead = next(self._tokens)
        return self._ahead

    def next(self) -> _Tok:
        tok = self.peek()
        if tok.kind != "end":
            self._last, self._ahead = tok, None
        return tok

    def kw(self, *words: str) -> bool:
        tok = self.peek()
        return tok.kind == "word" and tok.text.upper() in words

    def at(self, tok: _Tok) -> str:
        if tok.kind == "str":
            return f"{tok.text} at position {tok.pos + 1}"  # already in its quotes
        if tok.kind != "end":
            return f"{tok.text!r} at position {tok.pos + 1}"
        after = f" after {self._last.text!r}" if self._last is not None else ""
        return f"end of input{after} (position {tok.pos + 1})"

    def fail(self, message: str, hint: str | None = None) -> NoReturn:
        raise BadInputError(f"bad {self.what}: {message}", hint)

    def key(self) -> tuple[str, str]:
        """Parse one key; return (field, name) with attribute names made canonical."""
        tok = self.next()
        if tok.kind == "key":
            prefix, name = tok.value
        elif tok.kind == "word" and tok.text.upper() not in _RESERVED:
            prefix, dot, name = tok.text.partition(".")
            if not dot:
                prefix, name = "attributes", tok.text
        elif tok.kind == "name" or tok.kind == "str" and tok.text.startswith('"'):
            prefix, name = "attributes", tok.value  # `Run name`, "Run name"
        else:
            self.fail(f"expected a key such as metrics.acc or params.lr, found {self.at(tok)}")
        field = _PREFIXES.get(prefix.lower())
        if field is None:
            self.fail(f"unknown key prefix {prefix!r} in {self.at(tok)}", _PREFIX_HINT)
        if not name:
            self.fail(f"empty key name in {self.at(tok)}", _QUOTE_HINT)
        if field == "attr":
            attribute = self.attributes.get(name.lower())
            if attribute is None:
                self.fail(
                    f"unknown attribute {name!r} in {self.at(tok)}",
                    "valid attributes: " + ", ".join(sorted(self.attributes)),
                )
            return field, attribute
        if field == "dataset" and name.lower() not in DATASET_FIELDS:
            self.fail(f"unknown dataset field {name!r} in {self.at(tok)}",
                      "valid dataset fields: " + ", ".join(sorted(DATASET_FIELDS)))
        return field, name.lower() if field == "dataset" else name

    def literal(self) -> _Tok:
        tok = self.next()
        if tok.kind in ("str", "num"):
            return tok
        if tok.kind == "word" and tok.text.upper() in ("TRUE", "FALSE"):
            return _Tok("bool", tok.text, tok.pos, tok.text.upper() == "TRUE")
        if tok.kind == "word" and tok.text.lower().lstrip("+-") in ("nan", "inf", "infinity"):
            self.fail(f"{self.at(tok)} is not a value a search can compare",
                      "a NaN metric matches only != (metrics.loss != 0 lists it); for infinity "
                      "compare with a number past every finite value, e.g. metrics.loss > 1e308")
        self.fail(
            f"expected a value (quoted string, number, true or false), found {self.at(tok)}",
            "quote text values, e.g. status = 'FINISHED'",
        )

    def literal_list(self) -> list[_Tok]:
        tok = self.next()
        if tok.kind != "(":
            self.fail(f"expected '(' after IN, found {self.at(tok)}")
        if self.peek().kind == ")":
            self.fail(f"empty IN list, found {self.at(self.peek())}", "list at least one value")
        values = [self.literal()]
        while (tok := self.next()).kind != ")":
            if tok.kind != ",":
                self.fail(f"expected ',' or ')' in IN list, found {self.at(tok)}")
            self.count_terms(self.peek())  # the first value counted with its condition
            values.append(self.literal())
        return values

    def parse_filter(self) -> Node:
        self.depth = 0
        self.terms = 0
        node = self.chain("OR")
        if self.peek().kind != "end":
            self.fail(f"expected AND, OR or end of filter, found {self.at(self.peek())}")
        return node

    def chain(self, joiner: str) -> Node:
        # An OR chain is made of AND chains, which is what makes AND bind tighter.
        def operand() -> Node:
            return self.chain("AND") if joiner == "OR" else self.primary()

        parts: list[Node] = []
        while True:
            part = operand()
            # (a OR b) OR c is one OR of three: nesting would only cost depth.
            same = isinstance(part, Group) and part.joiner == joiner
            parts.extend(part.parts if same else [part])
            if not self.kw(joiner):
                break
            self.next()
        return parts[0] if len(parts) == 1 else Group(joiner, tuple(parts))

    def primary(self) -> Node:
        if self.peek().kind != "(":
            return self.comparison()
        opened = self.next()
        if self.depth >= MAX_DEPTH:
            self.fail(
                f"parentheses nested more than {MAX_DEPTH} deep at position {opened.pos + 1}",
                "flatten the filter: AND binds tighter than OR",
            )
        self.depth += 1
        node = self.chain("OR")
        self.depth -= 1
        tok = self.next()
        if tok.kind != ")":
            self.fail(
                f"expected ')' to close the '(' at position {opened.pos + 1}, found {self.at(tok)}"
            )
        return node

    def count_terms(self, tok: _Tok, n: int = 1) -> None:
        self.terms += n
        if self.terms > MAX_TERMS:
            self.fail(
                f"more than {MAX_TERMS:,} conditions (IN values count one each), at position "
                f"{tok.pos + 1}",
                "search in several calls, or narrow the filter",
            )

    def comparison(self) -> Condition:
        start = self.peek()
        self.count_terms(start)
        field, name = self.key()
        tok = self.next()
        word = tok.text.upper() if tok.kind == "word" else ""
        if tok.kind == "op":
            op = {"==": "=", "<>": "!="}.get(tok.text, tok.text)
            return self.condition(field, name, op, [self.literal()])
        if word == "IS":
            present = self.kw("NOT")
            if present:
                self.next()
            null = self.next()
            if not (null.kind == "word" and null.text.upper() == "NULL"):
                self.fail(f"expected NULL or NOT NULL after IS, found {self.at(null)}")
            if field == "dataset":
                self.fail(f"IS NULL does not apply to datasets.{name}: a run lists no dataset or several",
                          "ask for datasets.name IN (...) or datasets.name LIKE '%'")
            return Condition(field, name, "NULL", (), present)
        negate = word == "NOT"
        if negate:
            tok = self.next()
            word = tok.text.upper() if tok.kind == "word" else ""
        if word in ("LIKE", "ILIKE"):
            return self.condition(field, name, word, [self.literal()], negate)
        if word == "IN":
            return self.condition(field, name, "IN", self.literal_list(), negate)
        self.fail(
            f"expected an operator after key {start.text!r}, found {self.at(tok)}", _OPERATOR_HINT
        )

    def condition(self, field: str, name: str, op: str, values: list[_Tok], negate: bool = False) -> Condition:
        """A comparison whose values suit its key, or a refusal naming the value that does not."""
        label = f"{field}s.{name}" if field != "attr" else name
        is_dirty = field == "attr" and name == "dirty"
        is_time = field == "attr" and name in self.time_attributes and op not in ("LIKE", "ILIKE")
        if op in ("LIKE", "ILIKE") and (field == "metric" or is_dirty):
            self.fail(f"{op} does not apply to {label!r}, which is not text")
        if field == "dataset" and op not in ("=", "!=", "LIKE", "ILIKE", "IN"):
            self.fail(f"{op} does not apply to {label!r}: datasets compare with =, !=, LIKE, ILIKE and IN")
        parsed: list[Value] = []
        for lit in values:
            bad = None
            if is_time:
                instant = _time_value(lit, op)
                if instant is None:
                    self.fail(
                        f"{label!r} compares times: {self.at(lit)} is neither milliseconds "
                        "since 1970 nor an ISO 8601 time of the years 1 to 9999",
                        _TIME_HINT,
                    )
                parsed.append(Value("time", lit.text, instant))
                continue
            if op in ("LIKE", "ILIKE") and lit.kind != "str":
                bad = f"{op} needs a quoted pattern, found {self.at(lit)}"
            elif field == "metric" and lit.kind != "num":
                bad = f"metric {label!r} compares numerically, but {self.at(lit)} is not a number"
            elif is_dirty and (lit.kind == "str" or lit.value not in (True, False)):
                bad = f"'dirty' takes true, false, 1 or 0, found {self.at(lit)}"
            elif field == "dataset" and lit.kind != "str":
                bad = f"{label!r} compares text; quote {self.at(lit)} as a string"
            elif field == "attr" and not is_dirty and lit.kind == "num":
                bad = f"{label!r} compares text; quote {self.at(lit)} as a string"
            elif lit.kind == "bool" and not is_dirty:
                bad = f"{label!r} compares text; quote {self.at(lit)} as a string"
            if bad:
                self.fail(bad)
            parsed.append(Value(lit.kind, lit.text, lit.value))
        return Condition(field, name, op, tuple(parsed), negate)


# -- the public compiler ---------------------------------------------------------------------------

def parse_filter(expr: str | None, attributes: dict[str, str] | None = None,
                 time_attributes: frozenset[str] | None = None) -> Node | None:
    """Parse an MLflow-style run filter.

    Args:
        expr: A filter such as ``metrics.acc > 0.9 AND params.optimizer = 'adam'``. Keywords
            are case-insensitive; ``OR`` and parentheses are allowed, ``AND`` binding tighter.
            At most :data:`MAX_FILTER_CHARS` characters, :data:`MAX_DEPTH` levels of
            parentheses and :data:`MAX_TERMS` conditions.
        attributes: the attribute names allowed, mapped to canonical names (default: the runs'
            :data:`ATTRIBUTES`; experiment searches pass their own).
        time_attributes: which canonical attributes hold times (default: :data:`TIME_ATTRIBUTES`).

    Returns:
        The filter as a :class:`Condition` or :class:`Group` (redundant parentheses and nested
        groups with the same joiner flattened), or None for None, an empty or a blank filter.

    Raises:
        BadInputError: The filter does not parse, compares a key in a way that cannot hold or
            passes a bound; the message names the offending token and its 1-based position.
    """
    if expr is None or isinstance(expr, str) and not expr.strip():
        return None
    return _Parser(expr, "filter", attributes, time_attributes).parse_filter()


def parse_order_by(order_by: str | Sequence[str] | None, attributes: dict[str, str] | None = None
                   ) -> tuple[SortKey, ...]:
    """Parse sort keys.

    Args:
        order_by: ``"<key> [NUMERIC] [ASC|DESC]"`` items, as a list or one comma-separated
            string, using the filter key syntax (``metrics.acc DESC``, ``params.lr``,
            ``params.seed NUMERIC DESC``, ``start_time``).
        attributes: the attribute names allowed, as :func:`parse_filter` takes them.

    Returns:
        The keys in order (empty for None, an empty string or list: newest first).

    Raises:
        BadInputError: An item is not a key optionally followed by NUMERIC and ASC or DESC (a
            blank item of a list included), NUMERIC follows a key that is not a param or tag,
            the key is a dataset field, or there are more than :data:`MAX_ORDER_KEYS` keys.
    """
    if order_by is not None and not isinstance(order_by, (str, list, tuple)):
        raise BadInputError(f"bad order_by: expected a string or a list, got {type(order_by).__name__}")
    items = [order_by] if isinstance(order_by, str) else list(order_by or [])
    if len(items) > MAX_ORDER_KEYS:
        raise BadInputError(f"bad order_by: more than {MAX_ORDER_KEYS} sort keys")
    keys: list[SortKey] = []
    for item in items:
        if not isinstance(item, str):
            raise BadInputError(f"bad order_by: expected a string item, got {type(item).__name__}")
        if not item.strip() and isinstance(order_by, (list, tuple)):
            raise BadInputError("bad order_by: an empty sort key", "give a key such as metrics.acc DESC")
        parser = _Parser(item, "order_by", attributes)
        while parser.peek().kind != "end":
            if len(keys) >= MAX_ORDER_KEYS:
                parser.fail(f"more than {MAX_ORDER_KEYS} sort keys, at {parser.at(parser.peek())}")
            start = parser.peek()
            field, name = parser.key()
            if field == "dataset":
                parser.fail(f"runs cannot be sorted by datasets.{name}: a run lists no dataset or several")
            numeric = parser.kw("NUMERIC")
            if numeric:
                if field not in ("param", "tag"):
                    parser.fail(f"NUMERIC applies to params and tags, not {start.text!r}",
                                "metrics and times always sort as numbers")
                parser.next()
            descending = parser.kw("ASC", "DESC") and parser.next().text.upper() == "DESC"
            keys.append(SortKey(field, name, descending, numeric))
            tok = parser.next()
            if tok.kind not in (",", "end"):
                can_be_numeric = field in ("param", "tag") and not numeric
                parser.fail(f"expected {'NUMERIC, ' if can_be_numeric else ''}ASC, DESC, ',' or end of item, "
                            f"found {parser.at(tok)}")
            if tok.kind == "," and parser.peek().kind == "end":
                parser.fail(f"expected a key, found {parser.at(parser.peek())}")
    return tuple(keys)


def compile_query(filter: str | None = None, order_by: str | Sequence[str] | None = None,
                  experiment: str | Sequence[str] | None = None, limit: int | None = None,
                  offset: int = 0) -> Query:
    """The :class:`Query` for a run search, checked before anything runs.

    Args:
        filter: see :func:`parse_filter`.
        order_by: see :func:`parse_order_by`.
        experiment: one experiment name or several (None or empty: any).
        limit: at most this many runs: a whole number, 0 or more (None, 0 or infinity: no
            limit), as MLflow's ``max_results`` is.
        offset: how many of the runs found to skip first (paging), 0 or more.

    Returns:
        The query, for :meth:`gitml.core.index.Index.search`.

    Raises:
        BadInputError: a bad filter, sort key, experiment or limit.
    """
    names = [experiment] if isinstance(experiment, str) else list(experiment or [])
    if not all(isinstance(n, str) for n in names):
        raise BadInputError("bad experiment: expected a name or a list of names")
    if limit is not None:
        if isinstance(limit, bool) or not isinstance(limit, numbers.Real):  # numpy numbers too
            raise BadInputError(f"bad limit: expected a number, got {type(limit).__name__}")
        if not limit >= 0 or limit != math.inf and limit != int(limit):  # NaN, negative or fractional
            raise BadInputError(f"bad limit: expected a whole number of runs, 0 or more (0: all), got {limit!r}")
        limit = int(min(limit, 2**63 - 1)) or None
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset < 2**63:
        raise BadInputError(f"bad offset: expected a whole number of runs, 0 or more, got {offset!r}")
    return Query(parse_filter(filter), parse_order_by(order_by), tuple(names), limit, offset)


def like(pattern: str, text: str, fold: bool = False) -> bool:
    """SQL's ``LIKE`` (``ILIKE`` with ``fold``) in Python: ``%`` any run, ``_`` one character.

    For filters evaluated outside the index (experiment records, MLflow's logged models).
    """
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, text, re.DOTALL | (re.IGNORECASE if fold else 0)) is not None
