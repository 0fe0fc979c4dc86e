"""Tests for gitml.core.yamlfmt: canonical YAML dump and the fast loader with its fallback."""

from __future__ import annotations

import math
import re
from types import MappingProxyType

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from gitml.core import yamlfmt
from gitml.core.yamlfmt import dump, load

NAN, INF = float("nan"), float("inf")

# Strings that are awkward for YAML as keys or values: special words, number and date look-alikes,
# indicators, quotes, whitespace, line breaks of every kind, BOM, non-ASCII.
AWKWARD = [
    "",
    "y",
    "Y",
    "n",
    "yes",
    "Yes",
    "NO",
    "on",
    "Off",
    "true",
    "False",
    "null",
    "Null",
    "NULL",
    "~",
    "1",
    "-1",
    "01",
    "0x10",
    "0o7",
    "1_000",
    "1e5",
    "1.5",
    ".5",
    "1.",
    ".inf",
    "-.Inf",
    ".nan",
    "12:30",
    "2001-12-14",
    "=",
    "<<",
    "a:b",
    "a: b",
    "a :b",
    "#x",
    "x #y",
    " lead",
    "trail ",
    "a b",
    "-",
    "- a",
    "?",
    "? a",
    "!tag",
    "&a",
    "*a",
    "[",
    "]",
    "{",
    "}",
    ",",
    "@",
    "`",
    "%",
    "|",
    ">",
    "'",
    '"',
    "\\",
    "\\n",
    "a\nb",
    "\n",
    "\r\n",
    "\t",
    "\x00",
    "\x1b",
    "\x7f",
    "\x85",
    "\x9f",
    "\xa0",
    "\u2028",
    "\u2029",
    "\ufeff",
    "\ufffe",
    "\uffff",
    "\ud800",
    "\udfff",
    "\ud83d\ude00",
    "é",
    "日本",
    "😀",
    "key_ok",
    "a.b/c-d",
    "_",
    "---",
    "...",
    "a" * 300,
]

chars = st.characters()  # every code point, lone surrogates included
keys = st.one_of(
    st.sampled_from(AWKWARD),
    st.text(chars, max_size=8),
    st.from_regex(r"[A-Za-z_][A-Za-z0-9_./-]{0,8}", fullmatch=True),
)
floats = st.one_of(
    st.floats(),  # includes nan, infinities, subnormals and huge values
    st.sampled_from(
        [
            0.0,
            -0.0,
            5e-324,
            2.2250738585072014e-308,
            1e-05,
            1e16,
            1e20,
            1e22,
            0.1,
            1.7976931348623157e308,
            NAN,
            INF,
            -INF,
            123456789.0,
        ]
    ),
)
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(2**300), max_value=2**300),
    floats,
    st.text(chars, max_size=12),
    st.sampled_from(AWKWARD),
)
values = st.recursive(
    st.one_of(scalars, st.lists(scalars, max_size=4)),
    lambda inner: st.dictionaries(keys, inner, max_size=4),
    max_leaves=12,
)
documents = st.dictionaries(keys, values, max_size=6)


def canon(value):
    """Comparable form that tells int/float/bool apart, and nan and -0.0 from their siblings."""
    if isinstance(value, dict):
        return {"dict": sorted((repr(canon(k)), canon(v)) for k, v in value.items())}
    if isinstance(value, (list, tuple)):
        return ["list", *map(canon, value)]
    if isinstance(value, float):
        return ("float", value.hex())
    return (type(value).__name__, value)


def has_surrogate(value) -> bool:
    if isinstance(value, dict):
        return any(has_surrogate(k) or has_surrogate(v) for k, v in value.items())
    if isinstance(value, list):
        return any(map(has_surrogate, value))
    return isinstance(value, str) and re.search("[\ud800-\udfff]", value) is not None


def reordered(value):
    if isinstance(value, dict):
        return {k: reordered(value[k]) for k in reversed(list(value))}
    return value


# -- properties -----------------------------------------------------------------------------


@pytest.mark.slow
@settings(max_examples=300, deadline=None)
@given(documents)
def test_roundtrip_and_pyyaml_agree(data):
    text = dump(data)
    text.encode("utf-8")  # always writable: no raw surrogates
    assert text.endswith("\n") and not text.endswith("\n\n")
    fast = yamlfmt._parse_fast(text) if text != "{}\n" else {}
    assert fast is not None, "dump output must stay inside the fast subset"
    assert canon(load(text)) == canon(data)
    assert canon(yaml.safe_load(text)) == canon(data)
    if hasattr(yaml, "CSafeLoader") and not has_surrogate(data):
        # libyaml refuses escaped lone surrogates; everything else must read the same there.
        assert canon(yaml.load(text, Loader=yaml.CSafeLoader)) == canon(data)


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(documents)
def test_dump_is_deterministic_and_idempotent(data):
    text = dump(data)
    assert dump(reordered(data)) == text
    assert dump(load(text)) == text


# -- exact output ---------------------------------------------------------------------------


def test_golden_output():
    data = {
        "zeta": 1,
        "alpha": {"lr": 0.001, "decay": 1e-05, "layers": [64, 32], "empty": {}, "none": []},
        "yes": True,
        "name": "resnet 50",
        "missing": None,
        "Beta": -0.0,
        "a b": "x\ny",
    }
    assert dump(data) == (
        "Beta: -0.0\n"
        '"a b": "x\\ny"\n'
        "alpha:\n"
        "  decay: 1.0e-05\n"
        "  empty: {}\n"
        "  layers: [64, 32]\n"
        "  lr: 0.001\n"
        "  none: []\n"
        "missing: null\n"
        'name: "resnet 50"\n'
        '"yes": true\n'
        "zeta: 1\n"
    )


def test_empty_and_deep_nesting():
    assert dump({}) == "{}\n"
    assert load("{}\n") == load("") == {}
    deep = {"a": {"b": {"c": {"d": 1}}, "e": 2}, "f": {"g": {}}}
    assert dump(deep) == "a:\n  b:\n    c:\n      d: 1\n  e: 2\nf:\n  g: {}\n"
    assert load(dump(deep)) == deep


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1e-05, "1.0e-05"),
        (1.5e-05, "1.5e-05"),
        (1e20, "1.0e+20"),
        (1e16, "1.0e+16"),
        (5e-324, "5.0e-324"),
        (0.1, "0.1"),
        (3.0, "3.0"),
        (-0.0, "-0.0"),
        (NAN, ".nan"),
        (INF, ".inf"),
        (-INF, "-.inf"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (True, "true"),
        (False, "false"),
        (None, "null"),
        (0, "0"),
        (-7, "-7"),
        (2**70, "1180591620717411303424"),
    ],
)
def test_scalar_format(value, text):
    assert dump({"v": value}) == f"v: {text}\n"
    assert canon(load(f"v: {text}\n")["v"]) == canon(value)
    assert canon(yaml.safe_load(f"v: {text}\n")["v"]) == canon(value)


@pytest.mark.parametrize(
    ("key", "text"),
    [
        ("lr", "lr"),
        ("_x", "_x"),
        ("a.b/c-d_1", "a.b/c-d_1"),
        ("yes", '"yes"'),
        ("Yes", '"Yes"'),
        ("y", '"y"'),
        ("N", '"N"'),
        ("OFF", '"OFF"'),
        ("null", '"null"'),
        ("~", '"~"'),
        ("1", '"1"'),
        ("", '""'),
        (" a", '" a"'),
        ("a b", '"a b"'),
        ("a:b", '"a:b"'),
        ("#c", '"#c"'),
        ("-a", '"-a"'),
        ("é", '"é"'),
        ("yess", "yess"),
    ],
)
def test_key_quoting(key, text):
    assert dump({key: 1}) == f"{text}: 1\n"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ('say "hi"', '"say \\"hi\\""'),
        ("a\\b", '"a\\\\b"'),
        ("\n\t\r", '"\\n\\t\\r"'),
        ("\x00\x1b", '"\\u0000\\u001b"'),
        ("\x7f", '"\\u007f"'),
        ("\x85", '"\\u0085"'),
        ("\x9f", '"\\u009f"'),
        ("\u2028\u2029", '"\\u2028\\u2029"'),
        ("\ufeff", '"\\ufeff"'),
        ("\ufffe", '"\\ufffe"'),
        ("\ud800", '"\\ud800"'),
        ("é\xa0日😀", '"é\xa0日😀"'),
        ("/", '"/"'),
    ],
)
def test_string_escaping(value, text):
    assert dump({"s": value}) == f"s: {text}\n"
    assert load(f"s: {text}\n") == {"s": value}


def test_separately_escaped_surrogates_stay_two_code_points():
    data = {"s": "\ud83d\ude00", "t": ["\udfff\ud800"]}
    text = dump(data)
    assert text == 's: "\\ud83d\\ude00"\nt: ["\\udfff\\ud800"]\n'
    assert load(text) == data == yaml.safe_load(text)


def test_tuples_and_other_mappings():
    assert dump({"a": (1, "x")}) == dump({"a": [1, "x"]}) == 'a: [1, "x"]\n'
    assert dump(MappingProxyType({"b": 1, "a": MappingProxyType({})})) == "a: {}\nb: 1\n"


@pytest.mark.parametrize(
    "data",
    [
        {"a": {1, 2}},
        {"a": b"x"},
        {"a": object()},
        {1: "a"},
        {"a": {None: 1}},
        {"a": [[1]]},
        {"a": [{"b": 1}]},
        {"a": [b"x"]},
        {"a": frozenset()},
    ],
)
def test_unsupported_types_raise_type_error(data):
    with pytest.raises(TypeError):
        dump(data)


def test_top_level_must_be_mapping():
    with pytest.raises(TypeError):
        dump([1, 2])  # type: ignore[arg-type]


def test_key_length_limit():
    longest = "k" * 1024
    text = dump({longest: 1, "q" * 1022: 2})
    assert yaml.safe_load(text) == load(text) == {longest: 1, "q" * 1022: 2}
    with pytest.raises(ValueError, match="too long"):
        dump({"k" * 1025: 1})
    with pytest.raises(ValueError, match="too long"):
        dump({" " * 1023: 1})  # 1025 characters once quoted


# -- fallback for hand-written YAML ---------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("# run params\nmodel: rf  # random forest\n", {"model": "rf"}),
        ("model: rf\nseed: 1\n", {"model": "rf", "seed": 1}),
        ("layers:\n  - 64\n  - 32\n", {"layers": [64, 32]}),
        ("note: |\n  line one\n  line two\n", {"note": "line one\nline two\n"}),
        ('s: "two\n  lines"\n', {"s": "two lines"}),
        ("a: 1\r\nb: 2\r\n", {"a": 1, "b": 2}),
        ('s: "x\ty"\n', {"s": "x\ty"}),
        ("a: 1\nb: 2", {"a": 1, "b": 2}),
        ("\ufeffa: 1\n", {"a": 1}),
        ("---\na: 1\n...\n", {"a": 1}),
        ("a:    1\n", {"a": 1}),
        ("a:\n    b: 1\n", {"a": {"b": 1}}),
        ("a:\nb: 1\n", {"a": None, "b": 1}),
        ("a:\n", {"a": None}),
        (
            "a: ~\nb: Yes\nc: 1e5\nd: 0x10\ne: 1_000\nf: .NaN\n",
            {"a": None, "b": True, "c": "1e5", "d": 16, "e": 1000, "f": NAN},
        ),
        ("yes: 1\n2: 3\n", {True: 1, 2: 3}),
        ('s: "\\x41\\e"\n', {"s": "A\x1b"}),
        ("l: [1e5, rf, 1.]\n", {"l": ["1e5", "rf", 1.0]}),
        ("\n\n", {}),
        ("# nothing\n", {}),
    ],
)
def test_fallback_reads_hand_written_yaml(text, expected):
    assert yamlfmt._parse_fast(text) is None
    assert canon(load(text)) == canon(expected) == canon(yaml.safe_load(text) or {})


@pytest.mark.parametrize("text", [
    "base: &b {x: 1}\nother: *b\n",
    "a: &x 1\n",
    "a: [&x 1, *x]\n",
    "base: &b {x: 1}\nother:\n  <<: *b\n",
    'a: &a ["x","x"]\nb: [*a,*a]\nc: [*b,*b]\n',
])
def test_anchors_and_aliases_are_refused_not_expanded(text):
    with pytest.raises(ValueError, match="anchors and aliases"):
        load(text)


@pytest.mark.parametrize("text", ["a: 1\na: 2\n", "a:\n  b: 1\na: 3\n", "a:\n  b: 1\n  b: 2\n",
                                  "a: {b: 1, b: 2}\n", '"a": 1\na: 2\n', "x: [1, 1]\na: 1\na: 1\n"])
def test_a_key_given_twice_is_refused(text):
    """PyYAML keeps the last of two equal keys; a record where one hides another is refused."""
    with pytest.raises(ValueError, match="given twice"):
        load(text)


def test_deep_nesting_is_refused_before_pyyaml_recurses():
    load("a: " + "[" * 31 + "]" * 31 + "\n")  # 32 levels with the top mapping
    with pytest.raises(ValueError, match="nested more than 32 levels deep"):
        load("a: " + "[" * 5000 + "]" * 5000 + "\n")


@pytest.mark.parametrize(
    "text",
    [
        'a: 1\nb: "x"\nc: [1, "y", null, .inf]\nd:\n  e: {}\n',
        's: "\\/\\b\\f\\u00e9"\n',
        'a: "\\ud83d\\ude00"\n',
        "a: -0\nb: 0.5e+3\n",
    ],
)
def test_fast_path_agrees_with_pyyaml(text):
    assert yamlfmt._parse_fast(text) is not None
    assert canon(load(text)) == canon(yaml.safe_load(text))


@pytest.mark.parametrize("text", ["- a\n- b\n", "42\n", "just text\n", "[1, 2]\n", "''\n"])
def test_non_mapping_top_level(text):
    with pytest.raises(ValueError, match="expected a mapping at the top level"):
        load(text)


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("a: [1, 2\n", 2),
        ("a: 1\nb: c: d\n", 2),
        ('a: 1\nb: 2\nc: "open\n', 4),
        ("a: 1\n    b: 2\n", 2),
        ("a:\n  b: 1\n c: 2\n", 3),
        ("a: 1\nb: \x07\n", 2),
        ("a: *nowhere\n", 1),
        ("a: 1\n---\nb: 2\n", 2),
        ('a: "\\u12"\n', 1),
        ("a:\n\tb: 1\n", 2),
    ],
)
def test_malformed_yaml_raises_value_error_with_line(text, line):
    with pytest.raises(ValueError, match=f"line {line}\\b"):
        load(text)


def test_fallback_never_builds_python_objects():
    with pytest.raises(ValueError):
        load("a: !!python/object/apply:os.system ['echo pwned']\n")


def test_escaped_lone_surrogate_in_fallback_uses_pure_loader():
    # libyaml rejects this escape; the pure loader (and our own dump) accept it.
    assert load('# hand edited\ns: "\\ud800"\n') == {"s": "\ud800"}


def test_load_result_is_fresh_each_time():
    text = "a: {}\nb: [1]\n"
    first = load(text)
    first["a"]["x"] = 1
    first["b"].append(2)
    assert load(text) == {"a": {}, "b": [1]}
    assert not math.isnan(load("x: 1.5\n")["x"])


# Lines close to the canonical subset: the fast path must never read one differently from PyYAML.
CANON_VALUES = ["1", "-0", "0.5", "1.0e+3", ".nan", "-.inf", "null", "true", "{}", "[]"]
CANON_VALUES += ["[1, 2]", '["a", 1.5, null]', '"x"', '"\\t"', '"\\/"', '"\\ud83d\\ude00"']
ODD_VALUES = ["1e3", "1.", "01", ".NaN", "+1", "~", "True", "[1,2]", '"\\x41"', "'q'", "rf"]
ODD_VALUES += ["# c", '"a" # c', "[1e3]", "&x 1", "*x", "- 1", " 1"]


def weighted(common, rare):
    return st.sampled_from(common * 4 + rare)


near_lines = st.builds(
    "{}{}{}\n".format,
    weighted(["", "", "  "], ["    ", " ", "\t"]),
    weighted(["a", "b", "_k", "a.b", '"a"', '"\\u00e9"'], ["yes", "Off", '"n"', "1", "-x"]),
    weighted([f": {v}" for v in CANON_VALUES] + [":"] * 4, [f": {v}" for v in ODD_VALUES] + [" :"]),
)


def _has_duplicate_keys(node) -> bool:
    if isinstance(node, yaml.MappingNode):
        keys = [k.value for k, _ in node.value if isinstance(k, yaml.ScalarNode)]
        return len(keys) != len(set(keys)) or any(_has_duplicate_keys(v) for _, v in node.value)
    if isinstance(node, yaml.SequenceNode):
        return any(_has_duplicate_keys(v) for v in node.value)
    return False


@settings(max_examples=400, deadline=None)
@given(st.lists(near_lines, max_size=6))
def test_fast_path_never_disagrees_with_pyyaml(lines):
    text = "".join(lines)
    try:
        expected = yaml.safe_load(text)
        if any(isinstance(e, yaml.AliasEvent) or getattr(e, "anchor", None) is not None
               for e in yaml.parse(text)):
            raise yaml.YAMLError("anchors and aliases are refused")
        if _has_duplicate_keys(yaml.compose(text)):
            raise yaml.YAMLError("a key given twice is refused")
    except yaml.YAMLError:
        with pytest.raises(ValueError):
            load(text)
        return
    if expected is None or isinstance(expected, dict):
        assert canon(load(text)) == canon(expected or {})
    else:
        with pytest.raises(ValueError):
            load(text)
