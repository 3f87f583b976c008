"""The layers of sched/ and what importing them costs.

- psched is three layers imported one way, shell -> scheduler -> lang: a module of a layer
  imports no module of a layer above it, and a language command module (psched.lang.commands.*)
  imports the core of the language, never a sibling command module. Read from the source with
  `ast`, imports inside functions included.
- No import circles among psched's modules (module-level imports, as Python runs them).
- A project import inside a function says why beside it (a comment, or its function's docstring).
- `import psched` and `sched -c` load neither the controller daemon nor sqlite3 nor the agent;
  pcontrol's client face is importable alone.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

SCHED = Path(__file__).resolve().parent.parent / "sched"
LAYERS = {"lang": 0, "scheduler": 1, "shell": 2}
PROJECT = ("psched", "pcontrol", "pclient")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SCHED).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(["psched", *parts])


GENERATED = (SCHED / "lang" / "grammar" / "lalr.py",)
"""lark's code, not ours (scripts/gentables makes it): its imports are lark's own."""


def _modules() -> dict[str, tuple[Path, ast.Module]]:
    return {_module_name(p): (p, ast.parse(p.read_text(), str(p))) for p in sorted(SCHED.rglob("*.py"))
            if p not in GENERATED}


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _imports(module: str, path: Path, tree: ast.AST) -> list[tuple[str, int]]:
    """(imported module, line) for every import in the tree, relative ones resolved.

    `from X import name` counts as importing X.name when that is a module of psched.
    """
    package = module.split(".") if _is_package(path) else module.split(".")[:-1]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((target, node.lineno))
            found += [(f"{target}.{alias.name}", node.lineno) for alias in node.names]
    return found


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "psched" and parts[1] in LAYERS else None


def test_layers_import_one_way():
    modules = _modules()
    wrong = []
    for module, (path, tree) in modules.items():
        layer = _layer(module)
        if layer is None:
            continue  # psched/__init__ and __main__ sit above the layers
        for target, line in _imports(module, path, tree):
            other = _layer(target)
            if other is not None and LAYERS[other] > LAYERS[layer]:
                wrong.append(f"{path.relative_to(SCHED.parent)}:{line}: {module} ({layer}) imports {target} ({other})")
    assert not wrong, "imports against the layers (shell -> scheduler -> lang):\n" + "\n".join(wrong)


def test_language_commands_see_the_core_only():
    family = "psched.lang.commands"
    modules = _modules()
    wrong = []
    for module, (path, tree) in modules.items():
        if not module.startswith(family + ".") or _is_package(path):
            continue
        for target, line in _imports(module, path, tree):
            if target.startswith(family + ".") and target in modules and target != module:
                wrong.append(f"{path.relative_to(SCHED.parent)}:{line}: {module} imports its sibling {target}")
    assert not wrong, "a language command module imports only the core of the language:\n" + "\n".join(wrong)


def _module_level_imports(module: str, path: Path, tree: ast.Module) -> set[str]:
    """Imports Python runs when the module loads: not inside functions, not under TYPE_CHECKING."""

    def runs_at_load(body: list[ast.stmt]):
        for stmt in body:
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            if isinstance(stmt, ast.If) and "TYPE_CHECKING" in ast.unparse(stmt.test):
                continue
            yield stmt
            for field in ("body", "orelse", "finalbody"):
                inner = getattr(stmt, field, None)
                if isinstance(inner, list):
                    yield from runs_at_load(inner)
            for handler in getattr(stmt, "handlers", None) or []:
                yield from runs_at_load(handler.body)

    holder = ast.Module(body=[s for s in runs_at_load(tree.body) if isinstance(s, (ast.Import, ast.ImportFrom))],
                        type_ignores=[])
    return {target for target, _ in _imports(module, path, holder)}


def test_no_import_circles():
    modules = _modules()
    graph = {m: {t for t in _module_level_imports(m, p, tree) if t in modules and t != m}
             for m, (p, tree) in modules.items()}
    # a package's __init__ importing its own children is how a package loads, not a circle
    for m in graph:
        if _is_package(modules[m][0]):
            graph[m] = {t for t in graph[m] if not t.startswith(m + ".")}
    state: dict[str, int] = {}
    stack: list[str] = []
    circles: list[str] = []

    def walk(m: str) -> None:
        state[m] = 1
        stack.append(m)
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                circles.append(" -> ".join(stack[stack.index(t):] + [t]))
            elif t not in state:
                walk(t)
        stack.pop()
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            walk(m)
    assert not circles, "import circles in sched/:\n" + "\n".join(circles)


def test_imports_inside_functions_say_why():
    silent = []
    for module, (path, tree) in _modules().items():
        lines = path.read_text().splitlines()
        for fn in ast.walk(tree):
            if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            doc = ast.get_docstring(fn) or ""
            for node in ast.walk(fn):
                if isinstance(node, ast.ImportFrom):
                    ours = node.level > 0 or (node.module or "").startswith(PROJECT)
                elif isinstance(node, ast.Import):
                    ours = any(alias.name.startswith(PROJECT) for alias in node.names)
                else:
                    continue
                if not ours:
                    continue
                near = lines[max(0, node.lineno - 4): node.lineno]
                if not any("#" in line for line in near) and "import" not in doc:
                    silent.append(f"{path.relative_to(SCHED.parent)}:{node.lineno}: {lines[node.lineno - 1].strip()}")
    assert not silent, "project imports inside functions without their reason beside them:\n" + "\n".join(silent)


HEAVY = ("pcontrol.daemon", "pcontrol.journal", "pcontrol.controller", "pcontrol.agentlink", "pclient.agent",
         "sqlite3")


def _loaded_after(code: str) -> list[str]:
    probe = f"{code}\nimport sys\nprint(' '.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return out.stdout.split()


@pytest.mark.parametrize("code", [
    "import psched",
    "from psched.shell.cli import main; assert main(['-c', 'set x 1']) == 0",
    "import pcontrol.client, pcontrol.wire, pcontrol.errors, pcontrol.paths, pcontrol.secret, pcontrol.address",
], ids=["import psched", "sched -c", "pcontrol's client face"])
def test_the_client_side_does_not_load_the_daemon(code):
    assert _loaded_after(code) == []
