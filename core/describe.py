"""Describing a component's config fields WITHOUT importing the component's module.

``lca registry show`` must not import torch-heavy component modules (docs/architecture.md, "The layers
of `lca`"), yet its fields, types, defaults and docs live in the pydantic config next to the code. So the
module's source is read with :mod:`ast`: the component class's ``Config = XConfig`` assignment is followed
to ``XConfig`` (in the same module or through a ``from ... import``), and its annotated fields,
``Field(default, description=...)`` calls and attribute docstrings are read.
``tests/test_registry_catalog.py`` checks, for every registered component, that this static description
equals the real pydantic model, so the two cannot drift apart.

Objects registered directly at run time are already imported; their real model is described.
"""

from __future__ import annotations

import ast
import importlib.util
from dataclasses import dataclass, field
from pathlib import Path

from lca.registry import ComponentSpec

_BASE_NAMES = {"ComponentConfig", "BaseModel"}


@dataclass(frozen=True)
class FieldDescription:
    name: str
    type: str
    default: str | None  # source text of the default; None when the field is required
    doc: str


@dataclass
class ConfigDescription:
    config_class: str
    fields: list[FieldDescription] = field(default_factory=list)
    note: str = ""


def _module_source(module_name: str) -> tuple[ast.Module, Path] | None:
    spec = importlib.util.find_spec(module_name)  # imports parent packages only (empty __init__ files)
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return None
    path = Path(spec.origin)
    return ast.parse(path.read_text(encoding="utf-8")), path


def _find_class(module: ast.Module, name: str) -> ast.ClassDef | None:
    return next((n for n in module.body if isinstance(n, ast.ClassDef) and n.name == name), None)


def _imported_from(module: ast.Module, name: str, package: str) -> str | None:
    """The module a name was imported from (``from x import name``), resolved to an absolute name."""
    for node in module.body:
        if isinstance(node, ast.ImportFrom) and any((a.asname or a.name) == name for a in node.names):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                return f"{base}.{node.module}" if node.module else base
            return node.module
    return None


def _locate(module_name: str, class_name: str, depth: int = 0) -> tuple[ast.ClassDef, ast.Module, str] | None:
    """Find ``class_name`` in ``module_name`` or in the module it was imported from."""
    loaded = _module_source(module_name)
    if loaded is None or depth > 4:
        return None
    module, _ = loaded
    node = _find_class(module, class_name)
    if node is not None:
        return node, module, module_name
    source = _imported_from(module, class_name, module_name.rpartition(".")[0])
    return None if source is None else _locate(source, class_name, depth + 1)


def _config_name(cls_node: ast.ClassDef) -> str | None:
    for node in cls_node.body:
        target = (
            node.target
            if isinstance(node, ast.AnnAssign)
            else (node.targets[0] if isinstance(node, ast.Assign) and len(node.targets) == 1 else None)
        )
        if isinstance(target, ast.Name) and target.id == "Config" and isinstance(node.value, ast.Name):
            return node.value.id
    return None


def _field_default(value: ast.expr | None) -> tuple[str | None, str]:
    """(default text or None if required, description from ``Field(description=...)``)."""
    if value is None:
        return None, ""
    if isinstance(value, ast.Call) and getattr(value.func, "id", getattr(value.func, "attr", "")) == "Field":
        keywords = {k.arg: k.value for k in value.keywords if k.arg}
        description = keywords.get("description")
        doc = description.value if isinstance(description, ast.Constant) else ""
        if value.args and not (isinstance(value.args[0], ast.Constant) and value.args[0].value is Ellipsis):
            return ast.unparse(value.args[0]), str(doc)
        if "default" in keywords:
            return ast.unparse(keywords["default"]), str(doc)
        if "default_factory" in keywords:
            return f"{ast.unparse(keywords['default_factory'])}()", str(doc)
        return None, str(doc)
    return ast.unparse(value), ""


def _fields(node: ast.ClassDef, module: ast.Module, module_name: str) -> list[FieldDescription]:
    inherited: list[FieldDescription] = []
    for base in node.bases:
        base_name = base.id if isinstance(base, ast.Name) else None
        if base_name and base_name not in _BASE_NAMES:
            located = _locate(module_name, base_name)
            if located is not None:
                inherited = _fields(*located)
    own: dict[str, FieldDescription] = {f.name: f for f in inherited}
    body = node.body
    for index, item in enumerate(body):
        if not isinstance(item, ast.AnnAssign) or not isinstance(item.target, ast.Name):
            continue
        annotation = ast.unparse(item.annotation)
        if annotation.startswith(("ClassVar", "typing.ClassVar")) or item.target.id == "model_config":
            continue
        default, doc = _field_default(item.value)
        following = body[index + 1] if index + 1 < len(body) else None
        if isinstance(following, ast.Expr) and isinstance(following.value, ast.Constant):
            doc = doc or " ".join(str(following.value.value).split())
        own[item.target.id] = FieldDescription(item.target.id, annotation, default, doc)
    return list(own.values())


def describe_config(spec: ComponentSpec) -> ConfigDescription:
    """The config fields of a component, read statically for catalogue entries."""
    if spec.obj is not None:
        return describe_model(spec.obj.Config)
    assert spec.target is not None
    module_name, _, class_name = spec.target.partition(":")
    try:
        located = _locate(module_name, class_name.split(".")[0])
    except (ImportError, SyntaxError, ValueError) as error:
        return ConfigDescription("?", note=f"cannot read the source of {module_name}: {error}")
    if located is None:
        return ConfigDescription("?", note=f"class {class_name} not found in the source of {module_name}")
    cls_node, _, found_in = located
    config_name = _config_name(cls_node)
    config = None if config_name is None else _locate(found_in, config_name)
    if config is None:
        return ConfigDescription(
            "?", note=f"{class_name} has no readable 'Config = <ConfigClass>' assignment"
        )
    return ConfigDescription(config_name or "?", _fields(*config))


def describe_model(model: type) -> ConfigDescription:
    """Describe an imported pydantic model (for runtime registrations and for the drift test)."""
    from pydantic_core import PydanticUndefined

    fields = []
    for name, info in model.model_fields.items():  # type: ignore[attr-defined]
        if info.default is not PydanticUndefined:
            default: str | None = repr(info.default)
        elif info.default_factory is not None:
            default = f"{getattr(info.default_factory, '__name__', 'factory')}()"
        else:
            default = None
        annotation = getattr(info.annotation, "__name__", None) or str(info.annotation).replace("typing.", "")
        fields.append(FieldDescription(name, annotation, default, " ".join((info.description or "").split())))
    return ConfigDescription(model.__name__, fields)
