"""ComfyUI's PNG texts: the ``prompt`` API graph, with the ``workflow`` UI graph as fallback.

ComfyUI's SaveImage (``nodes.py``) writes ``json.dumps(prompt)`` as the tEXt chunk ``prompt``
and each key of ``extra_pnginfo`` (the UI sends ``workflow``) as its own tEXt chunk. The API
graph maps node ids to ``{"class_type": ..., "inputs": {...}}``; an input is a value or a link
``[node_id, output_index]``. The parameters are not stored as such: they are where the graph
says. From the sampler node (KSampler, KSamplerAdvanced, SamplerCustom, SamplerCustomAdvanced;
their inputs are those of ``nodes.py`` and ``comfy_extras/nodes_custom_sampler.py``) the links
lead back through conditioning nodes to the text encoders' ``text``, through LoRA loaders to
the checkpoint loader's ``ckpt_name``, and through the latent to EmptyLatentImage's size.

Nothing is executed: the graph is only read. Every walk is bounded in depth and remembers the
nodes it visited, so a cycle or a graph built to be deep ends the walk, not the program.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from engine.gallery.formats.comfyui_workflow import graph_from_workflow
from engine.gallery.formats.values import (
    as_float,
    as_int,
    as_text,
    bounded,
    load_json,
    setting_text,
)
from engine.gallery.recovered import RecoveredParameters

TOOL = "ComfyUI"
SAMPLER_TYPES = ("KSampler", "KSamplerAdvanced", "SamplerCustom", "SamplerCustomAdvanced")
MAX_NODES = 10_000
MAX_DEPTH = 64  # links followed in one walk; real graphs need a handful
_MUTED_MODES = (2, 4)  # the UI's "never" and "bypass": such a sampler did not run
_LATENT_INPUTS = ("latent_image", "samples", "latent", "latents", "source")

Graph = dict[str, dict]


def read_comfyui(prompt_text: str | None, workflow_text: str | None) -> RecoveredParameters:
    """What the graphs say; a record with only notes when neither can be read."""
    graph = graph_from_prompt(load_json(prompt_text))
    used = "prompt"
    if graph is None:
        graph = graph_from_workflow(load_json(workflow_text))
        used = "workflow"
    raw = bounded(prompt_text if used == "prompt" else workflow_text)
    if graph is None:
        return RecoveredParameters(
            tool=TOOL, notes=("The ComfyUI graph in this file could not be read.",), text=raw
        )
    if len(graph) > MAX_NODES:
        note = f"The ComfyUI graph has more than {MAX_NODES} nodes: not read."
        return RecoveredParameters(tool=TOOL, notes=(note,), text=raw)
    found = _Walker(graph).read()
    notes = list(found.notes)
    if used == "workflow":
        notes.insert(0, "Read from the UI workflow (the file has no API prompt graph).")
    return RecoveredParameters(
        tool=TOOL,
        prompt=found.prompt,
        negative_prompt=found.negative,
        seed=found.seed,
        steps=found.steps,
        cfg_scale=found.cfg,
        sampler=found.sampler,
        schedule=found.scheduler,
        width=found.width,
        height=found.height,
        model=found.model,
        strength=found.strength,
        settings=found.settings,
        notes=tuple(notes),
        text=raw,
    )


def graph_from_prompt(value: object) -> Graph | None:
    """The API graph's nodes by id, keeping only well-formed ones; None when it is not one."""
    if not isinstance(value, dict):
        return None
    graph = {
        str(key): node
        for key, node in value.items()
        if isinstance(node, dict) and isinstance(node.get("class_type"), str)
    }
    return graph or None


def is_link(value: object) -> bool:
    return (
        isinstance(value, list)
        and len(value) == 2
        and isinstance(value[0], (str, int))
        and not isinstance(value[0], bool)
        and isinstance(value[1], int)
        and not isinstance(value[1], bool)
    )


@dataclass
class _Found:
    prompt: str | None = None
    negative: str | None = None
    seed: int | None = None
    steps: int | None = None
    cfg: float | None = None
    sampler: str | None = None
    scheduler: str | None = None
    width: int | None = None
    height: int | None = None
    model: str | None = None
    strength: float | None = None
    settings: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


@dataclass
class _SamplerView:
    """A sampler node's parameters, whichever of the four node types it is."""

    node_id: str
    seed: object = None
    steps: object = None
    cfg: object = None
    sampler_name: object = None
    scheduler: object = None
    denoise: object = None
    positive: object = None
    negative: object = None
    model: object = None
    latent: object = None


class _Walker:
    def __init__(self, graph: Graph) -> None:
        self.graph = graph

    # --- the whole record ---------------------------------------------------------------------

    def read(self) -> _Found:
        found = _Found()
        sampler_id = self._main_sampler(found)
        if sampler_id is None:
            found.notes.append("No sampler node (KSampler or SamplerCustom) in the graph.")
            return found
        view = self._view(sampler_id)
        found.seed = as_int(self._scalar(view.seed))
        found.steps = as_int(self._scalar(view.steps))
        found.cfg = as_float(self._scalar(view.cfg))
        found.sampler = as_text(self._scalar(view.sampler_name))
        found.scheduler = as_text(self._scalar(view.scheduler))
        found.prompt = self._prompt(view.positive, "positive", found)
        found.negative = self._prompt(view.negative, "negative", found)
        found.model = self._model(view.model, found)
        size, from_empty = self._size(view.latent)
        found.width, found.height = size
        denoise = as_float(self._scalar(view.denoise))
        if denoise is not None:
            found.settings["denoise"] = setting_text(denoise)
            if not from_empty and denoise < 1:
                found.strength = denoise  # sampling an encoded picture: img2img
        kind = self.graph[sampler_id]["class_type"]
        found.settings["sampler node"] = f"{kind} (node {sampler_id})"
        return found

    def _main_sampler(self, found: _Found) -> str | None:
        """The sampler that starts from an empty latent (the first pass; later ones refine it),
        else the first one by node id."""
        samplers = [
            node_id
            for node_id, node in sorted(self.graph.items(), key=lambda item: _id_order(item[0]))
            if node["class_type"] in SAMPLER_TYPES and node.get("mode") not in _MUTED_MODES
        ]
        if not samplers:
            return None
        starts = [s for s in samplers if self._size(self._view(s).latent)[1]]
        chosen = starts[0] if starts else samplers[0]
        if len(samplers) > 1:
            why = "the first one starting from an empty latent" if starts else "the first one"
            found.notes.append(
                f"The graph has {len(samplers)} samplers: read node {chosen}, {why}."
            )
        return chosen

    # --- the four sampler node types ----------------------------------------------------------

    def _view(self, node_id: str) -> _SamplerView:
        node = self.graph[node_id]
        inputs = _inputs(node)
        kind = node["class_type"]
        view = _SamplerView(node_id, latent=inputs.get("latent_image"))
        if kind in ("KSampler", "KSamplerAdvanced"):
            view.seed = inputs.get("seed", inputs.get("noise_seed"))
            view.steps, view.cfg = inputs.get("steps"), inputs.get("cfg")
            view.sampler_name, view.scheduler = inputs.get("sampler_name"), inputs.get("scheduler")
            view.denoise = inputs.get("denoise")
            view.positive, view.negative = inputs.get("positive"), inputs.get("negative")
            view.model = inputs.get("model")
            return view
        if kind == "SamplerCustom":
            view.seed, view.cfg = inputs.get("noise_seed"), inputs.get("cfg")
            view.positive, view.negative = inputs.get("positive"), inputs.get("negative")
            view.model = inputs.get("model")
        else:  # SamplerCustomAdvanced: noise, guider, sampler and sigmas come from other nodes
            noise = _inputs(self._target(inputs.get("noise")))
            view.seed = noise.get("noise_seed", noise.get("seed"))
            guider = _inputs(self._target(inputs.get("guider")))
            view.cfg = guider.get("cfg")
            view.positive = guider.get("positive", guider.get("conditioning"))
            view.negative = guider.get("negative")
            view.model = guider.get("model")
        view.sampler_name = _inputs(self._target(inputs.get("sampler"))).get("sampler_name")
        self._sigmas(inputs.get("sigmas"), view)
        return view

    def _sigmas(self, link: object, view: _SamplerView) -> None:
        node = self._target(link)
        if node is None:
            return
        inputs = _inputs(node)
        view.steps, view.denoise = inputs.get("steps"), inputs.get("denoise")
        view.scheduler = inputs.get("scheduler")
        kind = node["class_type"]
        if view.scheduler is None and kind.endswith("Scheduler"):
            # KarrasScheduler, ExponentialScheduler...: the schedule is the node's kind.
            view.scheduler = kind[: -len("Scheduler")].lower() or None

    # --- following links ----------------------------------------------------------------------

    def _target(self, link: object) -> dict | None:
        if not is_link(link):
            return None
        return self.graph.get(str(link[0]))  # type: ignore[index]

    def _scalar(self, value: object, depth: int = 0) -> object:
        """A widget value, or the value of the primitive node a link points at."""
        if not is_link(value):
            return value
        node = self._target(value)
        if node is None or depth >= MAX_DEPTH:
            return None
        inputs = _inputs(node)
        for key in ("value", "seed", "noise_seed", "int", "float", "number", "string", "text"):
            if key in inputs:
                return self._scalar(inputs[key], depth + 1)
        scalars = [v for v in inputs.values() if not isinstance(v, (list, dict))]
        return scalars[0] if len(scalars) == 1 else None

    def _string(self, value: object, seen: set[str], depth: int) -> str | None:
        """Text given directly or through string nodes (primitives, concatenation)."""
        if isinstance(value, str):
            return value
        node = self._target(value)
        if node is None or depth >= MAX_DEPTH or str(value[0]) in seen:  # type: ignore[index]
            return None
        seen = seen | {str(value[0])}  # type: ignore[index]
        inputs = _inputs(node)
        if "string_a" in inputs:  # StringConcatenate
            parts = [self._string(inputs.get(k), seen, depth + 1) for k in ("string_a", "string_b")]
            delimiter = as_text(inputs.get("delimiter")) or ""
            return delimiter.join(p for p in parts if p is not None)
        for key in ("value", "text", "string", "prompt", "text_g"):
            if key in inputs:
                return self._string(inputs[key], seen, depth + 1)
        return None

    def _prompt(self, link: object, side: str, found: _Found) -> str | None:
        texts = self._texts(link, set(), 0)
        unique = list(dict.fromkeys(t for t in texts if t is not None))
        if not unique and link is not None:
            found.notes.append(f"The {side} prompt's text could not be traced in the graph.")
        if len(unique) > 1:
            found.notes.append(
                f"The {side} prompt joins {len(unique)} texts that ComfyUI encoded separately "
                "and combined, one per line."
            )
        return "\n".join(unique) if unique else None

    def _texts(self, link: object, seen: set[str], depth: int) -> list[str | None]:
        """The texts encoded into the conditioning at ``link``, following conditioning nodes
        (combine, concat, set area, ControlNet...) back to the text encoders."""
        node = self._target(link)
        if node is None or depth >= MAX_DEPTH or str(link[0]) in seen:  # type: ignore[index]
            return []
        seen.add(str(link[0]))  # type: ignore[index]
        inputs = _inputs(node)
        if "text" in inputs:  # CLIPTextEncode and the many encoders shaped like it
            return [self._string(inputs["text"], set(), depth + 1)]
        if "text_g" in inputs or "text_l" in inputs:  # CLIPTextEncodeSDXL
            return [self._string(inputs.get(k), set(), depth + 1) for k in ("text_g", "text_l")]
        if "positive" in inputs and "negative" in inputs:
            # ControlNetApplyAdvanced and kin pass both through: output 0 positive, 1 negative.
            side = "negative" if link[1] == 1 else "positive"  # type: ignore[index]
            return self._texts(inputs[side], seen, depth + 1)
        texts: list[str | None] = []
        for name, value in inputs.items():
            if "conditioning" in name or name in ("positive", "negative", "cond"):
                texts += self._texts(value, seen, depth + 1)
        return texts

    def _model(self, link: object, found: _Found) -> str | None:
        """The checkpoint's name, through LoRA loaders and model patches; LoRAs into settings."""
        loras: list[str] = []
        seen: set[str] = set()
        for _ in range(MAX_DEPTH):
            node = self._target(link)
            if node is None or str(link[0]) in seen:  # type: ignore[index]
                break
            seen.add(str(link[0]))  # type: ignore[index]
            inputs = _inputs(node)
            for key in ("ckpt_name", "unet_name", "model_name"):
                name = as_text(self._scalar(inputs.get(key)))
                if name is not None:
                    _put_loras(found, loras)
                    return name
            lora = as_text(self._scalar(inputs.get("lora_name")))
            if lora is not None:
                strength = as_float(self._scalar(inputs.get("strength_model")))
                loras.append(f"{lora}: {strength if strength is not None else '?'}")
            link = inputs.get("model")
        _put_loras(found, loras)
        return None

    def _size(self, link: object) -> tuple[tuple[int | None, int | None], bool]:
        """((width, height), True) when the latent starts from an empty latent of that size;
        ((None, None), False) for an encoded picture (img2img) or anything unknown."""
        seen: set[str] = set()
        for _ in range(MAX_DEPTH):
            node = self._target(link)
            if node is None or str(link[0]) in seen:  # type: ignore[index]
                break
            seen.add(str(link[0]))  # type: ignore[index]
            if node["class_type"] in SAMPLER_TYPES:
                break  # the latent comes out of another sampler: this one refines it
            inputs = _inputs(node)
            width = as_int(self._scalar(inputs.get("width")))
            height = as_int(self._scalar(inputs.get("height")))
            if width is not None and height is not None and "Empty" in node["class_type"]:
                return (width, height), True
            link = next((inputs[k] for k in _LATENT_INPUTS if is_link(inputs.get(k))), None)
        return (None, None), False


def _inputs(node: dict | None) -> dict:
    inputs = node.get("inputs") if node is not None else None
    return inputs if isinstance(inputs, dict) else {}


def _put_loras(found: _Found, loras: list[str]) -> None:
    if loras:
        found.settings["LoRAs"] = ", ".join(reversed(loras))  # nearest the checkpoint first


def _id_order(node_id: str) -> tuple[int, int | str]:
    """Numeric ids in number order ("9" before "10"), others after them."""
    return (0, int(node_id)) if node_id.isdigit() and len(node_id) < 20 else (1, node_id)
