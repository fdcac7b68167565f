"""The rules llmtel's architecture depends on, checked on the source (AST), not by habit.

Layers, top to bottom: ``llmtel.cli`` → ``llmtel.config`` → ``llmtel.serving`` →
``llmtel.readers`` / ``llmtel.collectors`` → ``llmtel._internal`` → ``llmtel.semconv``.
A module may import its own layer and the layers below it, never above. Each test
names the offending file and line, so a failure says what to fix.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "llmtel"
INSTRUMENTATIONS = ROOT / "instrumentations"

#: Where a broad ``except`` may swallow an error: the one error policy.
ERROR_POLICY = PACKAGE / "_internal" / "errors.py"
#: The only module that may write the environment (the distro's documented defaults).
ENV_WRITER = PACKAGE / "config" / "distro.py"


def _modules(root: Path) -> Iterator[Path]:
    yield from sorted(p for p in root.rglob("*.py") if ".venv" not in p.parts and "build" not in p.parts)


def _module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> Iterator[tuple[int, str]]:
    """(line, imported module) for every import in ``path``, lazy ones inside functions included."""
    tree = ast.parse(path.read_text(), filename=str(path))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.lineno, node.module
            for alias in node.names:  # `from llmtel import config` imports llmtel.config
                yield node.lineno, f"{node.module}.{alias.name}"


def _under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _violations(files: Iterator[Path], forbidden: tuple[str, ...]) -> list[str]:
    found = []
    for path in files:
        for line, module in _imports(path):
            if any(_under(module, banned) for banned in forbidden):
                found.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    return found


LAYERS: dict[str, tuple[str, ...]] = {
    # package → what it must never import
    "llmtel/_internal": ("llmtel.config", "llmtel.serving", "llmtel.cli", "llmtel.readers", "llmtel.collectors"),
    "llmtel/readers": ("llmtel.config", "llmtel.serving", "llmtel.cli", "llmtel._internal.api"),
    "llmtel/collectors": ("llmtel.config", "llmtel.serving", "llmtel.cli", "llmtel._internal.api", "llmtel.readers"),
    "llmtel/serving": ("llmtel.config", "llmtel.cli", "llmtel._internal.api"),
    "llmtel/config": ("llmtel.cli",),
}


@pytest.mark.parametrize("package", sorted(LAYERS))
def test_layers_import_only_downwards(package: str) -> None:
    assert _violations(_modules(ROOT / package), LAYERS[package]) == []


def test_registry_imports_nothing_of_llmtel() -> None:
    assert _violations(iter([PACKAGE / "semconv.py"]), ("llmtel",)) == []


def test_nothing_at_runtime_imports_the_cli() -> None:
    runtime = (p for p in _modules(PACKAGE) if "cli" not in p.relative_to(PACKAGE).parts and p.name != "__main__.py")
    assert _violations(runtime, ("llmtel.cli",)) == []


PUBLIC_MODULES = ("llmtel", "llmtel.instrumentation", "llmtel.semconv")


def test_instrumentations_use_only_public_names() -> None:
    found = []
    for path in _modules(INSTRUMENTATIONS):
        for line, module in _imports(path):
            if not _under(module, "llmtel"):
                continue
            parent, _, name = module.rpartition(".")
            if module in PUBLIC_MODULES or (parent in PUBLIC_MODULES and not name.startswith("_")):
                continue
            found.append(f"{path.relative_to(ROOT)}:{line} imports {module}")
    assert found == []


def _reraises(handler: ast.ExceptHandler) -> bool:
    """A cleanup handler: its last statement re-raises what it caught."""
    last = handler.body[-1] if handler.body else None
    return isinstance(last, ast.Raise) and last.exc is None


def _asks_the_policy(handler: ast.ExceptHandler) -> bool:
    """``if not <guarded block>.swallowed(exc): raise`` and nothing else: errors.guarded decides."""
    if len(handler.body) != 1 or not isinstance(handler.body[0], ast.If):
        return False
    test, body = handler.body[0].test, handler.body[0].body
    asked = (
        isinstance(test, ast.UnaryOp)
        and isinstance(test.op, ast.Not)
        and isinstance(test.operand, ast.Call)
        and isinstance(test.operand.func, ast.Attribute)
        and test.operand.func.attr == "swallowed"
        and [ast.dump(a) for a in test.operand.args] == [ast.dump(ast.Name(handler.name or "", ast.Load()))]
    )
    return asked and not handler.body[0].orelse and len(body) == 1 and isinstance(body[0], ast.Raise)


def _is_broad(handler: ast.ExceptHandler) -> bool:
    names: list[ast.expr] = []
    if handler.type is None:
        return True
    names = list(handler.type.elts) if isinstance(handler.type, ast.Tuple) else [handler.type]
    return any(isinstance(n, ast.Name) and n.id in ("Exception", "BaseException") for n in names)


def test_one_broad_except_policy() -> None:
    found = []
    for path in [*_modules(PACKAGE), *_modules(INSTRUMENTATIONS)]:
        if path == ERROR_POLICY or "tests" in path.parts:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.ExceptHandler) or not _is_broad(node):
                continue
            if not (_reraises(node) or _asks_the_policy(node)):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}")
    assert found == [], "swallow errors through llmtel._internal.errors (guarded / guard), not a broad except"


def _environ_uses(path: Path) -> Iterator[tuple[int, str]]:
    """(line, 'read'|'write') for each use of os.environ / os.getenv / os.putenv in ``path``."""
    tree = ast.parse(path.read_text())
    writes = {"setdefault", "update", "pop", "clear", "__setitem__", "__delitem__", "popitem"}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in ("getenv", "putenv", "unsetenv"):
            yield node.lineno, "write" if node.attr != "getenv" else "read"
        elif isinstance(node, ast.Attribute) and node.attr == "environ":
            yield node.lineno, "read"
        elif isinstance(node, (ast.Assign, ast.AugAssign, ast.Delete)):
            targets = node.targets if isinstance(node, (ast.Assign, ast.Delete)) else [node.target]
            for target in targets:
                if isinstance(target, ast.Subscript) and "environ" in ast.unparse(target.value):
                    yield node.lineno, "write"
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in writes:
            if "environ" in ast.unparse(node.func.value):
                yield node.lineno, "write"


#: Who may touch ``os.environ`` directly, and why. Everything else asks the one helper.
ENV_READERS = {
    PACKAGE / "_internal" / "env.py": "the one env helper",
    ERROR_POLICY: "the pytest re-raise switch (env.py imports the policy, not the reverse)",
    PACKAGE / "semconv.py": "OTEL_SEMCONV_STABILITY_OPT_IN: the registry imports nothing of llmtel",
    ENV_WRITER: "the distro fills in documented defaults",
}


def test_environment_is_read_only_through_the_env_helper() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in _modules(PACKAGE)
        if path not in ENV_READERS
        for line, _ in _environ_uses(path)
    ]
    assert found == [], "read the environment through llmtel._internal.env (settings resolve options there)"


def test_environment_is_written_only_by_the_distro() -> None:
    found = [
        f"{path.relative_to(ROOT)}:{line}"
        for path in _modules(PACKAGE)
        if path != ENV_WRITER
        for line, kind in _environ_uses(path)
        if kind == "write"
    ]
    assert found == []


def test_rules_can_fail() -> None:
    """The checks above find what they look for (each rule is proven on a snippet that breaks it)."""
    snippet = ROOT / "tests" / "architecture" / "_snippet_for_test.py"
    snippet.write_text(
        "import os\nimport llmtel.cli\ntry:\n    pass\nexcept Exception:\n    pass\nos.environ['X'] = '1'\n"
    )
    try:
        assert _violations(iter([snippet]), ("llmtel.cli",)) == [f"{snippet.relative_to(ROOT)}:2 imports llmtel.cli"]
        handlers = [n for n in ast.walk(ast.parse(snippet.read_text())) if isinstance(n, ast.ExceptHandler)]
        assert _is_broad(handlers[0]) and not _reraises(handlers[0])
        assert (7, "write") in list(_environ_uses(snippet))
    finally:
        snippet.unlink()


@pytest.mark.parametrize(
    ("handler", "asks"),
    [
        ("if not _BLOCK.swallowed(exc):\n        raise", True),
        ("if not _BLOCK.swallowed(exc):\n        pass", False),  # swallows whatever the policy says
        ("if not _BLOCK.swallowed(other):\n        raise", False),  # asks about another exception
        ("if not _BLOCK.report(exc):\n        raise", False),
        ("if not _BLOCK.swallowed(exc):\n        raise\n    log(exc)", False),
    ],
)
def test_a_handler_may_ask_the_policy_only_in_its_one_shape(handler: str, asks: bool) -> None:
    code = f"try:\n    pass\nexcept Exception as exc:\n    {handler}\n"
    found = next(n for n in ast.walk(ast.parse(code)) if isinstance(n, ast.ExceptHandler))
    assert _asks_the_policy(found) is asks
