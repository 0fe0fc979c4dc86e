"""Compile MLflow-style run filter and order-by strings into parameterised SQLite.

The filter language is MLflow's ``search_runs`` syntax plus ``OR`` and parentheses. The SQL text
is assembled only from fixed fragments picked by the parser; every key name and literal the user
typed travels as a bound ``?`` parameter, so no input can change the shape of the query. The
fragments assume the outer query aliases the ``runs`` table as ``r``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, NoReturn

from gitml.core.errors import BadInputError

__all__ = ["ATTRIBUTE_COLUMNS", "compile_filter", "compile_order_by"]

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


@dataclass(frozen=True)
class _Tok:
    kind: str  # word, key, str, num, bool, op, "(", ")", ",", end
    text: str  # source text, quoted as the user wrote it, for messages
    pos: int  # 0-based offset into the source
    value: Any = None


def _read_quoted(src: str, start: int, what: str) -> tuple[str, int]:
    """Read the quoted text opening at ``start``; return (unescaped text, index after it)."""
    quote, out, i = src[start], [], start + 1
    while i < len(src):
        c = src[i]
        if c == quote and src.startswith(quote * 2, i):
            out.append(quote)
            i += 2
        elif c == quote:
            return "".join(out), i + 1
        elif c == "\\" and i + 1 < len(src) and src[i + 1] in (quote, "\\"):
            out.append(src[i + 1])
            i += 2
        else:
            # Other backslashes stay, so LIKE patterns can still escape % and _.
            out.append(c)
            i += 1
    raise BadInputError(
        f"bad {what}: unterminated string {src[start : start + 20]!r} starting at position "
        f"{start + 1}",
        hint=f"close it with {quote}; write a quote inside as {quote * 2} or \\{quote}",
    )


def _tokenize(src: str, what: str) -> list[_Tok]:
    toks: list[_Tok] = []
    i = 0
    while i < len(src):
        c = src[i]
        op = next((o for o in _OPS if src.startswith(o, i)), None)
        num = _NUM.match(src, i)
        word = _WORD.match(src, i)
        if c.isspace():
            i += 1
        elif c in "(),":
            toks.append(_Tok(c, c, i))
            i += 1
        elif op:
            toks.append(_Tok("op", op, i))
            i += len(op)
        elif num:
            raw = num.group()
            # sqlite3 cannot bind integers beyond 64 bits, so those become floats.
            small_int = re.fullmatch(r"[+-]?\d+", raw) and abs(int(raw)) < 2**63
            value = int(raw) if small_int else float(raw)
            toks.append(_Tok("num", raw, i, value))
            i = num.end()
        elif c in "'\"":
            text, end = _read_quoted(src, i, what)
            toks.append(_Tok("str", src[i:end], i, text))
            i = end
        elif word:
            end = word.end()
            if word.group().endswith(".") and end < len(src) and src[end] in '`"':
                # A quoted name glued to its prefix: metrics.`val loss`, params."a.b".
                name, end = _read_quoted(src, end, what)
                toks.append(_Tok("key", src[i:end], i, (word.group()[:-1], name)))
            else:
                toks.append(_Tok("word", word.group(), i, word.group()))
            i = end
        else:
            hint = "backticks quote key names, e.g. metrics.`val loss`" if c == "`" else None
            raise BadInputError(f"bad {what}: unexpected character {c!r} at position {i + 1}", hint)
    toks.append(_Tok("end", "", len(src)))
    return toks


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
        self.what = what
        self.toks = _tokenize(src, what)
        self.i = 0

    def peek(self) -> _Tok:
        return self.toks[self.i]

    def next(self) -> _Tok:
        tok = self.toks[self.i]
        self.i = min(self.i + 1, len(self.toks) - 1)
        return tok

    def kw(self, *words: str) -> bool:
        tok = self.peek()
        return tok.kind == "word" and tok.text.upper() in words

    def at(self, tok: _Tok) -> str:
        if tok.kind != "end":
            return f"{tok.text!r} at position {tok.pos + 1}"
        after = f" after {self.toks[-2].text!r}" if len(self.toks) > 1 else ""
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
            values.append(self.literal())
        return values

    def parse_filter(self) -> tuple[str, list]:
        params: list = []
        sql = self.chain(params, "OR")
        if self.peek().kind != "end":
            self.fail(f"expected AND, OR or end of filter, found {self.at(self.peek())}")
        return sql, params

    def chain(self, params: list, joiner: str) -> str:
        # An OR chain is made of AND chains, which is what makes AND bind tighter.
        def operand() -> str:
            return self.chain(params, "AND") if joiner == "OR" else self.primary(params)

        parts = [operand()]
        while self.kw(joiner):
            self.next()
            parts.append(operand())
        return parts[0] if len(parts) == 1 else "(" + f" {joiner} ".join(parts) + ")"

    def primary(self, params: list) -> str:
        if self.peek().kind != "(":
            return self.comparison(params)
        opened = self.next()
        sql = self.chain(params, "OR")
        tok = self.next()
        if tok.kind != ")":
            self.fail(
                f"expected ')' to close the '(' at position {opened.pos + 1}, found {self.at(tok)}"
            )
        return sql

    def comparison(self, params: list) -> str:
        start = self.peek()
        kind, name = self.key()
        tok = self.next()
        word = tok.text.upper() if tok.kind == "word" else ""
        if tok.kind == "op":
            op = {"==": "=", "<>": "!="}.get(tok.text, tok.text)
            return _condition(self, kind, name, op, [self.literal()], False, params)
        if word == "IS":
            present = self.kw("NOT")
            if present:
                self.next()
            null = self.next()
            if not (null.kind == "word" and null.text.upper() == "NULL"):
                self.fail(f"expected NULL or NOT NULL after IS, found {self.at(null)}")
            return _presence(kind, name, present, params)
        negate = word == "NOT"
        if negate:
            tok = self.next()
            word = tok.text.upper() if tok.kind == "word" else ""
        if word in ("LIKE", "ILIKE"):
            return _condition(self, kind, name, word, [self.literal()], negate, params)
        if word == "IN":
            return _condition(self, kind, name, "IN", self.literal_list(), negate, params)
        self.fail(
            f"expected an operator after key {start.text!r}, found {self.at(tok)}", _OPERATOR_HINT
        )


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
    elif op == "IN":
        pred = "(" + " OR ".join(equals(lit) for lit in values) + ")"
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


def compile_filter(expr: str) -> tuple[str, list]:
    """Compile an MLflow-style run filter into a SQLite WHERE fragment.

    Args:
        expr: A filter such as ``metrics.acc > 0.9 AND params.optimizer = 'adam'``. Keywords
            are case-insensitive; ``OR`` and parentheses are allowed, ``AND`` binding tighter.

    Returns:
        ``(sql, params)``: a boolean SQL expression over the runs table aliased ``r`` and the
        values for its ``?`` placeholders. An empty or blank filter gives ``("1", [])``.

    Raises:
        BadInputError: The filter does not parse or compares a key in a way that cannot hold;
            the message names the offending token and its 1-based position.
    """
    if not expr or not expr.strip():
        return "1", []
    return _Parser(expr, "filter").parse_filter()


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
        BadInputError: An item is not a key optionally followed by ASC or DESC.
    """
    items = [order_by] if isinstance(order_by, str) else list(order_by or [])
    terms: list[str] = []
    params: list = []
    for item in items:
        if not isinstance(item, str):
            raise BadInputError(f"bad order_by: expected a string item, got {item!r}")
        parser = _Parser(item, "order_by")
        while parser.peek().kind != "end":
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
