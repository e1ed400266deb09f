"""Our merge config → mergekit's (a plain dict, validated as `mergekit.config.MergeConfiguration`).

The dict is also written as ``mergekit.yaml`` next to each merged model with absolute model
paths, so ``mergekit-yaml mergekit.yaml OUT --copy-tokenizer`` reruns the same merge by hand.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import yaml

from definemed.errors import UserError
from definemed.merge.config import TASK_VECTOR_METHODS, MergeConfig
from definemed.merge.prechecks import check_dtype, local_model

MODEL_KEYS = ("model", "base_model")


def _w(x: float) -> float:
    return round(x, 10)  # 1 - 0.7 is 0.30000000000000004; keep the YAML readable


def tokenizer_source(cfg: MergeConfig, models: dict[str, Path]) -> Optional[str]:
    """mergekit's tokenizer_source for our setting (None: copy the instruct parent's tokenizer)."""
    src = cfg.tokenizer_source
    if src is None or src == "union":
        return src
    if src in ("instruct", "cpt", "base"):
        if src not in models:
            raise UserError(f"tokenizer_source: '{src}' but models.{src} is not set")
        return str(models[src])
    return str(local_model(src, "tokenizer_source"))


def build(cfg: MergeConfig, models: dict[str, Path], t: float) -> dict[str, Any]:
    """The mergekit config of one sweep point; ``t`` is the share of the CPT model (see config.py)."""
    instruct, cpt = str(models["instruct"]), str(models["cpt"])
    out: dict[str, Any] = {"merge_method": cfg.method}
    if cfg.method == "slerp":
        # mergekit's slerp: t = 0 gives base_model, t = 1 the other model.
        out["base_model"] = instruct
        out["models"] = [{"model": instruct}, {"model": cpt}]
        out["parameters"] = {"t": _w(t)}
    elif cfg.method == "linear":
        # linear ignores base_model in the math; naming it fixes which parent's config.json and
        # tokenizer mergekit copies (otherwise the first of an unordered set of models)
        out["base_model"] = instruct
        out["models"] = [{"model": instruct, "parameters": {"weight": _w(1 - t)}},
                         {"model": cpt, "parameters": {"weight": _w(t)}}]
    else:
        assert cfg.method in TASK_VECTOR_METHODS
        out["base_model"] = str(models["base"])
        density = cfg.density()
        extra = {"density": density} if density is not None else {}
        out["models"] = [{"model": instruct, "parameters": {"weight": _w(1 - t), **extra}},
                         {"model": cpt, "parameters": {"weight": _w(t), **extra}}]
    out["dtype"] = cfg.dtype
    src = tokenizer_source(cfg, models)
    if src is not None:
        out["tokenizer_source"] = src
    return out


def _resolve_refs(node: Any) -> Any:
    """Bundled names and relative local folders in a raw mergekit config → absolute folders."""
    if isinstance(node, list):
        return [_resolve_refs(x) for x in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if key in MODEL_KEYS + ("tokenizer_source",) and isinstance(value, str) and "+" not in value \
                and value not in ("union", "base"):
            from definemed.models.bundled import BUNDLED_NAME

            if value in (BUNDLED_NAME, "bundled") or Path(value).expanduser().exists():
                value = str(local_model(value, f"mergekit.{key}"))
        out[key] = _resolve_refs(value)
    return out


def raw(cfg: MergeConfig) -> dict[str, Any]:
    """The embedded raw mergekit config, with only its model references made absolute."""
    assert cfg.mergekit is not None
    data = _resolve_refs(cfg.mergekit)
    check_dtype(data.get("dtype"), "mergekit.dtype")
    check_dtype(data.get("out_dtype"), "mergekit.out_dtype")
    return data


def to_configuration(data: dict[str, Any], source: str = "mergekit config"):
    """Validate with mergekit's own model; its errors become one line."""
    from pydantic import ValidationError
    from mergekit.config import MergeConfiguration

    try:
        return MergeConfiguration.model_validate(data)
    except ValidationError as err:
        first = err.errors()[0]
        loc = ".".join(str(x) for x in first["loc"]) or "<root>"
        raise UserError(f"{source}: field '{loc}': {first['msg']}") from None
    except (RuntimeError, ValueError) as err:  # mergekit's own validators raise RuntimeError
        raise UserError(f"{source}: {str(err).splitlines()[0]}") from None


def referenced_models(mk) -> list[str]:
    """Local paths / hub ids of every model a (validated) mergekit config reads, in config order."""
    refs = [mk.base_model] if mk.base_model else []
    refs += [m.model for m in mk.models or []]
    refs += [src.model for s in mk.slices or [] for src in s.sources]
    for module in (mk.modules or {}).values():
        refs += [m.model for m in module.models or []]
        refs += [src.model for s in module.slices or [] for src in s.sources]
    unique = list(dict.fromkeys(refs))
    for ref in unique:
        if ref.lora is not None:
            raise UserError(f"mergekit config: LoRA references ({ref}) are not supported here")
    return [ref.model.path for ref in unique]


def to_yaml(data: dict[str, Any]) -> str:
    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True)
