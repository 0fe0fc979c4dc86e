"""Docs are tested: every command and public name is documented, and marked examples run.

An example in docs/tracking.md, docs/artifacts.md, docs/diff.md, docs/registry.md, docs/sync.md,
docs/security.md, docs/workspace.md, docs/models.md or docs/projects.md runs when the line before its fence is ``<!-- test -->``: ```python blocks are executed in one
shared namespace, ```console blocks have each ``$ `` line run by bash (a block is one bash
process, so variables and ``cd`` carry from line to line within it, and each block starts in the
repository again), all in document order in one fresh repository per page. ``HOME`` and ``TMPDIR``
point into the test's temporary directory, so ``~/…`` and ``mktemp`` in an example stay inside it;
``../`` of the repository is the test's own temporary directory too, so a page may put a bare
remote or a second clone there.

A command must exit 0 and write nothing on stderr, unless its line ends with ``# exits N``: then
it must exit with status N, may write on stderr, and every line shown below it that starts with
``gitml:`` must be among what it wrote (stdout or stderr), word for word (a run id or a commit
in it, 7 to 40 hex digits, stands for any id of that length). That is how a page shows
a refused push or an error message, and how the test keeps those messages true. A command may
carry a here-document (``<<'EOF'`` … ``EOF``); its lines are part of the command, not output.

README.md's tour runs as a reader types it: ``gitml demo`` (the README's first line) in an empty
directory, then every marked block in one bash session, so ``cd`` and variables (``RUN=$(gitml
commit-run)``) carry from block to block; its ```python blocks are scripts, run there with
``python``.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

import gitml
import gitml.artifacts
from gitml.cli.main import COMMANDS as LAZY_COMMANDS
from gitml.cli.main import cli

DOCS = Path(__file__).resolve().parent.parent / "docs"
HEADING = re.compile(r"^(#{1,6})\s+`?(gitml(?: [a-z][a-z-]*)*)`?\s*$", re.M)
MARKED = re.compile(r"^<!--\s*test\s*-->\n```(python|console)\n(.*?)^```$", re.M | re.S)


def walk(group: click.Group, path: tuple[str, ...] = ("gitml",)) -> list[tuple[str, click.Command]]:
    """Every command and subcommand under ``group`` as ``("gitml runs list", command)``."""
    ctx = click.Context(group, info_name=path[-1])
    found = []
    for name in group.list_commands(ctx):
        command = group.get_command(ctx, name)
        assert command is not None, f"{' '.join(path)} lists {name!r} but cannot load it"
        found.append((" ".join((*path, name)), command))
        if isinstance(command, click.Group):
            found.extend(walk(command, (*path, name)))
    return found


ALL_COMMANDS = walk(cli)


def cli_sections() -> dict[str, str]:
    """docs/cli.md split at its command headings: ``{"gitml runs list": section text}``."""
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    heads = list(HEADING.finditer(text))
    return {
        head.group(2): text[head.end() : heads[i + 1].start() if i + 1 < len(heads) else len(text)]
        for i, head in enumerate(heads)
    }


def test_the_walk_loads_every_lazy_command():
    names = {name for name, _ in ALL_COMMANDS}
    assert {f"gitml {name}" for name in LAZY_COMMANDS} <= names
    assert {"gitml commit-run", "gitml runs list", "gitml index rebuild"} <= names


@pytest.mark.parametrize("name, command", ALL_COMMANDS, ids=[name for name, _ in ALL_COMMANDS])
def test_every_command_has_help_and_a_section_in_cli_md(name, command):
    assert (command.help or "").strip(), f"{name} has no help text"
    sections = cli_sections()
    assert name in sections, f"docs/cli.md has no heading for `{name}`"
    section = sections[name]
    for param in command.params:
        if isinstance(param, click.Option):
            spelled = [opt for opt in param.opts if opt in section]
            assert spelled, f"docs/cli.md, `{name}`: option {'/'.join(param.opts)} is not documented"
        elif isinstance(param, click.Argument):
            assert param.name.upper() in section, f"docs/cli.md, `{name}`: argument {param.name.upper()}"


def test_global_options_are_documented():
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    for param in cli.params:
        assert any(opt in text for opt in param.opts), f"global option {param.opts} not in docs/cli.md"


@pytest.mark.parametrize("name", gitml.__all__)
def test_every_public_name_is_in_tracking_md(name):
    text = (DOCS / "tracking.md").read_text(encoding="utf-8")
    assert re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text), f"gitml.{name} is not in docs/tracking.md"


@pytest.mark.parametrize("name", gitml.artifacts.__all__)
def test_every_artifacts_api_name_is_in_artifacts_md(name):
    text = (DOCS / "artifacts.md").read_text(encoding="utf-8")
    assert re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text), f"gitml.artifacts.{name} is not in docs/artifacts.md"


WORKSPACE_API = ["open_workspace", "resolve_run", "runs_at", "resolve_uri", "registry_state", "model_state",
                 "model_version", "referenced_objects", "manifest", "active_objects", "remotes", "remote", "index",
                 "config", "runs_tip", "rev_parse", "merge_base", "is_ancestor", "rev_list", "fetch", "push",
                 "ls_remote_tags", "config_set", "move_ref", "attempts"]


@pytest.mark.parametrize("name", WORKSPACE_API)
def test_every_workspace_api_name_is_in_workspace_md(name):
    from gitml.core import cas, gitrepo, workspace

    assert any(hasattr(module, name) for module in (workspace, workspace.Workspace, gitrepo.GitRepo, cas))
    text = (DOCS / "workspace.md").read_text(encoding="utf-8")
    assert re.search(rf"(?<!\w){re.escape(name)}(?!\w)", text), f"{name} is not in docs/workspace.md"


def test_every_index_question_is_in_workspace_md():
    from gitml.core.index import Index

    text = (DOCS / "workspace.md").read_text(encoding="utf-8")
    names = [name for name in vars(Index) if not name.startswith("_") and name != "conn"]
    missing = [name for name in names if not re.search(rf"`(?:[^`]*\W)?{re.escape(name)}\(", text)]
    assert names and missing == [], f"Index methods not in docs/workspace.md: {missing}"


@dataclass
class Example:
    kind: str
    line: int
    code: str
    page: str = "docs/tracking.md"

    @property
    def where(self) -> str:
        return f"{self.page}:{self.line}"


def marked_examples(path: Path, text: str | None = None) -> list[Example]:
    """The ``<!-- test -->`` blocks of a page (of ``text`` when given, as if it were the page)."""
    text = path.read_text(encoding="utf-8") if text is None else text
    page = path.relative_to(DOCS.parent).as_posix()
    return [
        Example(m.group(1), text.count("\n", 0, m.start(2)) + 1, m.group(2), page) for m in MARKED.finditer(text)
    ]


EXITS = re.compile(r"#\s*exits\s+(\d+)\s*$")


HEREDOC = re.compile(r"<<-?\s*(['\"]?)(\w+)\1")


@dataclass
class Step:
    """One ``$ `` command of a console block, the output lines shown under it, its expected exit."""

    command: str
    shown: list[str]
    where: str = ""  # page:line of its block, when steps of several blocks run as one session

    @property
    def expected_exit(self) -> int | None:
        """N for a command ending in ``# exits N``; None for an ordinary command (exit 0, quiet stderr)."""
        m = EXITS.search(self.command.splitlines()[-1])
        return int(m.group(1)) if m else None


def console_steps(block: str) -> list[Step]:
    """The ``$ `` commands of a console block with their shown output; continuations and here-documents joined."""
    steps: list[Step] = []
    continued = False
    heredoc_end = None
    for line in block.splitlines():
        if heredoc_end is not None:
            steps[-1].command += "\n" + line
            if line.strip() == heredoc_end:
                heredoc_end = None
            continue
        if continued:
            steps[-1].command += "\n" + line
        elif line.startswith("$ "):
            steps.append(Step(line[2:], []))
        elif steps:
            steps[-1].shown.append(line)
            continue
        else:
            continue
        continued = line.endswith("\\")
        heredoc = None if continued else HEREDOC.search(line)
        heredoc_end = heredoc.group(2) if heredoc else None
    return steps


def console_commands(block: str) -> list[str]:
    """The ``$ `` commands of a console block, backslash continuations joined; output dropped."""
    return [step.command for step in console_steps(block)]


def shims(directory: Path) -> str:
    """A PATH whose ``gitml`` and ``python`` are this interpreter's, ahead of everything else."""
    directory.mkdir()
    for name, run in (("gitml", f'"{sys.executable}" -m gitml'), ("python", f'"{sys.executable}"')):
        shim = directory / name
        shim.write_text(f'#!/bin/sh\nexec {run} "$@"\n')
        shim.chmod(0o755)
    return f"{directory}:{os.environ.get('PATH', '')}"


def run_console(example: Example, cwd: Path, path_env: str, capture: Path) -> None:
    steps = console_steps(example.code)
    assert steps, f"{example.where}: a marked console block without `$ ` lines"
    for step in steps:
        step.where = example.where
    run_session(steps, cwd, path_env, capture)


def run_session(steps: list[Step], cwd: Path, path_env: str, capture: Path) -> None:
    """Run ``steps`` in one bash process from ``cwd``; fail naming the step that broke the rules."""
    capture.mkdir(parents=True, exist_ok=True)
    script = []
    for number, step in enumerate(steps):
        expected = step.expected_exit
        if expected is None:
            script.append(step.command)
            script.append(f'__rc=$?; if [ "$__rc" -ne 0 ]; then echo "@@failed {number} $__rc" >&2; exit 99; fi')
        else:  # its stderr is allowed: keep it (and stdout) aside, check the exit status here
            out, err = (shlex.quote(str(capture / f"{number}.{kind}")) for kind in ("out", "err"))
            script.append(f"{{ {step.command}\n}} >{out} 2>{err}")
            script.append(f'__rc=$?; cat {out}; if [ "$__rc" -ne {expected} ]; then '
                          f'echo "@@failed {number} $__rc" >&2; cat {err} >&2; exit 99; fi')
    env = {**os.environ, "PATH": path_env}
    proc = subprocess.run(["bash", "-c", "\n".join(script)], cwd=cwd, env=env, capture_output=True, text=True)
    failed = re.search(r"@@failed (\d+) (\d+)", proc.stderr)
    where = " ".join(dict.fromkeys(step.where for step in steps))
    if failed:
        step, code = steps[int(failed.group(1))], failed.group(2)
        wanted = "" if step.expected_exit is None else f" (expected {step.expected_exit})"
        pytest.fail(f"{step.where}: `$ {step.command}` exited {code}{wanted}\n"
                    f"stdout:\n{proc.stdout}\nstderr:\n{proc.stderr}")
    assert proc.returncode == 0, f"{where}: bash exited {proc.returncode}\n{proc.stderr}"
    assert proc.stderr == "", f"{where}: a successful command wrote to stderr:\n{proc.stderr}"
    for number, step in enumerate(steps):
        if step.expected_exit is None:
            continue
        said = "".join((capture / f"{number}.{kind}").read_text() for kind in ("out", "err")).splitlines()
        for line in step.shown:
            if line.startswith("gitml:"):
                assert any(re.fullmatch(message_pattern(line), it) for it in said), \
                    f"{step.where}: `$ {step.command}` did not say {line!r}; it said:\n" + "\n".join(said)


ID = re.compile(r"\b(?=[0-9a-f]*[0-9])[0-9a-f]{7,40}\b")


def message_pattern(shown: str) -> str:
    """A regex for a shown ``gitml:`` line: word for word, except that a run id or commit (7 to 40 hex
    digits) stands for any of its length, since ids differ from one machine to the next."""
    return ID.sub(lambda m: f"[0-9a-f]{{{len(m.group())}}}", re.escape(shown))


@pytest.mark.parametrize("page", ["tracking.md", "artifacts.md", "diff.md", "registry.md", "sync.md",
                                  "security.md", "workspace.md", "models.md", "projects.md", "ui.md"])
def test_marked_examples_run(page, repo, monkeypatch, tmp_path):
    examples = marked_examples(DOCS / page)
    kinds = {example.kind for example in examples}
    assert kinds == {"python", "console"}, f"docs/{page} should have marked python and console examples"
    monkeypatch.chdir(repo)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    path_env = shims(tmp_path / "bin")
    monkeypatch.setenv("PATH", path_env)  # git hooks run from Python examples find this gitml too
    namespace: dict = {"__name__": "__docs__"}
    try:
        for example in examples:
            if example.kind == "python":
                exec(compile(example.code, example.where, "exec"), namespace)
            else:
                run_console(example, repo, path_env, tmp_path / "console" / str(example.line))
    finally:
        while gitml.active_run() is not None:  # never leak an active run into other tests
            gitml.end_run("KILLED")


README = DOCS.parent / "README.md"


def readme_session(text: str) -> list[Step]:
    """The README tour as one shell session: its first line's ``gitml demo``, then its marked blocks."""
    first = re.search(r"^```console\n(.*?)^```$", text, re.M | re.S)
    install = console_commands(first.group(1))[0] if first else ""
    demo = install.split("#")[0].split("&&")[-1].strip()
    assert demo == "gitml demo", f"README.md's first command should end in `gitml demo`: {install!r}"
    steps = [Step(demo, [], f"README.md:{text.count(chr(10), 0, first.start(1)) + 1 if first else 1}")]
    for example in marked_examples(README, text):
        if example.kind == "python":  # a script: run where the session is, by the python on PATH
            steps.append(Step(f"python - <<'__README_PY__'\n{example.code}__README_PY__", [], example.where))
        else:
            block = console_steps(example.code)
            assert block, f"{example.where}: a marked console block without `$ ` lines"
            steps += [Step(step.command, step.shown, example.where) for step in block]
    return steps


def test_readme_tour_runs_as_written(monkeypatch, tmp_path):
    steps = readme_session(README.read_text(encoding="utf-8"))
    commands = [step.command for step in steps]
    assert commands[0] == "gitml demo" and "cd gitml-demo" in commands, "the tour starts in the demo it made"
    fixed = [c for c in commands if re.search(r"\b(?=[0-9a-f]*[0-9])(?=[0-9a-f]*[a-f])[0-9a-f]{4,32}\b", c)]
    assert not fixed, f"a tour command names a fixed run id, which differs on the reader's machine: {fixed}"
    assert any(step.command.startswith("python - <<") for step in steps), "the tour's Python blocks run too"
    start = tmp_path / "tour"
    start.mkdir()
    monkeypatch.chdir(start)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    path_env = shims(tmp_path / "bin")
    monkeypatch.setenv("PATH", path_env)
    run_session(steps, start, path_env, tmp_path / "console")
    assert (start / "gitml-demo" / ".git").is_dir() and (start / "colleague").is_dir()


def test_readme_tour_starts_from_its_first_line():
    steps = readme_session("```console\n$ pip install -e '.[dev]' && gitml demo    # install\n```\n")
    assert [(s.command, s.where) for s in steps] == [("gitml demo", "README.md:2")]
    with pytest.raises(AssertionError, match="should end in `gitml demo`"):
        readme_session("```console\n$ pip install gitml\n```\n")


def test_a_shown_message_matches_word_for_word_but_for_its_ids():
    shown = "gitml: warning: run 071dcf6a was made from a dirty work tree (commit ef7653c)"
    pattern = message_pattern(shown)
    assert re.fullmatch(pattern, "gitml: warning: run 47d25a34 was made from a dirty work tree (commit 0a1b2c3)")
    assert not re.fullmatch(pattern, "gitml: warning: run 47d25a3 was made from a dirty work tree (commit 0a1b2c3)")
    assert not re.fullmatch(pattern, "gitml: warning: run 47d25a34 was made from a clean work tree (commit 0a1b2c3)")
    assert re.fullmatch(message_pattern("gitml: error: 2 runs (deadbeef? no) [x]"), "gitml: error: 2 runs (deadbeef? no) [x]")


def test_console_steps_keep_here_documents_in_the_command():
    block = "$ cat > a.yaml <<'EOF'\nx: 1\n$ not a command\nEOF\n$ cat a.yaml\nx: 1\n"
    steps = console_steps(block)
    assert [s.command for s in steps] == ["cat > a.yaml <<'EOF'\nx: 1\n$ not a command\nEOF", "cat a.yaml"]
    assert steps[0].shown == [] and steps[1].shown == ["x: 1"]


@pytest.mark.parametrize(
    "page",
    ["README.md", "docs/index.md", "docs/tracking.md", "docs/artifacts.md", "docs/diff.md", "docs/registry.md",
     "docs/sync.md", "docs/cli.md", "docs/formats.md", "docs/security.md", "docs/workspace.md", "docs/models.md",
     "docs/projects.md"],
)
def test_relative_links_point_at_files(page):
    path = DOCS.parent / page
    for target in re.findall(r"\]\(([^)#:\s]+)(?:#[^)]*)?\)", path.read_text(encoding="utf-8")):
        assert (path.parent / target).exists(), f"{page} links to missing {target}"


def test_console_commands_are_parsed_with_continuations():
    block = "$ gitml runs list \\\n    -n 3\nid  name\n$ echo done\ndone\n"
    assert console_commands(block) == ["gitml runs list \\\n    -n 3", "echo done"]


def test_console_steps_keep_shown_output_and_expected_exits():
    block = "$ git push origin main   # exits 1\ngitml: pre-push: push blocked\n$ echo ok\nok\n"
    steps = console_steps(block)
    assert [s.command for s in steps] == ["git push origin main   # exits 1", "echo ok"]
    assert steps[0].shown == ["gitml: pre-push: push blocked"] and steps[0].expected_exit == 1
    assert steps[1].expected_exit is None


# -- every API name the docs write is reachable as written (issue 11, item 7) ---------------------

API_NAME = re.compile(r"(?<![\w./-])gitml(?:\.[A-Za-z_]\w*)+")  # not in a file name (RESULTS-ui-gitml.md)
NOT_PYTHON = {"yaml", "defaultRemote", "model_flavors"}  # gitml.yaml is a file; gitml.defaultRemote a git config key; gitml.model_flavors an entry-point group
IMPORT = re.compile(r"^\s*(from\s+gitml(?:\.\w+)*\s+import\s+[\w, ]+|import\s+gitml(?:\.\w+)*(?:\s*,\s*gitml(?:\.\w+)*)*)\s*(?:#.*)?$",
                    re.M)


@dataclass(frozen=True)
class ApiUse:
    """A ``gitml.…`` name as a page writes it, and the parameter names it gives it."""

    where: str
    name: str
    keywords: tuple[str, ...] = ()  # names written as `name=`
    parameters: tuple[str, ...] = ()  # placeholders a signature writes positionally


def _code(text: str) -> list[tuple[str, str]]:
    """``(kind, code)`` for every fenced block (kind: its language) and inline code span (kind: ``inline``)."""
    found = []
    fences = re.compile(r"^```(\w*)\n(.*?)^```", re.M | re.S)
    for block in fences.finditer(text):
        found.append((block.group(1) or "text", block.group(2)))
    for span in re.finditer(r"`([^`\n]+)`", fences.sub("", text)):
        found.append(("inline", span.group(1)))
    return found


def _call_text(code: str, start: int) -> str | None:
    """The call written at ``code[start:]`` (``name(...)``, brackets balanced), or None if not a call."""
    depth, i = 0, start
    while i < len(code) and (code[i].isalnum() or code[i] in "._"):
        i += 1
    if i >= len(code) or code[i] != "(":
        return None
    for j in range(i, len(code)):
        depth += {"(": 1, ")": -1}.get(code[j], 0)
        if depth == 0:
            return code[start : j + 1]
    return None


def _arguments(call: str, signature: bool) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The keyword names of a call, and (for a signature) its positional placeholders."""
    import ast

    try:
        node = ast.parse(call, mode="eval").body
    except SyntaxError:
        return (), ()
    keywords = tuple(k.arg for k in node.keywords if k.arg)
    placeholders = tuple(a.id for a in node.args if isinstance(a, ast.Name)) if signature else ()
    return keywords, placeholders


def documented_api() -> list[ApiUse]:
    """Every ``gitml.x`` and ``gitml.x.y(...)`` in the code of docs/*.md and README.md."""
    uses = []
    for page in [*sorted(DOCS.glob("*.md")), DOCS.parent / "README.md"]:
        for kind, code in _code(page.read_text(encoding="utf-8")):
            if kind not in ("python", "inline", "text", "py"):
                continue  # console blocks run commands, not Python
            for match in API_NAME.finditer(code):
                if match.group(0).split(".")[1] in NOT_PYTHON:
                    continue
                call = _call_text(code, match.start())
                # In a signature (an inline span or a plain block) bare names are the parameters;
                # in Python they are the example's variables.
                keywords, parameters = _arguments(call, kind != "python") if call else ((), ())
                uses.append(ApiUse(page.name, match.group(0), keywords, parameters))
    return uses


def documented_imports() -> list[tuple[str, str]]:
    """``(page, statement)`` for every ``import gitml…`` and ``from gitml… import …`` in a Python example."""
    found = []
    for page in [*sorted(DOCS.glob("*.md")), DOCS.parent / "README.md"]:
        for kind, code in _code(page.read_text(encoding="utf-8")):
            if kind == "python" or (kind == "inline" and IMPORT.fullmatch(code)):
                found += [(page.name, m.group(1).strip()) for m in IMPORT.finditer(code)]
    return sorted(set(found))


# Run in a fresh interpreter: in this one, whatever another test imported is an attribute already.
REACH = r'''
import importlib, inspect, json, sys
import gitml
fresh = set(vars(gitml))

def step(obj, attr, first):
    if first and attr not in fresh:  # only what `import gitml` itself gives, or its lazy names
        return gitml.__getattr__(attr)
    return getattr(obj, attr)

def qualified(name):
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:]:
            obj = getattr(obj, attr)
        return obj

problems = []
for where, name, keywords, parameters in json.loads(sys.stdin.read())["uses"]:
    parts = name.split(".")[1:]
    try:
        obj = gitml
        for i, attr in enumerate(parts):
            obj = step(obj, attr, i == 0)
    except AttributeError as exc:
        # A module named in full (gitml.artifacts.transfer), or a name three deep in one
        # (gitml.core.workspace.open_workspace), is reachable by importing that module.
        deep = len(parts) >= 3 or importlib.util.find_spec(name) is not None
        obj = qualified(name) if deep else None
        if obj is None:
            problems.append(f"{where}: {name} after `import gitml`: {exc}")
            continue
    if keywords or parameters:
        try:
            accepted = inspect.signature(obj).parameters
        except (TypeError, ValueError):
            continue
        if any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
            continue
        for given in (*keywords, *(p.lower() for p in parameters)):
            if given not in accepted:
                problems.append(f"{where}: {name}(... {given} ...): it takes ({', '.join(accepted)})")
print(json.dumps(problems))
'''

IMPORTS = r'''
import json, sys
problems = []
for where, statement in json.loads(sys.stdin.read()):
    try:
        exec(statement, {})
    except Exception as exc:
        problems.append(f"{where}: {statement}: {type(exc).__name__}: {exc}")
print(json.dumps(problems))
'''


def _fresh(script: str, payload) -> list[str]:
    import json

    proc = subprocess.run([sys.executable, "-c", script], input=json.dumps(payload), capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_the_docs_api_walk_finds_what_the_docs_write():
    names = {use.name for use in documented_api()}
    assert {"gitml.sync.push", "gitml.hooks.install", "gitml.artifacts.push", "gitml.registry.which",
            "gitml.errors.GateFailedError", "gitml.start_run", "gitml.core.workspace.open_workspace"} <= names
    assert not names & {"gitml.yaml", "gitml.defaultRemote"}
    push = next(use for use in documented_api() if use.name == "gitml.sync.push" and use.keywords)
    assert push.keywords == ("remote", "artifacts_remote")
    assert ("sync.md", "from gitml import hooks, registry, sync") in documented_imports()


def test_every_api_name_the_docs_write_is_reachable_as_written():
    uses = [[u.where, u.name, list(u.keywords), list(u.parameters)] for u in documented_api()]
    assert _fresh(REACH, {"uses": uses}) == []


def test_every_import_the_docs_write_works_in_a_fresh_interpreter():
    assert _fresh(IMPORTS, documented_imports()) == []


def test_a_name_the_package_lacks_is_reported_with_its_page():
    uses = [["x.md", "gitml.sync.shove", [], []], ["x.md", "gitml.nothing", [], []],
            ["x.md", "gitml.sync.push", ["force"], []], ["x.md", "gitml.registry.which", [], ["REF"]]]
    problems = _fresh(REACH, {"uses": uses})
    assert problems[0] == "x.md: gitml.sync.shove after `import gitml`: module 'gitml.sync' has no attribute 'shove'"
    assert problems[1] == "x.md: gitml.nothing after `import gitml`: module 'gitml' has no attribute 'nothing'"
    assert problems[2] == "x.md: gitml.sync.push(... force ...): it takes (remote, artifacts_remote, repo)"
    assert len(problems) == 3  # which(REF): the placeholder is its `ref`


def test_dir_shows_the_public_api_before_anything_is_imported():
    script = ("import gitml, gitml.artifacts as a, json; "
              "print(json.dumps([dir(gitml), dir(a), sorted(gitml.__all__), sorted(a.__all__)]))")
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True)
    import json

    top, artifacts, top_all, artifacts_all = json.loads(proc.stdout)
    assert set(top_all) <= set(top) and set(artifacts_all) == set(artifacts)
    assert {"sync", "hooks", "registry", "artifacts", "errors", "diff", "start_run", "search_runs"} <= set(top)
    assert {"push", "pull", "download", "ls", "verify", "gc", "add_remote", "list_remotes"} <= set(artifacts)
    assert all(not name.startswith("_") or name == "__version__" for name in top)
