"""Every documented snippet runs as written.

Each page (README.md, docs/*.md) is one test: its fenced ```python blocks run in
order in one shared namespace, like a notebook (a later block may use names an
earlier block on the same page defined), in a fresh temporary working directory
(snippets write `build/...`), with `$SCANAOT_CACHE` in a temporary folder.

A block runs statement by statement with the file's own line numbers, so a
failure names the page, the block (the line of its opening fence) and the line.
`print(...)` followed by a comment that looks like a value (`# [ 0.  1.  4.]`,
`# 42`, `# (3, 4)`, `# True`) checks the printed text against the comment
(whitespace-insensitive; `...` in the comment matches anything).

A block whose fence is ```python no-run is shown to readers but not run: kept
for what this machine cannot run (a GPU, the benchmark suite's optional peers).
Other fences (```sh, ```c, ...) are not run; the `scanaot ...` command lines in
```sh blocks are checked to parse with the CLI's own parser.
"""
from __future__ import annotations

import ast
import contextlib
import io
import re
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^(`{3,}|~{3,})\s*([^`\s]*)\s*(.*)$")
NO_RUN = "no-run"


@dataclass
class Block:
    lang: str       # "python", "sh", ... ("" for a bare fence)
    options: list[str]  # words after the language: "no-run"
    line: int       # 1-based line of the opening fence
    text: str


def blocks(page: Path) -> list[Block]:
    """The fenced blocks of a markdown page, in order."""
    found: list[Block] = []
    lines = page.read_text().splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, lang, rest = m.groups()
        start = i
        body: list[str] = []
        i += 1
        while i < len(lines) and not lines[i].startswith(fence):
            body.append(lines[i])
            i += 1
        found.append(Block(lang.lower(), rest.split(), start + 1, "\n".join(body) + "\n"))
        i += 1
    return found


def rel(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


PYTHON_PAGES = [p for p in PAGES if any(b.lang == "python" for b in blocks(p))]


# ---------------------------------------------------------------- expected output in comments
VALUE_COMMENT = re.compile(r"""^(?:[\[\(\{'"]|-?\d|True\b|False\b|None\b)""")


def expected_output(source_lines: list[str], stmt: ast.stmt) -> str | None:
    """The value a `print(...)  # value` statement's comment shows, if it shows one."""
    if not (isinstance(stmt, ast.Expr) and isinstance(stmt.value, ast.Call)
            and isinstance(stmt.value.func, ast.Name) and stmt.value.func.id == "print"):
        return None
    last = source_lines[stmt.end_lineno - 1]
    tail = last[stmt.end_col_offset:]
    m = re.match(r"\s*#\s?(.*)$", tail)
    if not m:
        return None
    comment = m.group(1).strip()
    return comment if VALUE_COMMENT.match(comment) else None


def output_matches(printed: str, expected: str) -> bool:
    norm = lambda s: " ".join(s.split())  # noqa: E731
    pattern = ".*?".join(re.escape(part) for part in norm(expected).split("..."))
    return re.fullmatch(pattern, norm(printed), re.S) is not None


class Tee(io.StringIO):
    """Captures what a statement prints and still passes it on (pytest shows it on failure)."""

    def __init__(self, out):
        super().__init__()
        self.out = out

    def write(self, s):
        self.out.write(s)
        return super().write(s)


def run_block(page: Path, block: Block, namespace: dict) -> None:
    name = rel(page)
    # pad so the compiled code carries the page's own line numbers
    source = "\n" * block.line + block.text
    source_lines = source.splitlines()
    where = f"{name}, block at line {block.line}"
    try:
        tree = ast.parse(source, filename=str(page))
    except SyntaxError as err:
        pytest.fail(f"{where}: not valid Python: {err}", pytrace=False)
    for stmt in tree.body:
        code = compile(ast.Module(body=[stmt], type_ignores=[]), str(page), "exec")
        tee = Tee(sys.stdout)
        try:
            with contextlib.redirect_stdout(tee):
                exec(code, namespace)
        except Exception as err:
            raise AssertionError(f"{where} (line {stmt.lineno}): {type(err).__name__}: {err}") from err
        expected = expected_output(source_lines, stmt)
        if expected is not None and not output_matches(tee.getvalue(), expected):
            pytest.fail(f"{where} (line {stmt.lineno}) printed\n{tee.getvalue().rstrip()}\n"
                        f"but the page's comment shows\n{expected}", pytrace=False)


@pytest.fixture(scope="module")
def doc_cache(tmp_path_factory):
    """One compile cache for the pages (they compile the same small functions)."""
    return tmp_path_factory.mktemp("scanaot-docs-cache")


@pytest.mark.parametrize("page", PYTHON_PAGES, ids=rel)
def test_page_snippets_run(page, tmp_path, doc_cache, monkeypatch):
    monkeypatch.setenv("SCANAOT_CACHE", str(doc_cache))
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    namespace: dict = {"__name__": "__docs__"}
    ran = 0
    for block in blocks(page):
        if block.lang != "python":
            continue
        if NO_RUN in block.options:
            continue
        run_block(page, block, namespace)
        ran += 1
    if not ran:
        pytest.skip(f"{rel(page)}: every python block is {NO_RUN}")


# ---------------------------------------------------------------- the harness itself
def test_expected_output_comments():
    src = "print(x)        # [ 0.  1.  4. ...]\nprint(y)  # the IR\nprint(z)\n"
    stmts = ast.parse(src).body
    lines = src.splitlines()
    assert expected_output(lines, stmts[0]) == "[ 0.  1.  4. ...]"
    assert expected_output(lines, stmts[1]) is None
    assert expected_output(lines, stmts[2]) is None
    assert output_matches("[ 0.  1.  4.  9. 16.]\n", "[ 0.  1.  4. ...]")
    assert not output_matches("[ 0.  2.  4.]\n", "[ 0.  1.  4. ...]")


def test_pages_have_snippets_and_no_run_is_rare():
    """The harness finds the snippets; skipping one needs a reason the page states."""
    assert PYTHON_PAGES, "no ```python blocks found"
    names = [rel(p) for p in PYTHON_PAGES]
    assert "README.md" in names
    no_run = [(rel(p), b.line) for p in PAGES for b in blocks(p)
              if b.lang == "python" and NO_RUN in b.options]
    # GPU-only pages and the benchmark suite's peers; add here only what cannot run on a CPU machine
    assert {page for page, _ in no_run} <= {"docs/cuda.md", "docs/benchmarks.md"}, no_run


# ---------------------------------------------------------------- documented command lines
def cli_commands():
    """Every `scanaot ...` command line in a ```sh block: (page, line, argv)."""
    found = []
    for page in PAGES:
        for block in blocks(page):
            if block.lang not in ("sh", "bash", "shell", "console"):
                continue
            for offset, line in enumerate(block.text.splitlines(), start=1):
                line = line.split(" #", 1)[0].strip()
                for command in re.split(r"&&|\|\||;|\|", line):
                    words = shlex.split(command)
                    if not words or Path(words[0]).name != "scanaot":
                        continue
                    # `[--short]`: an optional option, shown in brackets
                    argv = [w.strip("[]") for w in words[1:] if w.strip("[]")]
                    found.append(pytest.param(argv, id=f"{rel(page)}:{block.line + offset}"))
    return found


@pytest.mark.parametrize("argv", cli_commands())
def test_documented_cli_commands_parse(argv, capsys):
    from scanaot.tools.cli import build_parser

    try:
        args = build_parser().parse_args(argv)
    except SystemExit as done:  # --version prints and exits 0; a usage error exits 2
        assert done.code == 0, capsys.readouterr().err
        return
    assert callable(args.run)


def test_artifacts_model_file_compiles_with_the_cli(tmp_path, monkeypatch, capsys):
    """docs/artifacts.md's model file, saved as model.py, builds and inspects as its CLI block says."""
    from scanaot.tools.cli import main

    page = ROOT / "docs" / "artifacts.md"
    model = [b for b in blocks(page) if b.lang == "python" and "EXPORTS" in b.text]
    assert len(model) == 1, "docs/artifacts.md should show one model file (a block defining EXPORTS)"
    monkeypatch.setenv("SCANAOT_CACHE", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    (tmp_path / "model.py").write_text(model[0].text)
    assert main(["compile", "model.py", "-o", "build"]) == 0, capsys.readouterr().err
    assert main(["compile", "model.py:power", "-o", "build"]) == 0, capsys.readouterr().err
    assert (tmp_path / "build" / "libmodel.so").is_file() and (tmp_path / "build" / "libpower.so").is_file()
    capsys.readouterr()
    assert main(["inspect", "build/libmodel.so"]) == 0
    shown = capsys.readouterr().out
    assert "power" in shown and "total_vjp" in shown, shown
