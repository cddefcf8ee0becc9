"""Workflow templates as ``flowserv workflows create`` reads them, and their parameter declarations.

A template is a folder with a manifest (``flowserv.json``, ``flowserv.yaml`` or
``flowserv.yml``: ``name``, ``description``, ``instructions`` -- a file in the folder
--, ``specfile``) and a workflow specification (``specfile``, else the first of
``benchmark``, ``workflow``, ``template`` with ``.json``, ``.yaml`` or ``.yml``) whose
``parameters`` list declares the template's parameters. YAML needs PyYAML; JSON
needs nothing.

Declarations are completed and serialized the way flowserv-core 0.8.1 does it: a
missing ``index`` is the declaration's position, a missing ``isRequired`` is "no
``defaultValue`` given", optional keys (``label``, ``help``, ``defaultValue``,
``group``) appear only when set, a numeric ``range`` is normalised (``[0, 10]`` →
``[0.0,10.0]``) and a file parameter always has a ``target`` (null when not set).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["PARAMETER_TYPES", "Template", "parameter_declarations", "read_template"]

# The parameter types the embedded service understands (flowserv's list, record and actor
# parameters nest declarations and are not supported).
PARAMETER_TYPES = ("bool", "file", "float", "int", "select", "string")
_MANDATORY = ("name", "dtype", "index", "isRequired")
_OPTIONAL = ("label", "help", "defaultValue", "group")
_EXTRA = {"int": ("range",), "float": ("range",), "file": ("target",), "select": ("values",)}
_SUFFIXES = (".json", ".yaml", ".yml")
_SPEC_NAMES = ("benchmark", "workflow", "template")


def _range(where: str, value: Any) -> str:
    """flowserv's RangeConstraint.from_string(...).to_string()."""
    if not isinstance(value, str):
        raise TypeError(f"{where}.range must be a string such as '[0, 10]', got {type(value).__name__}")
    tokens = value.split(",")
    left, right = (tokens[0].strip(), tokens[1].strip()) if len(tokens) == 2 else ("", "")
    if not left.startswith(("[", "(")) or not right.endswith(("]", ")")):
        raise ValueError(f"{where}.range: invalid interval {value!r}")
    try:
        low, high = float(left[1:] or "-inf"), float(right[:-1] or "inf")
    except ValueError:
        raise ValueError(f"{where}.range: invalid interval {value!r}") from None
    return f"{left[0]}{low},{high}{right[-1]}"


def _values(where: str, value: Any) -> list[dict[str, Any]]:
    if not isinstance(value, list) or not value:
        raise ValueError(f"{where}.values must be a non-empty list of {{name, value}} mappings")
    out = []
    for i, item in enumerate(value):
        if not isinstance(item, Mapping) or not {"name", "value"} <= set(item):
            raise ValueError(f"{where}.values[{i}] must be a mapping with 'name' and 'value'")
        unknown = sorted(set(item) - {"name", "value", "isDefault"})
        if unknown:
            raise ValueError(f"{where}.values[{i}]: unknown key(s) {', '.join(unknown)}")
        out.append(dict(item))
    return out


def parameter_declarations(declarations: Any) -> list[dict[str, Any]]:
    """Checked, completed and serialized declarations, in the given order.

    Raises ``TypeError``/``ValueError`` naming the declaration (``parameters[2].dtype``).
    """
    if not isinstance(declarations, list):
        raise TypeError(f"parameters must be a list of mappings, got {type(declarations).__name__}")
    out: list[dict[str, Any]] = []
    names: set[str] = set()
    for i, obj in enumerate(declarations):
        where = f"parameters[{i}]"
        if not isinstance(obj, Mapping):
            raise TypeError(f"{where} must be a mapping, got {type(obj).__name__}")
        doc = dict(obj)
        doc.setdefault("index", i)
        doc.setdefault("isRequired", "defaultValue" not in doc)
        dtype = doc.get("dtype")
        if dtype not in PARAMETER_TYPES:
            raise ValueError(f"{where}.dtype must be one of {', '.join(PARAMETER_TYPES)}, got {dtype!r}")
        unknown = sorted(set(doc) - {*_MANDATORY, *_OPTIONAL, *_EXTRA.get(dtype, ())})
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {', '.join(unknown)}")
        name = doc.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"{where}.name must be a non-empty string")
        if name in names:
            raise ValueError(f"{where}: duplicate parameter {name!r}")
        names.add(name)
        if isinstance(doc["index"], bool) or not isinstance(doc["index"], int):
            raise TypeError(f"{where}.index must be an int")
        if not isinstance(doc["isRequired"], bool):
            raise TypeError(f"{where}.isRequired must be a bool")
        for key in ("label", "help", "group"):
            if doc.get(key) is not None and not isinstance(doc[key], str):
                raise TypeError(f"{where}.{key} must be a string")
        result: dict[str, Any] = {"dtype": dtype, "name": name, "index": doc["index"],
                                  "isRequired": doc["isRequired"]}  # fmt: skip
        for key in _OPTIONAL:
            if doc.get(key) is not None:
                result[key] = doc[key]
        if dtype in ("int", "float") and doc.get("range") is not None:
            result["range"] = _range(where, doc["range"])
        if dtype == "select":
            result["values"] = _values(where, doc.get("values"))
        if dtype == "file":
            result["target"] = doc.get("target")
        out.append(result)
    return out


class Template:
    """What a template folder declares: name, description, instructions and parameters."""

    def __init__(
        self, name: str, description: str | None, instructions: str | None, parameters: list[dict[str, Any]]
    ):
        self.name = name
        self.description = description
        self.instructions = instructions
        self.parameters = parameters


def _read_object(path: Path) -> Any:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return json.loads(text)
    try:
        import yaml  # type: ignore[import-untyped,import-not-found,unused-ignore]  # optional: YAML templates only
    except ImportError:
        raise RuntimeError(
            f"reading {path.name} needs PyYAML (pip install pyyaml), or write it as JSON"
        ) from None
    return yaml.safe_load(text)


def read_template(folder: str | Path, *, name: str | None = None, description: str | None = None) -> Template:
    """The template in ``folder`` (a ``ValueError`` says what is missing or wrong).

    ``name`` and ``description`` override the manifest's, as the command line's options do.
    """
    base = Path(folder)
    if not base.is_dir():
        raise ValueError(f"template folder {str(base)!r} does not exist")
    manifest: Any = {}
    for suffix in _SUFFIXES:
        if (base / f"flowserv{suffix}").is_file():
            manifest = _read_object(base / f"flowserv{suffix}") or {}
            break
    if not isinstance(manifest, Mapping):
        raise ValueError("the manifest must be a mapping")
    manifest = {
        **manifest,
        **{k: v for k, v in (("name", name), ("description", description)) if v is not None},
    }
    unknown = sorted(set(manifest) - {"name", "description", "instructions", "files", "specfile"})
    if unknown:
        raise ValueError(f"manifest: unknown key(s) {', '.join(unknown)}")
    if "specfile" in manifest:
        specfile = base / str(manifest["specfile"])
    else:
        found = [base / f"{n}{s}" for n in _SPEC_NAMES for s in _SUFFIXES if (base / f"{n}{s}").is_file()]
        if not found:
            raise ValueError("missing workflow specification (no specfile, no benchmark.yaml ...)")
        specfile = found[0]
    spec = _read_object(specfile) or {}
    if not isinstance(spec, Mapping):
        raise ValueError(f"{specfile.name} must hold a mapping")
    instructions = None
    if manifest.get("instructions") is not None:
        instructions = (base / str(manifest["instructions"])).read_text(encoding="utf-8").strip()
    if not manifest.get("name"):
        raise ValueError("missing name (in the manifest, or given to install_template)")
    return Template(
        str(manifest["name"]), manifest.get("description"), instructions,
        parameter_declarations(spec.get("parameters", [])),
    )  # fmt: skip
