"""`gitml remote add/remove` edit gitml.yaml in place: untouched lines stay byte-for-byte."""

from __future__ import annotations

import pytest
from conftest import gitml

from gitml.core.config import TEMPLATE, parse_config

COMMENTED = """\
# team config: keep these comments

params: [params.yaml]   # read by commit-run
metrics: [metrics.json]

# shared artifact storage
remotes:
    storage:                 # the main bucket
        url: s3://ml-artifacts/churn
        options: {endpoint_url: "http://127.0.0.1:9000"}

    # scratch space, wiped weekly
    scratch:
        url: /mnt/scratch
# storage unless told otherwise
default_remote: storage

experiment: churn
"""


@pytest.fixture
def commented(repo):
    (repo / "gitml.yaml").write_text(COMMENTED, encoding="utf-8")
    return repo


def _text(repo) -> str:
    return (repo / "gitml.yaml").read_text(encoding="utf-8")


def test_add_inserts_the_new_remote_after_the_others_and_keeps_every_other_byte(commented):
    result = gitml(commented, "remote", "add", "extra", "gs://team-bucket/ml", "-o", "project=ml-prod")
    assert result.code == 0, result.err
    new = "    extra:\n      url: gs://team-bucket/ml\n      options:\n        project: ml-prod\n"
    assert _text(commented) == COMMENTED.replace("        url: /mnt/scratch\n", "        url: /mnt/scratch\n" + new)
    raw = parse_config(_text(commented)).raw
    assert list(raw["remotes"]) == ["storage", "scratch", "extra"]
    assert raw["remotes"]["extra"] == {"url": "gs://team-bucket/ml", "options": {"project": "ml-prod"}}


def test_replacing_a_remote_changes_only_its_lines(commented):
    assert gitml(commented, "remote", "add", "scratch", "/mnt/other").code == 0
    assert _text(commented) == COMMENTED.replace("    scratch:\n        url: /mnt/scratch\n",
                                                 "    scratch:\n      url: /mnt/other\n")


def test_remove_drops_only_that_remote(commented):
    assert gitml(commented, "remote", "remove", "scratch").code == 0
    assert _text(commented) == COMMENTED.replace("    scratch:\n        url: /mnt/scratch\n", "")


def test_removing_the_default_remote_drops_default_remote_too(commented):
    assert gitml(commented, "remote", "remove", "storage").code == 0
    expected = COMMENTED.replace("    storage:                 # the main bucket\n"
                                 "        url: s3://ml-artifacts/churn\n"
                                 '        options: {endpoint_url: "http://127.0.0.1:9000"}\n', "")
    assert _text(commented) == expected.replace("default_remote: storage\n", "")
    assert "default_remote" not in parse_config(_text(commented)).raw


def test_default_flag_rewrites_the_default_remote_line_only(commented):
    assert gitml(commented, "remote", "add", "scratch", "/mnt/scratch", "--default").code == 0
    assert _text(commented) == COMMENTED.replace("        url: /mnt/scratch\n", "      url: /mnt/scratch\n").replace(
        "default_remote: storage\n", "default_remote: scratch\n")
    assert parse_config(_text(commented)).raw["default_remote"] == "scratch"


def test_init_then_add_then_remove_gives_back_the_template(empty_repo):
    assert gitml(empty_repo, "init").code == 0
    assert _text(empty_repo) == TEMPLATE
    assert gitml(empty_repo, "remote", "add", "s", "/tmp/store", "--default").code == 0
    assert _text(empty_repo) == TEMPLATE + "\nremotes:\n  s:\n    url: /tmp/store\n\ndefault_remote: s\n"
    assert gitml(empty_repo, "remote", "remove", "s").code == 0
    assert _text(empty_repo) == TEMPLATE


def test_add_without_a_file_writes_a_valid_one(empty_repo):
    assert not (empty_repo / "gitml.yaml").exists()
    assert gitml(empty_repo, "remote", "add", "s", "/tmp/store").code == 0
    assert _text(empty_repo) == "remotes:\n  s:\n    url: /tmp/store\n"


def test_inline_remotes_mapping_is_rewritten_as_a_block_and_the_rest_kept(repo):
    text = "# top\nremotes: {a: {url: /x}}   # inline\nexperiment: e  # mine\n"
    (repo / "gitml.yaml").write_text(text, encoding="utf-8")
    assert gitml(repo, "remote", "add", "b", "/y").code == 0
    assert _text(repo) == "# top\nremotes:\n  a:\n    url: /x\n  b:\n    url: /y\nexperiment: e  # mine\n"


@pytest.mark.parametrize("args", [
    ["add", "leak", "s3://AKIAEXAMPLE:SECRET@bucket/p"],
    ["add", "leak", "s3://bucket/p", "-o", "secret=hunter2"],
    ["add", "bad name", "/x"],
    ["add", "x", ""],
    ["remove", "nosuch"],
])
def test_refusals_write_nothing(commented, args):
    before = (commented / "gitml.yaml").read_bytes()
    result = gitml(commented, "remote", *args)
    assert result.code == 2 and len(result.err.strip().splitlines()) == 1
    assert (commented / "gitml.yaml").read_bytes() == before
    assert sorted(p.name for p in commented.iterdir() if p.name.startswith(".gitml.yaml")) == []


def test_invalid_gitml_yaml_is_not_edited(repo):
    text = "remotes:\n  a: {url: /x}\nnot_a_key: 1\n"
    (repo / "gitml.yaml").write_text(text, encoding="utf-8")
    result = gitml(repo, "remote", "add", "b", "/y")
    assert result.code == 2 and "not_a_key" in result.err
    assert _text(repo) == text
