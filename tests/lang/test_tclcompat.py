"""The differential test: the same scripts through tclsh 8.6 and through sched, compared.

The corpus (tests/lang/tclcompat/): `oneliners.tcl` (one script a line), `scripts/*.tcl`
(whole scripts, each run with `source`), and the one-liners `generate.py` makes (expressions,
list quoting, string commands, control flow). Every item runs inside `catch` in one tclsh and
in one sched process; for each, the completion code, the result and what it printed must be
the same. An item may differ only if it is tagged with a difference that docs/language.md
lists under "Differences from Tcl" (`;# differs: ID` at the end of a one-liner, a line
`# differs: ID` in a script); a tagged item that no longer differs fails too, so that the tags
stay true.

tclsh comes from Debian's tcl8.6 (scripts/setup installs it when missing); without it the
test is skipped and says why.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

HERE = Path(__file__).parent / "tclcompat"
DOCS = Path(__file__).parents[2] / "docs" / "language.md"
sys.path.insert(0, str(HERE))
from generate import generated  # noqa: E402

TCLSH = shutil.which("tclsh8.6") or shutil.which("tclsh")
SCHED = Path(sys.executable).parent / "sched"
# Differences that docs/language.md lists and that would show in many generated items: what
# sched adds to its answer there, taken out before comparing (the key is the difference's id).
NORMALISE = {
    "expr-error-context": (re.compile(r' in expression "(?:[^"\\]|\\.)*"'), ""),
}
TAG = re.compile(r"(?:;\s*)?#\s*differs:\s*([\w-]+)\s*$", re.M)


@dataclass
class Item:
    name: str  # where it comes from, for the report
    script: str  # what runs inside catch
    tag: str | None


def corpus() -> list[Item]:
    items: list[Item] = []
    for n, line in enumerate((HERE / "oneliners.tcl").read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        m = TAG.search(line)
        script = line[:m.start()].rstrip() if m else line
        items.append(Item(f"oneliners.tcl:{n}", script, m.group(1) if m else None))
    for path in sorted((HERE / "scripts").glob("*.tcl")):
        m = TAG.search(path.read_text(encoding="utf-8"))
        items.append(Item(f"scripts/{path.name}", f"source {path}", m.group(1) if m else None))
    for n, script in enumerate(generated(), 1):
        items.append(Item(f"generated #{n}", script, None))
    return items


def driver(items: list[Item]) -> str:
    """One script that runs every item in catch, with marks around what each one prints."""
    lines = []
    for i, item in enumerate(items):
        lines.append(f'puts "@@begin {i}"')
        lines.append(f"set __code [catch {{{item.script}\n}} __result]")
        lines.append(f'puts "@@{i} $__code"; puts $__result')
    return "\n".join(lines) + "\n"


SECTION = re.compile(r"^@@begin (\d+)\n(.*?)^@@\1 (-?\d+)\n(.*?)(?=^@@begin |\Z)", re.M | re.S)


def outcomes(output: str, normalise: bool = False) -> dict[int, str]:
    """Item index -> its completion code, what it printed and its result (with the
    documented differences in NORMALISE taken out of sched's output)."""
    if normalise:
        for pattern, replacement in NORMALISE.values():
            output = pattern.sub(replacement, output)
    return {int(m.group(1)): f"code {m.group(3)}, printed {m.group(2)!r}, result {m.group(4)!r}"
            for m in SECTION.finditer(output)}


def run(program: list[str], text: str, tmp_path: Path, name: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    done = subprocess.run([*program, str(path)], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          encoding="utf-8", errors="replace")
    return done.stdout


def documented_differences() -> set[str]:
    text = DOCS.read_text(encoding="utf-8")
    section = text.split("## Differences from Tcl", 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([\w-]+)` \|", section, re.M))


def test_corpus_is_large_enough():
    assert len(corpus()) >= 300


def test_tags_name_documented_differences():
    known = documented_differences()
    unknown = {item.tag for item in corpus() if item.tag and item.tag not in known} | (set(NORMALISE) - known)
    assert not unknown, f"tags not listed in docs/language.md's Differences from Tcl: {sorted(unknown)}"


@pytest.mark.skipif(TCLSH is None, reason="tclsh is not installed (scripts/setup installs Debian's tcl8.6)")
def test_sched_answers_as_tclsh_does(tmp_path):
    items = corpus()
    text = driver(items)
    tcl = outcomes(run([TCLSH], text, tmp_path, "driver.tcl"))
    ours = outcomes(run([str(SCHED)], text, tmp_path, "driver.sched"), normalise=True)
    problems = []
    for i, item in enumerate(items):
        want, got = tcl.get(i, "(no output: tclsh stopped before it)"), ours.get(i, "(no output: sched stopped before it)")
        if want != got and item.tag is None:
            problems.append(f"{item.name}: {item.script}\n  tclsh: {want!r}\n  sched: {got!r}")
        elif want == got and item.tag is not None:
            problems.append(f"{item.name}: tagged `{item.tag}` but sched now answers as tclsh does: drop the tag")
    assert not problems, f"{len(problems)} of {len(items)} items differ:\n" + "\n".join(problems)


if __name__ == "__main__":  # print the items that differ, with both answers
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        items = corpus()
        text = driver(items)
        tcl = outcomes(run([TCLSH], text, Path(tmp), "driver.tcl"))
        ours = outcomes(run([str(SCHED)], text, Path(tmp), "driver.sched"), normalise=True)
        for i, item in enumerate(items):
            if tcl.get(i) != ours.get(i):
                print(f"{item.name} [{item.tag}]: {item.script}\n  tclsh: {tcl.get(i)!r}\n  sched: {ours.get(i)!r}")
        print(len(items), "items")
