"""Compile MLflow-style run filter and order-by strings into parameterised SQLite.

The filter language is MLflow's ``search_runs`` syntax plus ``OR`` and parentheses. The SQL text
is assembled only from fixed fragments picked by the parser; every key name and literal the user
typed travels as a bound ``?`` parameter, so no input can change the shape of the query. The
fragments assume the outer query aliases the ``runs`` table as ``r``.

Every input is bounded before it can cost much: a filter or order-by string of at most
:data:`MAX_FILTER_CHARS` characters (read once, token by token, stopping at the first error),
at most :data:`MAX_DEPTH` levels of parentheses and :data:`MAX_TERMS` conditions. Within those
bounds the SQL stays inside SQLite's own limits (expression depth 1000, a parser stack of about
30 nested levels, 32766 bound variables, 1 MB of SQL text): long AND/OR chains become balanced
groups of at most ``_CHUNK`` operands, and a deeply nested filter is spelled as a list of common
table expressions rather than nested parentheses.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, NoReturn

from gitml.core.errors import BadInputError

__all__ = [
    "ATTRIBUTE_COLUMNS", "MAX_DEPTH", "MAX_FILTER_CHARS", "MAX_ORDER_KEYS", "MAX_TERMS",
    "compile_filter", "compile_order_by",
]  # fmt: skip

#: Longest filter or order-by string accepted, in characters.
MAX_FILTER_CHARS = 1024 * 1024
#: Deepest nesting of parentheses in a filter.
MAX_DEPTH = 64
#: Most conditions in a filter; each value of an IN list counts as one.
MAX_TERMS = 4096
#: Most sort keys in an order-by.
MAX_ORDER_KEYS = 64
# Operands per SQL AND/OR group: a left-deep chain of n operands is n deep in SQLite's expression
# tree, so longer chains are split into balanced groups.
_CHUNK = 64
# Filters whose SQL would nest parentheses deeper than this use common table expressions instead
# (SQLite 3.45 and older overflow their parser stack at about 30 levels).
_INLINE_NESTING = 4
# Most SELECTs joined by one UNION/INTERSECT in the SQL for a deeply nested filter.
_COMPOUND = 256

_COLUMNS = ("id", "name", "experiment", "status", "start_time", "end_time", "user", "branch")
#: Attribute names a filter may use, mapped to their ``runs`` column.
ATTRIBUTE_COLUMNS = {c: c for c in _COLUMNS} | {
    "run_id": "id", "run_name": "name", "commit": "source_commit",
    "source_commit": "source_commit", "dirty": "dirty",
}  # fmt: skip
_PREFIXES = {
    "metrics": "metric", "metric": "metric", "params": "param", "param": "param",
    "tags": "tag", "tag": "tag", "attributes": "attr", "attribute": "attr", "attr": "attr",
    "run": "attr",
}  # fmt: skip
_TABLES = {"metric": ("metrics", "m"), "param": ("params", "p"), "tag": ("tags", "t")}
_RESERVED = {"AND", "OR", "NOT", "IN", "IS", "NULL", "LIKE", "ILIKE", "ASC", "DESC"}
_OPS = ("==", "!=", "<>", "<=", ">=", "=", "<", ">")  # longest first so "<=" is not read as "<"
_NUM = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-/:]*")
# GLOB has no escape character; a bracket class holding one character matches it literally.
_GLOB_LITERAL = {"*": "[*]", "?": "[?]", "[": "[[]"}
_OPERATOR_HINT = "use =, !=, <, <=, >, >=, [NOT] LIKE, [NOT] ILIKE, [NOT] IN (...), IS [NOT] NULL"
_PREFIX_HINT = "use metrics.<name>, params.<name>, tags.<name> or attributes.<name>"
_QUOTE_HINT = "quote names with spaces or symbols, e.g. metrics.`val loss`"


@dataclass(frozen=True, slots=True)
class _Tok:
    kind: str  # word, key, str, num, bool, op, "(", ")", ",", end
    text: str  # source text, quoted as the user wrote it, for messages
    pos: int  # 0-based offset into the source
    value: Any = None


@dataclass
class _Leaf:
    """One compiled condition: SQL with ``?`` placeholders and their values, in order."""

    sql: str
    params: list


@dataclass
class _Group:
    """Operands joined by AND or OR; never holds a group with the same joiner."""

    joiner: str
    parts: list[_Leaf | _Group]


_Node = _Leaf | _Group


# A quoted text: the quote doubled or backslash-escaped stands for itself, as does an escaped
# backslash; any other backslash stays (LIKE patterns use it to escape % and _). Each position
# matches one alternative at most, so a failed match backtracks in linear time.
_QUOTED = {
    q: re.compile(rf"{q}((?:[^{q}\\]|{q}{q}|\\[{q}\\]|\\(?![{q}\\]))*){q}(?!{q})", re.S)
    for q in "'\"`"
}
_UNESCAPE = {q: re.compile(rf"{q}{q}|\\([{q}\\])") for q in "'\"`"}


def _read_quoted(src: str, start: int, what: str) -> tuple[str, int]:
    """Read the quoted text opening at ``start``; return (unescaped text, index after it)."""
    quote = src[start]
    match = _QUOTED[quote].match(src, start)
    if match:
        text = _UNESCAPE[quote].sub(lambda m: m.group(1) or quote, match.group(1))
        return text, match.end()
    raise BadInputError(
        f"bad {what}: unterminated string {src[start : start + 20]!r} starting at position "
        f"{start + 1}",
        hint=f"close it with {quote}; write a quote inside as {quote * 2} or \\{quote}",
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
        elif c in "'\"":
            text, end = _read_quoted(src, i, what)
            yield _Tok("str", src[i:end], i, text)
            i = end
        elif word:
            end = word.end()
            if word.group().endswith(".") and end < len(src) and src[end] in '`"':
                # A quoted name glued to its prefix: metrics.`val loss`, params."a.b".
                name, end = _read_quoted(src, end, what)
                yield _Tok("key", src[i:end], i, (word.group()[:-1], name))
            else:
                yield _Tok("word", word.group(), i, word.group())
            i = end
        else:
            hint = "backticks quote key names, e.g. metrics.`val loss`" if c == "`" else None
            raise BadInputError(f"bad {what}: unexpected character {c!r} at position {i + 1}", hint)
    while True:  # the parser may look at the end more than once
        yield _Tok("end", "", len(src))


def _like_to_glob(pattern: str) -> str:
    out, i = [], 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            i += 1
            out.append(_GLOB_LITERAL.get(pattern[i], pattern[i]))
        else:
            out.append({"%": "*", "_": "?"}.get(c) or _GLOB_LITERAL.get(c, c))
        i += 1
    return "".join(out)


class _Parser:
    def __init__(self, src: str, what: str) -> None:
        _check_source(src, what)
        self.what = what
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
        if tok.kind != "end":
            return f"{tok.text!r} at position {tok.pos + 1}"
        after = f" after {self._last.text!r}" if self._last is not None else ""
        return f"end of input{after} (position {tok.pos + 1})"

    def fail(self, message: str, hint: str | None = None) -> NoReturn:
        raise BadInputError(f"bad {self.what}: {message}", hint)

    def key(self) -> tuple[str, str]:
        """Parse one key; return (kind, name) with attribute names resolved to their column."""
        tok = self.next()
        if tok.kind == "key":
            prefix, name = tok.value
        elif tok.kind == "word" and tok.text.upper() not in _RESERVED:
            prefix, dot, name = tok.text.partition(".")
            if not dot:
                prefix, name = "attributes", tok.text
        else:
            self.fail(f"expected a key such as metrics.acc or params.lr, found {self.at(tok)}")
        kind = _PREFIXES.get(prefix.lower())
        if kind is None:
            self.fail(f"unknown key prefix {prefix!r} in {self.at(tok)}", _PREFIX_HINT)
        if not name:
            self.fail(f"empty key name in {self.at(tok)}", _QUOTE_HINT)
        if kind == "attr":
            column = ATTRIBUTE_COLUMNS.get(name.lower())
            if column is None:
                self.fail(
                    f"unknown attribute {name!r} in {self.at(tok)}",
                    "valid attributes: " + ", ".join(sorted(ATTRIBUTE_COLUMNS)),
                )
            return kind, column
        return kind, name

    def literal(self) -> _Tok:
        tok = self.next()
        if tok.kind in ("str", "num"):
            return tok
        if tok.kind == "word" and tok.text.upper() in ("TRUE", "FALSE"):
            return _Tok("bool", tok.text, tok.pos, tok.text.upper() == "TRUE")
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

    def parse_filter(self) -> _Node:
        self.depth = 0
        self.terms = 0
        node = self.chain("OR")
        if self.peek().kind != "end":
            self.fail(f"expected AND, OR or end of filter, found {self.at(self.peek())}")
        return node

    def chain(self, joiner: str) -> _Node:
        # An OR chain is made of AND chains, which is what makes AND bind tighter.
        def operand() -> _Node:
            return self.chain("AND") if joiner == "OR" else self.primary()

        parts: list[_Node] = []
        while True:
            part = operand()
            # (a OR b) OR c is one OR of three: nesting the SQL would only cost depth.
            same = isinstance(part, _Group) and part.joiner == joiner
            parts.extend(part.parts if same else [part])
            if not self.kw(joiner):
                break
            self.next()
        return parts[0] if len(parts) == 1 else _Group(joiner, parts)

    def primary(self) -> _Node:
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

    def comparison(self) -> _Leaf:
        start = self.peek()
        self.count_terms(start)
        kind, name = self.key()
        tok = self.next()
        word = tok.text.upper() if tok.kind == "word" else ""
        params: list = []
        if tok.kind == "op":
            op = {"==": "=", "<>": "!="}.get(tok.text, tok.text)
            sql = _condition(self, kind, name, op, [self.literal()], False, params)
            return _Leaf(sql, params)
        if word == "IS":
            present = self.kw("NOT")
            if present:
                self.next()
            null = self.next()
            if not (null.kind == "word" and null.text.upper() == "NULL"):
                self.fail(f"expected NULL or NOT NULL after IS, found {self.at(null)}")
            return _Leaf(_presence(kind, name, present, params), params)
        negate = word == "NOT"
        if negate:
            tok = self.next()
            word = tok.text.upper() if tok.kind == "word" else ""
        if word in ("LIKE", "ILIKE"):
            sql = _condition(self, kind, name, word, [self.literal()], negate, params)
            return _Leaf(sql, params)
        if word == "IN":
            values = self.literal_list()
            return _Leaf(_condition(self, kind, name, "IN", values, negate, params), params)
        self.fail(
            f"expected an operator after key {start.text!r}, found {self.at(tok)}", _OPERATOR_HINT
        )


def _marks(values: list) -> str:
    return ", ".join("?" * len(values))


def _presence(kind: str, name: str, present: bool, params: list) -> str:
    if kind == "attr":
        return f"r.{name} IS {'NOT ' if present else ''}NULL"
    table, a = _TABLES[kind]
    params.append(name)
    exists = f"EXISTS (SELECT 1 FROM {table} {a} WHERE {a}.run_id = r.id AND {a}.key = ?)"
    return exists if present else "NOT " + exists


def _condition(
    parser: _Parser, kind: str, name: str, op: str, values: list[_Tok], negate: bool, params: list
) -> str:
    """Build the SQL for one key compared with literal(s), appending its bound parameters."""
    label = f"{kind}s.{name}" if kind != "attr" else name
    is_dirty = kind == "attr" and name == "dirty"
    if op in ("LIKE", "ILIKE") and (kind == "metric" or is_dirty):
        parser.fail(f"{op} does not apply to {label!r}, which is not text")
    for lit in values:
        bad = None
        if op in ("LIKE", "ILIKE") and lit.kind != "str":
            bad = f"{op} needs a quoted pattern, found {parser.at(lit)}"
        elif kind == "metric" and lit.kind != "num":
            bad = f"metric {label!r} compares numerically, but {parser.at(lit)} is not a number"
        elif is_dirty and (lit.kind == "str" or lit.value not in (True, False)):
            bad = f"'dirty' takes true, false, 1 or 0, found {parser.at(lit)}"
        elif lit.kind == "bool" and not is_dirty:
            bad = f"{label!r} compares text; quote {parser.at(lit)} as a string"
        if bad:
            parser.fail(bad)
    table_alias = _TABLES.get(kind)
    col = f"{table_alias[1]}.value" if table_alias else f"r.{name}"
    args: list = []

    def bind(lit: _Tok) -> Any:
        # Text keys match a number by the digits typed; dirty is stored as 0/1.
        if is_dirty or kind == "metric":
            return int(lit.value) if is_dirty else lit.value
        return lit.value if lit.kind == "str" else lit.text

    def equals(lit: _Tok) -> str:
        if kind == "param" and lit.kind == "num":
            # A numeric param may be stored as 1e-3 or 0.001; match either the number or the text.
            args.extend([lit.value, lit.text])
            return "(p.num IS ? OR p.value IS ?)"
        args.append(bind(lit))
        return f"{col} = ?"

    if op == "LIKE":
        args.append(_like_to_glob(values[0].value))
        pred = f"{col} GLOB ?"  # sqlite's LIKE ignores ASCII case; GLOB does not
    elif op == "ILIKE":
        args.append(values[0].value)
        pred = f"lower({col}) LIKE lower(?) ESCAPE '\\'"
    elif op == "IN" and kind == "param":
        # One SQL IN per column keeps a long list one node deep. coalesce: a text param has no
        # number, and NOT IN must still match it.
        texts = [lit.value if lit.kind == "str" else lit.text for lit in values]
        nums = [lit.value for lit in values if lit.kind == "num"]
        args.extend([*texts, *nums])
        pred = f"p.value IN ({_marks(texts)})"
        if nums:
            pred = f"({pred} OR coalesce(p.num IN ({_marks(nums)}), 0))"
    elif op == "IN":
        args.extend(bind(lit) for lit in values)
        pred = f"{col} IN ({_marks(values)})"
    elif op in ("=", "!="):
        pred = equals(values[0])
        negate = op == "!="
    elif kind == "param" and values[0].kind == "num":
        args.append(values[0].value)
        pred = f"p.num {op} ?"
    else:
        args.append(bind(values[0]))
        pred = f"{col} {op} ?"
    if negate:
        pred = f"NOT ({pred})"
    if kind == "attr":
        # A NULL column makes the predicate NULL, which never matches: "missing never matches".
        params.extend(args)
        return f"({pred})"
    table, a = table_alias
    params.extend([name, *args])
    # The unary + keeps SQLite off the (key, value) index here: probing one run by run_id is a
    # point lookup, while a key-range scan per run made a search quadratic in the runs.
    return f"EXISTS (SELECT 1 FROM {table} {a} WHERE {a}.run_id = r.id AND +{a}.key = ? AND {pred})"


def _join(parts: list[_Leaf], joiner: str) -> _Leaf:
    """Join operands with AND/OR, in balanced groups of at most :data:`_CHUNK`."""
    while len(parts) > _CHUNK:
        parts = [_join(parts[i : i + _CHUNK], joiner) for i in range(0, len(parts), _CHUNK)]
    sql = "(" + f" {joiner} ".join(p.sql for p in parts) + ")"
    return _Leaf(sql, [value for p in parts for value in p.params])


def _nesting(node: _Node) -> int:
    """How deep the inline SQL for ``node`` nests parentheses (leaves count as 0)."""
    if isinstance(node, _Leaf):
        return 0
    extra, n = 0, len(node.parts)
    while n > _CHUNK:
        extra, n = extra + 1, -(-n // _CHUNK)
    return 1 + extra + max(_nesting(p) for p in node.parts)


def _inline(node: _Node) -> _Leaf:
    if isinstance(node, _Leaf):
        return node
    return _join([_inline(p) for p in node.parts], node.joiner)


def _hoisted(root: _Group) -> _Leaf:
    """SQL for a deeply nested filter, which nests no deeper than one group.

    Each group becomes a common table expression listing its runs: the runs its own conditions
    select, INTERSECT (for AND) or UNION (for OR) the tables of its inner groups. SQLite adds up
    the expression depth of subqueries nested in expressions, not of tables read in FROM, so the
    depth no longer grows with the nesting. (A group's runs are a set, without SQL's NULL; since
    the grammar has no NOT over a group, a NULL never matched anyway.)
    """
    ctes: list[_Leaf] = []

    def define(select: _Leaf) -> str:
        name = f"g{len(ctes) + 1}"
        ctes.append(_Leaf(f"{name}(id) AS ({select.sql})", select.params))
        return name

    def compound(joiner: str, leaves: list[_Leaf], names: list[str]) -> _Leaf:
        selects = [_Leaf(f"SELECT id FROM {name}", []) for name in names]
        if leaves:
            where = _join(leaves, joiner)
            selects.insert(0, _Leaf(f"SELECT r.id FROM runs r WHERE {where.sql}", where.params))
        sql = (" INTERSECT " if joiner == "AND" else " UNION ").join(s.sql for s in selects)
        return _Leaf(sql, [value for s in selects for value in s.params])

    def hoist(group: _Group) -> str:
        leaves = [p for p in group.parts if isinstance(p, _Leaf)]
        names = [hoist(p) for p in group.parts if isinstance(p, _Group)]
        while len(names) > _COMPOUND:  # SQLite allows 500 SELECTs in one compound
            chunks = [names[i : i + _COMPOUND] for i in range(0, len(names), _COMPOUND)]
            names = [define(compound(group.joiner, [], chunk)) for chunk in chunks]
        return define(compound(group.joiner, leaves, names))

    top = hoist(root)
    sql = f"r.id IN (WITH {', '.join(c.sql for c in ctes)} SELECT id FROM {top})"
    return _Leaf(sql, [value for c in ctes for value in c.params])


def compile_filter(expr: str) -> tuple[str, list]:
    """Compile an MLflow-style run filter into a SQLite WHERE fragment.

    Args:
        expr: A filter such as ``metrics.acc > 0.9 AND params.optimizer = 'adam'``. Keywords
            are case-insensitive; ``OR`` and parentheses are allowed, ``AND`` binding tighter.
            At most :data:`MAX_FILTER_CHARS` characters,
            :data:`MAX_DEPTH` levels of parentheses and :data:`MAX_TERMS` conditions.

    Returns:
        ``(sql, params)``: a boolean SQL expression over the runs table aliased ``r`` (it may
        read the ``runs`` table again) and the values for its ``?`` placeholders. An empty or
        blank filter gives ``("1", [])``.

    Raises:
        BadInputError: The filter does not parse, compares a key in a way that cannot hold or
            passes a bound; the message names the offending token and its 1-based position.
    """
    if isinstance(expr, str) and not expr.strip() or expr is None:
        return "1", []
    node = _Parser(expr, "filter").parse_filter()
    leaf = _inline(node) if _nesting(node) <= _INLINE_NESTING else _hoisted(node)
    return leaf.sql, leaf.params


def _sort_value(kind: str, name: str) -> tuple[str, list]:
    if kind == "attr":
        return f"r.{name}", []
    table, a = _TABLES[kind]
    # sqlite orders numbers before text, so numeric params sort by value and the rest follow.
    column = "coalesce(p.num, p.value)" if kind == "param" else f"{a}.value"
    return f"(SELECT {column} FROM {table} {a} WHERE {a}.run_id = r.id AND {a}.key = ?)", [name]


def compile_order_by(order_by: str | list[str] | None) -> tuple[str, list]:
    """Compile sort keys into the body of a SQLite ORDER BY clause.

    Args:
        order_by: ``"<key> [ASC|DESC]"`` items, as a list or one comma-separated string, using
            the filter key syntax (``metrics.acc DESC``, ``params.lr``, ``start_time``).

    Returns:
        ``(sql, params)``: the clause without the words ORDER BY, and its parameters. Runs
        lacking a key sort after the others in both directions, and ``r.id`` always breaks ties.
        None or empty gives ``("r.start_time DESC, r.id", [])``.

    Raises:
        BadInputError: An item is not a key optionally followed by ASC or DESC, or there are
            more than :data:`MAX_ORDER_KEYS` keys.
    """
    if order_by is not None and not isinstance(order_by, (str, list, tuple)):
        raise BadInputError(f"bad order_by: expected a string or a list, got {type(order_by).__name__}")
    items = [order_by] if isinstance(order_by, str) else list(order_by or [])
    if len(items) > MAX_ORDER_KEYS:
        raise BadInputError(f"bad order_by: more than {MAX_ORDER_KEYS} sort keys")
    terms: list[str] = []
    params: list = []
    for item in items:
        if not isinstance(item, str):
            raise BadInputError(f"bad order_by: expected a string item, got {type(item).__name__}")
        parser = _Parser(item, "order_by")
        while parser.peek().kind != "end":
            if len(terms) >= MAX_ORDER_KEYS:
                parser.fail(f"more than {MAX_ORDER_KEYS} sort keys, at {parser.at(parser.peek())}")
            value, args = _sort_value(*parser.key())
            direction = parser.next().text.upper() if parser.kw("ASC", "DESC") else "ASC"
            terms.append(f"{value} IS NULL, {value} {direction}")
            params.extend(args * 2)
            tok = parser.next()
            if tok.kind not in (",", "end"):
                parser.fail(f"expected ASC, DESC, ',' or end of item, found {parser.at(tok)}")
            if tok.kind == "," and parser.peek().kind == "end":
                parser.fail(f"expected a key, found {parser.at(parser.peek())}")
    if not terms:
        return "r.start_time DESC, r.id", []
    return ", ".join([*terms, "r.id"]), params
