"""Node functions that import their experiment module on the first call, not at registration.

Registering the pipelines (every ``kedro`` command: ``registry list``, ``viz``, ``run``'s start)
used to import every experiment module, and with them torch, open_clip, timm and matplotlib:
tens of seconds and about 1 GB before anything ran. ``lazy(module, name)`` returns a plain
function that stands for ``module.name`` without importing ``module``:

- its signature is read from the module's source (``ast``), so Kedro still checks a node's
  inputs against the function's parameters, and tests compare it with the real signature;
- its code object points at the real definition (file and first line), so Kedro-Viz's code panel
  and ``inspect.getsource`` show the experiment function itself;
- it pickles by reference to the ``nodes`` module that binds it (``ParallelRunner``) and imports
  the experiment module when it is first called.

Only modules of this package can be named, so a target is always a file under ``src/``.
"""

from __future__ import annotations

import ast
import functools
import importlib
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

PACKAGE = "seg_pipelines"
PACKAGE_DIR = Path(__file__).resolve().parents[1]


class LazyNodeError(LookupError):
    """A lazy node names a module or function that does not exist (raised at registration)."""


class _Unevaluated:
    """A default value that is not a literal: shown as its source text, never used in a call."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return self.text


def _module_file(module: str) -> Path:
    if module != PACKAGE and not module.startswith(PACKAGE + "."):
        raise LazyNodeError(f"lazy nodes name modules of {PACKAGE}, not {module!r}")
    relative = Path(*module.split(".")[1:])
    for candidate in (PACKAGE_DIR / relative.with_suffix(".py"), PACKAGE_DIR / relative / "__init__.py"):
        if candidate.is_file():
            return candidate
    raise LazyNodeError(f"no module {module!r} (looked for {relative}.py under {PACKAGE_DIR})")


@functools.cache
def _module_tree(path: Path) -> ast.Module:
    return ast.parse(path.read_text(), filename=str(path))


def _find_definition(module: str, name: str, seen: frozenset[str] = frozenset()) -> tuple[Path, ast.FunctionDef]:
    """The top-level ``def name`` of ``module``, following ``from x import name`` re-exports."""
    if module in seen:
        raise LazyNodeError(f"import cycle while looking for {name!r}: {sorted(seen)}")
    path = _module_file(module)
    for statement in _module_tree(path).body:
        if isinstance(statement, ast.FunctionDef) and statement.name == name:
            return path, statement
        if isinstance(statement, ast.ImportFrom) and statement.module and statement.level == 0:
            for alias in statement.names:
                if (alias.asname or alias.name) == name and statement.module.startswith(PACKAGE):
                    return _find_definition(statement.module, alias.name, seen | {module})
    raise LazyNodeError(f"{module} has no top-level function {name!r}")


def _default(node: ast.expr) -> Any:
    try:
        return ast.literal_eval(node)
    except ValueError:
        return _Unevaluated(ast.unparse(node))


def signature_of(definition: ast.FunctionDef) -> inspect.Signature:
    """The call signature of a ``def`` (names, kinds, defaults; annotations kept as text)."""
    arguments = definition.args
    positional = [*arguments.posonlyargs, *arguments.args]
    defaults = [None] * (len(positional) - len(arguments.defaults)) + list(arguments.defaults)
    kind = inspect.Parameter
    parameters = []
    for position, (argument, default) in enumerate(zip(positional, defaults)):
        parameters.append(
            kind(
                argument.arg,
                kind.POSITIONAL_ONLY if position < len(arguments.posonlyargs) else kind.POSITIONAL_OR_KEYWORD,
                default=kind.empty if default is None else _default(default),
            )
        )
    if arguments.vararg:
        parameters.append(kind(arguments.vararg.arg, kind.VAR_POSITIONAL))
    for argument, default in zip(arguments.kwonlyargs, arguments.kw_defaults):
        parameters.append(
            kind(argument.arg, kind.KEYWORD_ONLY, default=kind.empty if default is None else _default(default))
        )
    if arguments.kwarg:
        parameters.append(kind(arguments.kwarg.arg, kind.VAR_KEYWORD))
    return inspect.Signature(parameters)


def resolve(module: str, name: str) -> Callable[..., Any]:
    """The real function (imports ``module``)."""
    return getattr(importlib.import_module(module), name)


def lazy(module: str, name: str) -> Callable[..., Any]:
    """A function standing for ``module.name`` that imports ``module`` when first called.

    Assign it to the same name in a ``nodes`` module (``train_model = lazy(".../closed_set",
    "train_model")``): it pickles by reference to that module, which imports nothing heavy.
    """
    path, definition = _find_definition(module, name)

    def node_function(*args: Any, **kwargs: Any) -> Any:
        return resolve(module, name)(*args, **kwargs)

    first_line = min([definition.lineno, *(d.lineno for d in definition.decorator_list)])
    node_function.__code__ = node_function.__code__.replace(co_filename=str(path), co_firstlineno=first_line)
    node_function.__name__ = node_function.__qualname__ = name
    node_function.__module__ = sys._getframe(1).f_globals["__name__"]  # the nodes module that binds it
    node_function.__doc__ = ast.get_docstring(definition, clean=False)
    node_function.__signature__ = signature_of(definition)  # type: ignore[attr-defined]
    node_function.lazy_target = (module, name)  # type: ignore[attr-defined]
    return node_function


def _call_signature(module: str, class_name: str) -> inspect.Signature:
    """``class_name.__call__``'s signature without ``self``, read from the source."""
    path = _module_file(module)
    for statement in _module_tree(path).body:
        if isinstance(statement, ast.ClassDef) and statement.name == class_name:
            for item in statement.body:
                if isinstance(item, ast.FunctionDef) and item.name == "__call__":
                    parameters = list(signature_of(item).parameters.values())[1:]
                    return inspect.Signature(parameters)
            raise LazyNodeError(f"{module}.{class_name} has no __call__")
    raise LazyNodeError(f"{module} has no top-level class {class_name!r}")


class LazyNode:
    """A node callable built on its first call: ``getattr(module, factory)(*args)`` returns the real
    node object (e.g. an ablation table's ``ClosedSetVariantNode``), which is then called.

    ``calls = (module, class)`` names the class whose ``__call__`` the factory's object has: its
    signature (read from the source) is this node's, so Kedro checks the node's inputs against it.
    Pickles as its arguments (``ParallelRunner``); the built object stays in the process.
    """

    def __init__(self, module: str, factory: str, args: tuple[Any, ...], calls: tuple[str, str], name: str) -> None:
        tree = _module_tree(_module_file(module))  # a typo fails at registration, not at run time
        if not any(isinstance(d, (ast.FunctionDef, ast.ClassDef)) and d.name == factory for d in tree.body):
            raise LazyNodeError(f"{module} has no top-level function or class {factory!r}")
        self.module, self.factory, self.args, self.calls = module, factory, tuple(args), tuple(calls)
        self.__name__ = self.__qualname__ = name
        self.__signature__ = _call_signature(*calls)
        # typing.get_type_hints (Kedro's parameter type extractor calls it on every node at session start)
        # refuses objects without __annotations__; the annotations stay text in the signature
        self.__annotations__: dict[str, Any] = {}
        self.__doc__ = f"{module}.{factory}{self.args!r}: a {calls[1]} built on the first call"
        self._built: Callable[..., Any] | None = None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if self._built is None:
            self._built = resolve(self.module, self.factory)(*self.args)
        return self._built(*args, **kwargs)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_built": None}
