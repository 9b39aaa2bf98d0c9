"""ComfyUI's ``workflow`` UI graph turned into the shape of its ``prompt`` API graph.

The UI graph (LiteGraph's serialisation, as in the ComfyUI frontend's ``defaultGraph.ts``)
lists ``nodes`` with ``type``, ``mode``, ``inputs`` (``{"name", "link"}``) and positional
``widgets_values``, and ``links`` as ``[id, origin_id, origin_slot, target_id, target_slot,
type]`` (or the same as an object in the schema version 1 files). Widget values carry no names:
the names below follow each node's input order in ComfyUI's ``nodes.py`` and
``comfy_extras/nodes_custom_sampler.py``; the frontend inserts a "control after generate"
value ("randomize", "fixed"...) after a seed. Nodes of other types keep only their links.

Frontend-only nodes are resolved here: a Reroute passes its input through; a PrimitiveNode's
value is already copied into the widget it feeds, so that widget keeps its value.
"""

from __future__ import annotations

from engine.gallery.formats.values import as_int

MAX_NODES = 10_000
MAX_LINKS = 50_000
_CONTROL = "<control after generate>"
_CONTROL_VALUES = ("fixed", "increment", "decrement", "randomize")

# Widget names in the order the frontend saves them, per node type.
WIDGETS: dict[str, tuple[str, ...]] = {
    "KSampler": ("seed", _CONTROL, "steps", "cfg", "sampler_name", "scheduler", "denoise"),
    "KSamplerAdvanced": (
        "add_noise",
        "noise_seed",
        _CONTROL,
        "steps",
        "cfg",
        "sampler_name",
        "scheduler",
        "start_at_step",
        "end_at_step",
        "return_with_leftover_noise",
    ),
    "SamplerCustom": ("add_noise", "noise_seed", _CONTROL, "cfg"),
    "RandomNoise": ("noise_seed", _CONTROL),
    "CFGGuider": ("cfg",),
    "KSamplerSelect": ("sampler_name",),
    "BasicScheduler": ("scheduler", "steps", "denoise"),
    "KarrasScheduler": ("steps", "sigma_max", "sigma_min", "rho"),
    "CLIPTextEncode": ("text",),
    "CLIPTextEncodeSDXL": (
        "width",
        "height",
        "crop_w",
        "crop_h",
        "target_width",
        "target_height",
        "text_g",
        "text_l",
    ),
    "CLIPTextEncodeSDXLRefiner": ("ascore", "width", "height", "text"),
    "EmptyLatentImage": ("width", "height", "batch_size"),
    "EmptySD3LatentImage": ("width", "height", "batch_size"),
    "CheckpointLoaderSimple": ("ckpt_name",),
    "CheckpointLoader": ("config_name", "ckpt_name"),
    "UNETLoader": ("unet_name", "weight_dtype"),
    "LoraLoader": ("lora_name", "strength_model", "strength_clip"),
    "LoraLoaderModelOnly": ("lora_name", "strength_model"),
    "PrimitiveString": ("value",),
    "PrimitiveStringMultiline": ("value",),
    "PrimitiveInt": ("value", _CONTROL),
    "PrimitiveFloat": ("value",),
    "StringConcatenate": ("string_a", "string_b", "delimiter"),
}


def graph_from_workflow(value: object) -> dict[str, dict] | None:
    """An API-shaped graph (``{id: {"class_type", "inputs", "mode"}}``) from a UI workflow;
    None when ``value`` is not one."""
    if not isinstance(value, dict):
        return None
    nodes = value.get("nodes")
    if not isinstance(nodes, list) or not nodes or len(nodes) > MAX_NODES:
        return None
    by_id = {
        str(node["id"]): node
        for node in nodes
        if isinstance(node, dict) and isinstance(node.get("type"), str) and "id" in node
    }
    links = _links(value.get("links"))
    graph = {node_id: _api_node(node, by_id, links) for node_id, node in by_id.items()}
    return graph or None


def _links(raw: object) -> dict[int, tuple[str, int]]:
    """Link id -> (origin node id, origin slot)."""
    links: dict[int, tuple[str, int]] = {}
    if not isinstance(raw, list):
        return links
    for entry in raw[:MAX_LINKS]:
        if isinstance(entry, list) and len(entry) >= 3:
            link_id, origin, slot = as_int(entry[0]), entry[1], as_int(entry[2])
        elif isinstance(entry, dict):
            link_id, origin, slot = (
                as_int(entry.get("id")),
                entry.get("origin_id"),
                as_int(entry.get("origin_slot")),
            )
        else:
            continue
        if link_id is not None and slot is not None and isinstance(origin, (int, str)):
            links[link_id] = (str(origin), slot)
    return links


def _api_node(node: dict, by_id: dict[str, dict], links: dict[int, tuple[str, int]]) -> dict:
    kind = node["type"]
    inputs = _widget_inputs(kind, node.get("widgets_values"))
    for entry in _list(node.get("inputs")):
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            continue
        origin = _origin(as_int(entry.get("link")), by_id, links)
        if origin is None:
            continue
        if by_id[origin[0]].get("type") == "PrimitiveNode" and entry["name"] in inputs:
            continue  # the widget already holds the primitive's value
        inputs[entry["name"]] = [origin[0], origin[1]]
    return {"class_type": kind, "inputs": inputs, "mode": node.get("mode")}


def _origin(
    link_id: int | None, by_id: dict[str, dict], links: dict[int, tuple[str, int]]
) -> tuple[str, int] | None:
    """Where a link really starts: Reroute nodes (frontend only) are passed through."""
    for _ in range(64):
        origin = links.get(link_id) if link_id is not None else None
        if origin is None or origin[0] not in by_id:
            return None
        node = by_id[origin[0]]
        if node.get("type") != "Reroute":
            return origin
        entries = _list(node.get("inputs")) or [{}]
        link_id = as_int(entries[0].get("link")) if isinstance(entries[0], dict) else None
    return None


def _widget_inputs(kind: str, values: object) -> dict[str, object]:
    if isinstance(values, dict):  # some custom nodes save their widgets by name
        return {str(k): v for k, v in values.items()}
    names = WIDGETS.get(kind)
    if names is None or not isinstance(values, list):
        return {}
    inputs: dict[str, object] = {}
    position = 0
    for name in names:
        if position >= len(values):
            break
        value = values[position]
        if name == _CONTROL:
            if isinstance(value, bool) or value in _CONTROL_VALUES:
                position += 1  # present: skip it
            continue
        inputs[name] = value
        position += 1
    return inputs


def _list(value: object) -> list:
    return value if isinstance(value, list) else []
