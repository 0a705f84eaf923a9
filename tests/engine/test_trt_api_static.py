"""Static check: every ``trt.X`` / ``trt.X.Y`` chain in ``arcface_trt/`` exists in the real TensorRT API.

Rules (documented in ``arcface_trt/engine/trt_api.py``):

- The tensorrt module is bound to the name ``trt`` (and to whatever name an
  ``import tensorrt [as x]`` in the same file binds).
- A chain must exist in the recorded 10.16 or 11.4 module (members of classes and
  enum values count; dunder names such as ``__version__`` and ``__init__`` are not
  recorded and are allowed).
- A chain that exists in only one of the two versions must be *guarded*: it sits in
  the true branch of an ``if`` / ``while`` / conditional expression, or after an
  ``and`` operand, whose test contains ``hasattr(trt.X, "Y")`` (or
  ``hasattr(trt, "X")`` for a one-level chain) naming that same chain.
- ``hasattr(trt.X, "Y")`` and ``getattr(trt.X, "Y", default)`` are checks, not uses,
  but their names must still exist in at least one version (a misspelled guard
  would always be false).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

import pytest

from tests.support.paths import PACKAGE
from tests.support.tensorrt_api import load_reference

MODULE_NAMES = {"trt"}


@dataclass(frozen=True)
class Use:
    """One attribute chain on the tensorrt module."""

    file: str
    line: int
    chain: tuple[str, ...]
    #: hasattr/getattr-with-default: a check that needs no guard.
    check: bool
    guarded: bool

    @property
    def dotted(self) -> str:
        return "trt." + ".".join(self.chain)


_names = {"current": MODULE_NAMES}


def _module_names(tree: ast.AST) -> set[str]:
    """``trt`` plus the names ``import tensorrt [as x]`` binds in this file."""
    names = set(MODULE_NAMES)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.asname or a.name for a in node.names if a.name == "tensorrt")
    return names


def _is_module(node: ast.AST) -> bool:
    return isinstance(node, ast.Name) and node.id in _names["current"]


def _chain_of(node: ast.AST) -> tuple[str, ...] | None:
    """``trt.X`` -> (X,), ``trt.X.Y`` -> (X, Y); None for anything else."""
    if isinstance(node, ast.Attribute):
        if _is_module(node.value):
            return (node.attr,)
        if isinstance(node.value, ast.Attribute) and _is_module(node.value.value):
            return (node.value.attr, node.attr)
    return None


def _string_check(node: ast.AST) -> tuple[tuple[str, ...], bool] | None:
    """``hasattr(trt.X, "Y")`` -> ((X, Y), True); ``getattr(trt.X, "Y")`` (no default) -> ((X, Y), False)."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ("hasattr", "getattr")):
        return None
    if len(node.args) < 2 or not (isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str)):
        return None
    target, name = node.args[0], node.args[1].value
    if _is_module(target):
        chain: tuple[str, ...] = (name,)
    elif isinstance(target, ast.Attribute) and _is_module(target.value):
        chain = (target.attr, name)
    else:
        return None
    is_check = node.func.id == "hasattr" or len(node.args) == 3
    return chain, is_check


def _guards_in(test: ast.AST) -> set[tuple[str, ...]]:
    found = set()
    for node in ast.walk(test):
        checked = _string_check(node)
        if checked and checked[1] and isinstance(node.func, ast.Name) and node.func.id == "hasattr":
            found.add(checked[0])
    return found


def _parents(tree: ast.AST) -> dict[ast.AST, ast.AST]:
    return {child: parent for parent in ast.walk(tree) for child in ast.iter_child_nodes(parent)}


def _inside(node: ast.AST, roots: list[ast.AST]) -> bool:
    return any(node is r or any(node is n for n in ast.walk(r)) for r in roots)


def _is_guarded(node: ast.AST, chain: tuple[str, ...], parents: dict[ast.AST, ast.AST]) -> bool:
    child, parent = node, parents.get(node)
    while parent is not None:
        if isinstance(parent, ast.If | ast.While) and _inside(child, parent.body) and chain in _guards_in(parent.test):
            return True
        if isinstance(parent, ast.IfExp) and child is parent.body and chain in _guards_in(parent.test):
            return True
        if isinstance(parent, ast.BoolOp) and isinstance(parent.op, ast.And):
            index = next(i for i, v in enumerate(parent.values) if v is child)
            if any(chain in _guards_in(v) for v in parent.values[:index]):
                return True
        child, parent = parent, parents.get(parent)
    return False


def collect_uses(source: str, filename: str = "<source>") -> list[Use]:
    """Every tensorrt chain in ``source``."""
    tree = ast.parse(source, filename)
    _names["current"] = _module_names(tree)
    parents = _parents(tree)
    uses = []
    checked_nodes: set[int] = set()
    for node in ast.walk(tree):
        checked = _string_check(node)
        if checked:
            chain, is_check = checked
            guarded = is_check or _is_guarded(node, chain, parents)
            uses.append(Use(filename, node.lineno, chain, is_check, guarded))
            checked_nodes.add(id(node.args[0]))
            continue
        chain = _chain_of(node)
        if chain is None or id(node) in checked_nodes:
            continue
        # trt.X inside trt.X.Y is reported once, as the longer chain.
        parent = parents.get(node)
        if len(chain) == 1 and isinstance(parent, ast.Attribute) and parent.value is node:
            continue
        uses.append(Use(filename, node.lineno, chain, False, _is_guarded(node, chain, parents)))
    return uses


def exists(chain: tuple[str, ...], module: dict) -> bool:
    """Is ``chain`` a name of the recorded module?"""
    head = chain[0]
    if head.startswith("__") and head.endswith("__"):
        return True
    if head not in module:
        return False
    if len(chain) == 1:
        return True
    name = chain[1]
    if name.startswith("__") and name.endswith("__"):
        return True
    record = module[head]
    return name in record.get("members", {}) or name in (record.get("enum") or [])


def problems_in(uses: list[Use], ten: dict, eleven: dict) -> list[str]:
    """Rule violations, one line each."""
    out = []
    for use in uses:
        in10, in11 = exists(use.chain, ten), exists(use.chain, eleven)
        where = f"{use.file}:{use.line}: {use.dotted}"
        if not in10 and not in11:
            out.append(f"{where} exists in neither TensorRT 10.16 nor 11.4")
        elif in10 != in11 and not use.guarded:
            only = "10.16" if in10 else "11.4"
            out.append(f"{where} exists only in TensorRT {only} and is used without a hasattr guard on that name")
    return out


@pytest.fixture(scope="module")
def references() -> tuple[dict, dict]:
    return load_reference("10"), load_reference("11")


def package_uses() -> list[Use]:
    uses = []
    for path in sorted(PACKAGE.rglob("*.py")):
        uses += collect_uses(path.read_text(encoding="utf-8"), str(path.relative_to(PACKAGE.parent)))
    return uses


def test_package_uses_only_real_tensorrt_names(references: tuple[dict, dict]) -> None:
    uses = package_uses()
    assert len(uses) >= 10, "the walker found almost no TensorRT use: is the module still bound to 'trt'?"
    assert problems_in(uses, *references) == []


def test_misspelled_name_fails(references: tuple[dict, dict]) -> None:
    source = "def f(trt, config):\n    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACES, 1)\n"
    problems = problems_in(collect_uses(source), *references)
    assert len(problems) == 1 and "trt.MemoryPoolType.WORKSPACES exists in neither" in problems[0]
    aliased = "import tensorrt as nv\n\ndef f(config):\n    config.set_flag(nv.BuilderFlag.FP16)\n"
    assert problems_in(collect_uses(aliased), *references)
    misspelled_guard = 'def f(trt):\n    return hasattr(trt.BuilderFlag, "FP61")\n'
    assert problems_in(collect_uses(misspelled_guard), *references)


def test_removed_flag_without_guard_fails(references: tuple[dict, dict]) -> None:
    unguarded = "def f(trt, config):\n    config.set_flag(trt.BuilderFlag.FP16)\n"
    problems = problems_in(collect_uses(unguarded), *references)
    assert len(problems) == 1 and "only in TensorRT 10.16" in problems[0]
    guarded = (
        'def f(trt, config):\n    if hasattr(trt.BuilderFlag, "FP16"):\n        config.set_flag(trt.BuilderFlag.FP16)\n'
    )
    assert problems_in(collect_uses(guarded), *references) == []
    wrong_guard = (
        'def f(trt, config):\n    if hasattr(trt.BuilderFlag, "INT8"):\n        config.set_flag(trt.BuilderFlag.FP16)\n'
    )
    assert problems_in(collect_uses(wrong_guard), *references)
    in_else = (
        'def f(trt, config):\n    if hasattr(trt.BuilderFlag, "FP16"):\n        pass\n'
        "    else:\n        config.set_flag(trt.BuilderFlag.FP16)\n"
    )
    assert problems_in(collect_uses(in_else), *references)
    with_and = (
        "def f(trt, p, config):\n"
        '    if p and hasattr(trt.BuilderFlag, "FP16") and config.set_flag(trt.BuilderFlag.FP16):\n        pass\n'
    )
    assert problems_in(collect_uses(with_and), *references) == []


def test_removing_the_guard_in_the_real_builder_fails(references: tuple[dict, dict]) -> None:
    """The real builder passes only because of its guard: take it away and the check fails."""
    source = (PACKAGE / "engine" / "builder.py").read_text(encoding="utf-8")
    guard = 'if hasattr(trt.NetworkDefinitionCreationFlag, "EXPLICIT_BATCH"):'
    assert guard in source
    assert problems_in(collect_uses(source, "builder.py"), *references) == []
    problems = problems_in(collect_uses(source.replace(guard, "if True:"), "builder.py"), *references)
    assert any("trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH exists only in TensorRT 10.16" in p for p in problems)


def test_version_specific_names_are_all_guarded(references: tuple[dict, dict]) -> None:
    """The package does use names of only one version (the fp16 flag), and each such use is guarded."""
    ten, eleven = references
    one_sided = [u for u in package_uses() if exists(u.chain, ten) != exists(u.chain, eleven)]
    assert {u.dotted for u in one_sided} >= {"trt.BuilderFlag.FP16", "trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH"}
    assert all(u.guarded for u in one_sided)
