"""YAML configs validated by pydantic, with errors that name the file and the field.

Precedence is defaults < YAML file < command-line overrides (``--set train.lr=1e-4``),
resolved here in one place; the resolved config is what a run directory stores.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Iterable, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from definemed.errors import UserError

M = TypeVar("M", bound=BaseModel)

# The dtypes our loaders accept (`definemed.models.loading.torch_dtype`): a typo must fail at
# validation, naming the field, not when torch is asked for the dtype after a stage has started.
Dtype = Literal["float32", "bfloat16", "float16"]
# numpy's default_rng (bootstrap CIs, subsets, packing) rejects negative seeds
Seed = Annotated[int, Field(ge=0)]


class FieldError(ValueError):
    """An error of a model validator about specific fields (relative to the model that raises
    it): the formatter names them instead of '<root>' (pydantic gives model validators no field)."""

    def __init__(self, fields: str | Iterable[str], message: str):
        self.fields = (fields,) if isinstance(fields, str) else tuple(fields)
        super().__init__(message)


def field_problem(source: str, field: str, message: str) -> UserError:
    """The one-line error about one field of one file, in the format of every config error."""
    return UserError(f"{source}: field '{field}': {message}")


class StrictModel(BaseModel):
    """Base for every config section: unknown keys are errors (typos must not pass silently)."""

    model_config = ConfigDict(extra="forbid", protected_namespaces=())


def _format_validation_error(err: ValidationError, source: str) -> str:
    parts = []
    for e in err.errors():
        loc = ".".join(str(x) for x in e["loc"]) or "<root>"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown field"
        cause = (e.get("ctx") or {}).get("error")
        if isinstance(cause, FieldError):  # a model validator's error: name its fields, not the model
            names = [".".join(str(x) for x in (*e["loc"], f)) for f in cause.fields]
            parts.append(f"field{'s' if len(names) > 1 else ''} {', '.join(repr(n) for n in names)}: {cause}")
            continue
        parts.append(f"field '{loc}': {msg}")
    return f"{source}: " + "; ".join(parts)


def apply_overrides(data: dict[str, Any], overrides: list[str] | None) -> dict[str, Any]:
    """Apply ``a.b.c=value`` overrides (``data.0.path=...`` indexes lists); values are parsed as
    YAML scalars (1e-4, true, [1,2])."""
    for item in overrides or []:
        if "=" not in item:
            raise UserError(f"override '{item}' must look like key.sub=value")
        key, raw = item.split("=", 1)
        try:
            value = yaml.safe_load(raw)
        except yaml.YAMLError:
            raise UserError(f"override '{item}': the value is not valid YAML (quote it)") from None
        node: Any = data
        parts = key.strip().split(".")
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise UserError(f"override '{item}': '{part}' is not an index of a {len(node)}-item list")
                if last:
                    node[int(part)] = value
                else:
                    node = node[int(part)]
            elif isinstance(node, dict):
                if last:
                    node[part] = value
                else:
                    node = node.setdefault(part, {})
            else:
                raise UserError(f"override '{item}': '{parts[i - 1]}' is not a section")
    return data


def validate_config(model: type[M], data: Any, source: str = "config") -> M:
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise UserError(f"{source}: expected a mapping of fields at the top level, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise UserError(_format_validation_error(err, source)) from None


def load_config(model: type[M], path: str | Path, overrides: list[str] | None = None) -> M:
    """Read a YAML file into ``model``; every problem becomes a one-line ``UserError``."""
    path = Path(path)
    if not path.exists():
        raise UserError(f"config file not found: {path}")
    if not path.is_file():
        raise UserError(f"config path is not a file: {path}")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise UserError(f"{path}: not UTF-8 text") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" (line {mark.line + 1}, column {mark.column + 1})" if mark else ""
        raise UserError(f"{path}: invalid YAML{where}: {getattr(err, 'problem', err)}") from None
    data = apply_overrides(data if isinstance(data, dict) else ({} if data is None else data), overrides) \
        if overrides else data
    return validate_config(model, data, source=str(path))

