"""Typed node schemas: the structural part of ComfyUI's ``/object_info``, trimmed and shipped with the package.

``trim_object_info`` keeps per class only what the checker and the UI builder read (inputs in served order
with types, options, default/min/max/step, special widgets; outputs; ``output_node``). ``load_schema`` reads
the copy made from the pinned servers; ``fetch_object_info`` gets a live one.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

__all__ = [
    "MODEL_INPUTS",
    "SCHEMA_VERSION",
    "UPLOAD_INPUTS",
    "WIDGET_TYPES",
    "InputSpec",
    "NodeSpec",
    "OutputSpec",
    "Schema",
    "load_schema",
    "schema_from_data",
    "trim_object_info",
]

SCHEMA_VERSION = 1
WIDGET_TYPES = frozenset({"INT", "FLOAT", "STRING", "BOOLEAN", "COMBO"})

# Combos whose values are whatever has been uploaded to input/: the served list is only what the dumping
# server happened to hold. VHS adds its upload button in JavaScript, so its inputs carry no flag.
UPLOAD_INPUTS: Mapping[tuple[str, str], str] = {
    ("LoadImage", "image"): "image",
    ("LoadImageMask", "image"): "image",
    ("VHS_LoadVideo", "video"): "video",
    ("VHS_LoadVideoFFmpeg", "video"): "video",
    ("VHS_LoadAudioUpload", "audio"): "audio",
}

# Inputs that name a weight file, and the ComfyUI models/ folder it is read from (lockfile paths start there).
MODEL_INPUTS: Mapping[tuple[str, str], str] = {
    ("UNETLoader", "unet_name"): "diffusion_models",
    ("CLIPLoader", "clip_name"): "text_encoders",
    ("VAELoader", "vae_name"): "vae",
    ("CLIPVisionLoader", "clip_name"): "clip_vision",
    ("LoraLoaderModelOnly", "lora_name"): "loras",
    ("WanVideoModelLoader", "model"): "diffusion_models",
    ("WanVideoVAELoader", "model_name"): "vae",
    ("WanVideoTinyVAELoader", "model_name"): "vae_approx",
    ("LoadWanVideoClipTextEncoder", "model_name"): "clip_vision",
    ("LoadWanVideoT5TextEncoder", "model_name"): "text_encoders",
    ("WanVideoLoraSelect", "lora"): "loras",
}

# Legacy frontend rule: an INT input named like this gets a "control_after_generate" widget even unflagged.
_SEED_NAMES = frozenset({"seed", "noise_seed"})
Scalar = str | int | float | bool


@dataclass(frozen=True, slots=True)
class InputSpec:
    """One input of a node class. ``type`` is a widget type, or a socket type such as ``IMAGE`` or ``A,B``."""

    name: str
    type: str
    required: bool
    options: tuple[Scalar, ...] = ()
    default: Any = None
    min: float | None = None
    max: float | None = None
    step: float | None = None
    upload: str | None = None
    models_folder: str | None = None
    control_after_generate: bool = False

    @property
    def is_widget(self) -> bool:
        return self.type in WIDGET_TYPES


@dataclass(frozen=True, slots=True)
class OutputSpec:
    name: str
    type: str
    is_list: bool = False


@dataclass(frozen=True, slots=True)
class NodeSpec:
    """A node class: inputs in served order (required first), outputs, and per-format widgets (VHS)."""

    name: str
    inputs: tuple[InputSpec, ...]
    outputs: tuple[OutputSpec, ...]
    output_node: bool = False
    format_widgets: Mapping[str, tuple[InputSpec, ...]] = field(default_factory=dict)

    def input(self, name: str) -> InputSpec | None:
        return next((spec for spec in self.inputs if spec.name == name), None)


@dataclass(frozen=True, slots=True)
class Schema:
    classes: Mapping[str, NodeSpec]
    origin: str = ""

    def get(self, class_type: str) -> NodeSpec | None:
        return self.classes.get(class_type)


# ---------------------------------------------------------------------- trimming /object_info


def trim_object_info(
    info: Mapping[str, Any], *, classes: Iterable[str] | None = None, origin: str = ""
) -> dict[str, Any]:
    """Reduce a ``/object_info`` answer to the structural fields, for ``classes`` (all when None)."""
    wanted = sorted(info) if classes is None else sorted(set(classes) & set(info))
    return {
        "version": SCHEMA_VERSION,
        "origin": origin,
        "classes": {name: _trim_class(name, info[name]) for name in wanted},
    }


def _trim_class(name: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    declared = raw.get("input", {})
    order = raw.get("input_order") or {sec: list(declared.get(sec, {})) for sec in ("required", "optional")}
    inputs = [
        _trim_input(name, input_name, declared[section][input_name], section == "required")
        for section in ("required", "optional")
        for input_name in order.get(section, [])
        if input_name in declared.get(section, {})
    ]
    names = raw.get("output_name") or raw.get("output", [])
    is_list = raw.get("output_is_list") or [False] * len(raw.get("output", []))
    out: dict[str, Any] = {
        "inputs": inputs,
        "outputs": [
            {"name": str(n), "type": _type_name(t), "is_list": bool(lst)}
            for n, t, lst in zip(names, raw.get("output", []), is_list, strict=False)
        ],
        "output_node": bool(raw.get("output_node", False)),
    }
    formats = _format_widgets(name, declared)
    if formats:
        out["format_widgets"] = formats
    return out


def _trim_input(class_name: str, name: str, raw: Any, required: bool) -> dict[str, Any]:
    kind = raw[0] if isinstance(raw, list | tuple) and raw else raw
    extra: Mapping[str, Any] = (
        raw[1] if isinstance(raw, list | tuple) and len(raw) > 1 and isinstance(raw[1], dict) else {}
    )
    spec: dict[str, Any] = {"name": name, "required": required}
    if isinstance(kind, list) or kind == "COMBO":
        spec["type"] = "COMBO"
        spec["options"] = list(kind) if isinstance(kind, list) else list(extra.get("options", []))
    else:
        spec["type"] = _type_name(kind)
    for key in ("default", "min", "max", "step"):
        if key in extra:
            spec[key] = extra[key]
    upload = UPLOAD_INPUTS.get((class_name, name)) or ("image" if extra.get("image_upload") else None)
    if upload:
        spec["upload"] = upload
        spec["options"] = []  # the dumping server's input/ folder, not a rule
    if (class_name, name) in MODEL_INPUTS:
        spec["models_folder"] = MODEL_INPUTS[(class_name, name)]
    if spec["type"] == "INT" and (extra.get("control_after_generate") or name in _SEED_NAMES):
        spec["control_after_generate"] = True
    return spec


def _format_widgets(class_name: str, declared: Mapping[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """VHS_VideoCombine's per-format widgets (``pix_fmt``, ``crf``...): they reach the node via ``hidden``."""
    fmt = declared.get("required", {}).get("format")
    if not (isinstance(fmt, list) and len(fmt) > 1 and isinstance(fmt[1], dict) and "formats" in fmt[1]):
        return {}
    result: dict[str, list[dict[str, Any]]] = {}
    for fmt_name, widgets in fmt[1]["formats"].items():
        if not isinstance(widgets, list):
            continue  # VHS_LoadVideo's formats are presets, not widgets
        result[fmt_name] = [_format_widget(class_name, w) for w in widgets]
    return result


def _format_widget(class_name: str, widget: list[Any]) -> dict[str, Any]:
    # Shapes: [name, [options]], [name, [options], {default}], [name, "INT", {min...}], [name, [...], {...}, "arg"]
    rest = [widget[1], widget[2]] if len(widget) > 2 and isinstance(widget[2], dict) else [widget[1]]
    return _trim_input(class_name, str(widget[0]), rest, False)


def _type_name(kind: Any) -> str:
    return kind if isinstance(kind, str) else "COMBO"


# ---------------------------------------------------------------------- loading


def schema_from_data(data: Mapping[str, Any]) -> Schema:
    """Build a ``Schema`` from the trimmed form (as written by ``trim_object_info``)."""
    classes = {name: _node_from_data(name, raw) for name, raw in data["classes"].items()}
    return Schema(classes=classes, origin=str(data.get("origin", "")))


def _node_from_data(name: str, raw: Mapping[str, Any]) -> NodeSpec:
    return NodeSpec(
        name=name,
        inputs=tuple(_input_from_data(i) for i in raw["inputs"]),
        outputs=tuple(OutputSpec(o["name"], o["type"], bool(o.get("is_list", False))) for o in raw["outputs"]),
        output_node=bool(raw.get("output_node", False)),
        format_widgets={
            fmt: tuple(_input_from_data(i) for i in widgets) for fmt, widgets in raw.get("format_widgets", {}).items()
        },
    )


def _input_from_data(raw: Mapping[str, Any]) -> InputSpec:
    return InputSpec(
        name=raw["name"],
        type=raw["type"],
        required=bool(raw["required"]),
        options=tuple(raw.get("options", ())),
        default=raw.get("default"),
        min=raw.get("min"),
        max=raw.get("max"),
        step=raw.get("step"),
        upload=raw.get("upload"),
        models_folder=raw.get("models_folder"),
        control_after_generate=bool(raw.get("control_after_generate", False)),
    )


def load_schema() -> Schema:
    """The trimmed schema of the pinned ComfyUI and node packs, shipped in ``wanx/workflows/data/``."""
    text = resources.files("wanx.workflows").joinpath("data/schema.json").read_text(encoding="utf-8")
    return schema_from_data(json.loads(text))
