"""Generation parameters as other apps store them, read into the normalised form of core.io.metadata.

- ComfyUI: `prompt` (the API graph: node id -> class_type, inputs) and `workflow` (the editor's graph)
  chunks. We find the sampler (KSampler, KSamplerAdvanced) of the first pass and follow its links: seed,
  steps, cfg, sampler, scheduler, denoise; the text of the CLIPTextEncode nodes feeding `positive` and
  `negative`; size from the empty latent; clip skip from CLIPSetLastLayer; the checkpoint; LoRA loaders.
- Fooocus: JSON in `parameters` (`fooocus_scheme` = "fooocus").
- NovelAI: `Comment` JSON (and `Description`, the prompt), `Software` = "NovelAI".
- InvokeAI: `invokeai_metadata` JSON (3.x and later).

Every reader takes the chunks (str -> str) and returns the normalised dict or None when the chunks are not
its format. They never raise on odd content: a value of the wrong type is left out (and
core.io.metadata.parameters_from_chunks treats a reader that fails anyway as "not its format").
"""

from __future__ import annotations

import ast
import json
import math
import re
from pathlib import PurePosixPath, PureWindowsPath
from typing import Any

from ..lora.tags import lora_tag
from ..sampling.registry import sampler_from_label, schedule_from_label

MAX_LINK_DEPTH = 64


def _json(text: str | None) -> Any:
    if not text or not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except (json.JSONDecodeError, RecursionError, ValueError):
        return None


def _int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            return None
    return None


def _float(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError, OverflowError):
        return None
    return number if math.isfinite(number) else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _stem(name: Any) -> str | None:
    """A model name without folders and extension: "SD1.5\\dreamshaper_8.safetensors" -> "dreamshaper_8"."""
    if not isinstance(name, str) or not name:
        return None
    return PurePosixPath(PureWindowsPath(name).name).stem


def _lora_name(name: Any) -> str | None:
    """A LoRA's name as a prompt tag says it: the file name without folders and without a model file's
    extension ("loras\\style_v1.0.safetensors" -> "style_v1.0"; a bare "style_v1.0" stays whole)."""
    if not isinstance(name, str) or not name:
        return None
    base = PurePosixPath(PureWindowsPath(name).name).name
    for suffix in (".safetensors", ".pt", ".ckpt", ".bin"):
        if base.lower().endswith(suffix):
            return base[: -len(suffix)]
    return base


def _put(result: dict, key: str, value: Any) -> None:
    if value is not None:
        result[key] = value


def sampler_and_schedule(sampler: Any, scheduler: Any, result: dict, ignored: list[str]) -> None:
    """ComfyUI's (and Fooocus') sampler_name and scheduler into ours; "_gpu" variants draw their Brownian
    noise on the GPU, which we cannot reproduce: the nearest sampler, and a note."""
    name = _text(sampler)
    if name:
        base = name[:-4] if name.endswith("_gpu") else name
        ours, _ = sampler_from_label(base)
        result["sampler"] = ours or name
        if ours and base != name:
            ignored.append(f"{name}'s GPU noise (its CPU twin is used)")
    schedule = _text(scheduler)
    if schedule:
        result["schedule"] = schedule_from_label(schedule) or schedule


# ---------------------------------------------------------------------------------------------- ComfyUI

# Widget order of the editor's nodes, for a `workflow` without its `prompt` (the API graph names them)
WIDGETS = {
    "KSampler": ["seed", None, "steps", "cfg", "sampler_name", "scheduler", "denoise"],  # None: control_after_generate
    "KSamplerAdvanced": ["add_noise", "noise_seed", None, "steps", "cfg", "sampler_name", "scheduler",
                         "start_at_step", "end_at_step", "return_with_leftover_noise"],
    "CLIPTextEncode": ["text"],
    "ModelSamplingDiscrete": ["sampling", "zsnr"],
    "RescaleCFG": ["multiplier"],
    "EmptyLatentImage": ["width", "height", "batch_size"],
    "EmptySD3LatentImage": ["width", "height", "batch_size"],
    "CheckpointLoaderSimple": ["ckpt_name"],
    "CLIPSetLastLayer": ["stop_at_clip_layer"],
    "LoraLoader": ["lora_name", "strength_model", "strength_clip"],
    "LoraLoaderModelOnly": ["lora_name", "strength_model"],
    "PrimitiveNode": ["value"],
}
SAMPLER_NODES = ("KSampler", "KSamplerAdvanced")
LATENT_SOURCES = ("EmptyLatentImage", "EmptySD3LatentImage")
# nodes between a sampler and its conditioning that pass one conditioning on
CONDITIONING_INPUTS = ("conditioning", "conditioning_to", "conditioning_1", "positive", "negative")


def workflow_as_prompt(workflow: Any) -> dict | None:
    """The editor's graph (`workflow`: nodes with widgets_values, links) as an API graph for the node types
    we read; None when it is not one."""
    if not isinstance(workflow, dict) or not isinstance(workflow.get("nodes"), list):
        return None
    links: dict[int | str, tuple[str, Any]] = {}
    listed = workflow.get("links")
    for link in listed if isinstance(listed, list) else []:
        if isinstance(link, list) and len(link) >= 3 and isinstance(link[0], (int, str)):
            links[link[0]] = (str(link[1]), link[2])
        elif isinstance(link, dict) and isinstance(link.get("id"), (int, str)):
            links[link["id"]] = (str(link.get("origin_id")), link.get("origin_slot", 0))
    graph: dict[str, dict] = {}
    for node in workflow["nodes"]:
        if not isinstance(node, dict) or "id" not in node:
            continue
        kind = str(node.get("type", ""))
        inputs: dict[str, Any] = {}
        widgets = node.get("widgets_values")
        names = WIDGETS.get(kind, [])
        if isinstance(widgets, list):
            for name, value in zip(names, widgets):
                if name is not None:
                    inputs[name] = value
        slots = node.get("inputs")
        for slot in slots if isinstance(slots, list) else []:
            link = slot.get("link") if isinstance(slot, dict) else None
            if isinstance(link, (int, str)) and link in links:
                inputs[str(slot.get("name"))] = list(links[link])
        if node.get("mode") in (2, 4):  # muted or bypassed
            continue
        graph[str(node["id"])] = {"class_type": kind, "inputs": inputs}
    return graph


def _node(graph: dict, link: Any) -> dict | None:
    if isinstance(link, list) and link and str(link[0]) in graph:
        node = graph[str(link[0])]
        return node if isinstance(node, dict) else None
    return None


def _inputs(node: dict | None) -> dict:
    inputs = (node or {}).get("inputs")
    return inputs if isinstance(inputs, dict) else {}


def _value(graph: dict, value: Any, depth: int = 0) -> Any:
    """A widget value, following a link to a primitive or string node."""
    if not isinstance(value, list) or depth > MAX_LINK_DEPTH:
        return value
    node = _node(graph, value)
    if node is None:
        return None
    inputs = _inputs(node)
    for key in ("value", "text", "string", "seed", "noise_seed", "int", "float", "number", "Text"):
        if key in inputs:
            return _value(graph, inputs[key], depth + 1)
    return None


def _conditioning_text(graph: dict, link: Any, ignored: list[str], depth: int = 0) -> str | None:
    """The prompt text a conditioning link carries: a text-encode node's text, through the nodes that pass
    a conditioning on (ControlNet, area, combine ...)."""
    node = _node(graph, link)
    if node is None or depth > MAX_LINK_DEPTH:
        return None
    kind, inputs = str(node.get("class_type", "")), _inputs(node)
    for key in ("text", "text_g", "prompt"):
        if key in inputs:
            text = _value(graph, inputs[key])
            return text if isinstance(text, str) else None
    if "ControlNet" in kind and "ControlNet" not in ignored:
        ignored.append("ControlNet")
    for key in CONDITIONING_INPUTS:
        if key in inputs:
            return _conditioning_text(graph, inputs[key], ignored, depth + 1)
    return None


def _latent(graph: dict, link: Any, result: dict, ignored: list[str], depth: int = 0) -> None:
    node = _node(graph, link)
    if node is None or depth > MAX_LINK_DEPTH:
        return
    kind, inputs = str(node.get("class_type", "")), _inputs(node)
    if kind in LATENT_SOURCES or ("width" in inputs and "height" in inputs and "batch_size" in inputs):
        _put(result, "width", _int(_value(graph, inputs.get("width"))))
        _put(result, "height", _int(_value(graph, inputs.get("height"))))
        _put(result, "batch_size", _int(_value(graph, inputs.get("batch_size"))))
    elif kind.startswith("VAEEncode"):
        result["mode"] = "inpaint" if "mask" in inputs or "Inpaint" in kind else "img2img"
    elif "samples" in inputs:  # an upscale or other latent step between passes
        _latent(graph, inputs["samples"], result, ignored, depth + 1)


def _model_chain(graph: dict, link: Any, result: dict, ignored: list[str], depth: int = 0) -> None:
    node = _node(graph, link)
    if node is None or depth > MAX_LINK_DEPTH:
        return
    kind, inputs = str(node.get("class_type", "")), _inputs(node)
    if "lora_name" in inputs:
        name = _lora_name(_value(graph, inputs["lora_name"]))
        unet = _float(_value(graph, inputs.get("strength_model", 1.0)))
        text = _float(_value(graph, inputs.get("strength_clip", 0.0 if "clip" not in inputs else 1.0)))
        if name:
            result.setdefault("lora_tags", []).insert(0, lora_tag(name, 1.0 if unet is None else unet, text))
    elif "ckpt_name" in inputs:
        _put(result, "model", _stem(_value(graph, inputs["ckpt_name"])))
        return
    elif kind == "ModelSamplingDiscrete" and _value(graph, inputs.get("sampling")) in ("eps", "v_prediction"):
        result["prediction"] = "v" if _value(graph, inputs["sampling"]) == "v_prediction" else "eps"
        zsnr = _value(graph, inputs.get("zsnr"))
        if isinstance(zsnr, bool):  # (the node replaces the checkpoint's own sampling: False means SD's schedule)
            result["noise_schedule"] = "zsnr" if zsnr else "default"
    elif kind == "RescaleCFG" and _float(_value(graph, inputs.get("multiplier"))) is not None:
        result["rescale_cfg"] = _float(_value(graph, inputs["multiplier"]))
    elif kind not in ("", "Reroute"):
        ignored.append(f"ComfyUI node {kind}")
    if "model" in inputs:
        _model_chain(graph, inputs["model"], result, ignored, depth + 1)


def _clip_skip(graph: dict, link: Any, depth: int = 0) -> int | None:
    node = _node(graph, link)
    if node is None or depth > MAX_LINK_DEPTH:
        return None
    inputs = _inputs(node)
    if "stop_at_clip_layer" in inputs:
        layer = _int(_value(graph, inputs["stop_at_clip_layer"]))
        return -layer if layer is not None and layer < 0 else None
    if "clip" in inputs:
        return _clip_skip(graph, inputs["clip"], depth + 1)
    return None


def _first_pass(graph: dict) -> tuple[tuple[str, dict], int] | None:
    """((id, node), how many samplers) of the sampler node that starts from an empty latent (or an encoded
    image), else the first one."""
    samplers = [(key, node) for key, node in graph.items()
                if isinstance(node, dict) and node.get("class_type") in SAMPLER_NODES]
    if not samplers:
        return None

    def starts_fresh(node: dict) -> bool:
        source = _node(graph, _inputs(node).get("latent_image"))
        kind = str((source or {}).get("class_type", ""))
        return kind in LATENT_SOURCES or kind.startswith("VAEEncode")

    samplers.sort(key=lambda item: (not starts_fresh(item[1]), _int(item[0]) if _int(item[0]) is not None else 0))
    return samplers[0], len(samplers)


def comfyui_parameters(chunks: dict[str, str]) -> dict | None:
    graph = _json(chunks.get("prompt"))
    if not (isinstance(graph, dict) and any(isinstance(n, dict) and "class_type" in n for n in graph.values())):
        graph = workflow_as_prompt(_json(chunks.get("workflow")))
    if not graph:
        return None
    found = _first_pass(graph)
    if found is None:
        return None
    (_, sampler), count = found
    if not isinstance(sampler.get("inputs"), dict):
        return None
    inputs = _inputs(sampler)
    result: dict[str, Any] = {"source": "ComfyUI", "prompt": "", "negative_prompt": "", "emphasis": "ComfyUI",
                              "rng": "cpu"}
    ignored: list[str] = []
    seed = _value(graph, inputs.get("seed", inputs.get("noise_seed")))
    _put(result, "seed", _int(seed))
    _put(result, "steps", _int(_value(graph, inputs.get("steps"))))
    _put(result, "cfg_scale", _float(_value(graph, inputs.get("cfg"))))
    sampler_and_schedule(_value(graph, inputs.get("sampler_name")), _value(graph, inputs.get("scheduler")),
                         result, ignored)
    result["prompt"] = _conditioning_text(graph, inputs.get("positive"), ignored) or ""
    result["negative_prompt"] = _conditioning_text(graph, inputs.get("negative"), ignored) or ""
    _latent(graph, inputs.get("latent_image"), result, ignored)
    denoise = _float(_value(graph, inputs.get("denoise")))
    if denoise is not None and denoise < 1.0:
        result["strength"] = denoise
    start = _int(_value(graph, inputs.get("start_at_step")))
    if start:
        ignored.append(f"KSamplerAdvanced start at step {start}")
    _model_chain(graph, inputs.get("model"), result, ignored)
    positive = _node(graph, inputs.get("positive"))
    clip_skip = _clip_skip(graph, _inputs(positive).get("clip")) if positive else None
    result["clip_skip"] = clip_skip or 1
    if count > 1:
        ignored.append(f"{count - 1} more sampler pass{'es' if count > 2 else ''} (hires fix, refiner)")
    if (result.get("batch_size") or 1) > 1:
        ignored.append("ComfyUI's batch noise (the first image reproduces)")
    tags = result.pop("lora_tags", [])
    if tags:  # ComfyUI's LoRA loaders as A1111's prompt tags, which the window resolves against its folders
        result["prompt"] = " ".join([result["prompt"], *tags]).strip()
    result["ignored"] = list(dict.fromkeys(ignored))
    return result


# ---------------------------------------------------------------------------------------------- Fooocus


def _literal(value: Any) -> Any:
    """Fooocus writes tuples and lists as Python text: "(1152, 896)", "['Fooocus V2']"."""
    if not isinstance(value, str):
        return value
    try:
        return ast.literal_eval(value)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return None


def fooocus_parameters(chunks: dict[str, str]) -> dict | None:
    data = _json(chunks.get("parameters"))
    if not isinstance(data, dict):
        return None
    scheme = chunks.get("fooocus_scheme") or data.get("metadata_scheme")
    if scheme != "fooocus" and not {"guidance_scale", "base_model", "full_prompt"} & set(data):
        return None
    result: dict[str, Any] = {"source": "Fooocus", "rng": "cpu", "emphasis": "Original"}
    ignored: list[str] = []
    full = data.get("full_prompt")
    prompt = ", ".join(p for p in full if isinstance(p, str)) if isinstance(full, list) and full else None
    result["prompt"] = prompt if prompt is not None else (_text(data.get("prompt")) or "")
    full_negative = data.get("full_negative_prompt")
    negative = (", ".join(p for p in full_negative if isinstance(p, str))
                if isinstance(full_negative, list) and full_negative else None)
    result["negative_prompt"] = negative if negative is not None else (_text(data.get("negative_prompt")) or "")
    _put(result, "seed", _int(data.get("seed")))
    _put(result, "steps", _int(data.get("steps")))
    _put(result, "cfg_scale", _float(data.get("guidance_scale")))
    sampler_and_schedule(data.get("sampler"), data.get("scheduler"), result, ignored)
    size = _literal(data.get("resolution"))
    if isinstance(size, (tuple, list)) and len(size) == 2:
        _put(result, "width", _int(size[0]))
        _put(result, "height", _int(size[1]))
    clip_skip = _int(data.get("clip_skip"))
    result["clip_skip"] = clip_skip if clip_skip and clip_skip > 0 else 1
    _put(result, "model", _stem(data.get("base_model")))
    _put(result, "model_hash", _text(data.get("base_model_hash")))
    _put(result, "version", _text(data.get("version")))
    sharpness = _float(data.get("sharpness"))
    if sharpness:
        ignored.append("Fooocus sharpness")
    if _text(data.get("refiner_model")) not in (None, "", "None"):
        ignored.append("Refiner")
    loras = data.get("loras")
    tags = [lora_tag(_lora_name(lora[0]) or str(lora[0]), _float(lora[1]) if len(lora) > 1 and _float(lora[1]) is not None
                     else 1.0) for lora in (loras if isinstance(loras, list) else [])
            if isinstance(lora, list) and lora and isinstance(lora[0], str) and lora[0] != "None"]
    if tags:
        result["prompt"] = " ".join([result["prompt"], *tags]).strip()
    if data.get("freeu"):
        ignored.append("FreeU")
    styles = _literal(data.get("styles"))
    if prompt is None and isinstance(styles, list) and styles:
        ignored.append("Fooocus styles")
    result["ignored"] = ignored
    return result


# ---------------------------------------------------------------------------------------------- NovelAI

NOVELAI_SAMPLERS = {"k_euler": "euler", "k_euler_ancestral": "euler_a", "k_dpmpp_2m": "dpmpp_2m",
                    "k_dpmpp_2s_ancestral": "dpmpp_2s_a", "k_dpmpp_sde": "dpmpp_sde", "k_dpmpp_2m_sde": "dpmpp_2m_sde",
                    "ddim": "ddim", "k_lms": "lms", "k_heun": "heun", "k_dpm_2": "dpm2",
                    "k_dpm_2_ancestral": "dpm2_a"}
NOVELAI_SCHEDULES = {"native": None, "karras": "karras", "exponential": "exponential"}


def novelai_parameters(chunks: dict[str, str]) -> dict | None:
    data = _json(chunks.get("Comment"))
    if not isinstance(data, dict) or not (chunks.get("Software") == "NovelAI" or "uc" in data and "scale" in data):
        return None
    result: dict[str, Any] = {"source": "NovelAI", "emphasis": "Original", "clip_skip": 1}
    ignored: list[str] = []
    result["prompt"] = _text(data.get("prompt")) or _text(chunks.get("Description")) or ""
    result["negative_prompt"] = _text(data.get("uc")) or ""
    _put(result, "seed", _int(data.get("seed")))
    _put(result, "steps", _int(data.get("steps")))
    _put(result, "cfg_scale", _float(data.get("scale")))
    _put(result, "width", _int(data.get("width")))
    _put(result, "height", _int(data.get("height")))
    sampler = _text(data.get("sampler"))
    if sampler:
        result["sampler"] = NOVELAI_SAMPLERS.get(sampler, sampler)
    schedule = _text(data.get("noise_schedule"))
    if schedule:
        ours = NOVELAI_SCHEDULES.get(schedule, schedule)
        if ours:
            result["schedule"] = ours
    strength = _float(data.get("strength"))
    if strength is not None and data.get("request_type") != "PromptGenerateRequest" and strength < 1:
        result["strength"] = strength
    _put(result, "model", _text(chunks.get("Source")))
    if re.search(r"[{}]", result["prompt"] + result["negative_prompt"]):
        ignored.append("NovelAI's {…} emphasis (read as text)")
    ignored.append("NovelAI's own noise and models")
    result["ignored"] = ignored
    return result


# ---------------------------------------------------------------------------------------------- InvokeAI

# InvokeAI's scheduler names: its diffusers scheduler; "_k" = Karras sigmas
INVOKEAI_SAMPLERS = {"ddim": "ddim", "ddpm": "ddpm", "euler": "euler", "euler_a": "euler_a", "heun": "heun",
                     "lms": "lms", "kdpm_2": "dpm2", "kdpm_2_a": "dpm2_a", "dpmpp_2s": "dpmpp_2s_a",
                     "dpmpp_2m": "dpmpp_2m", "dpmpp_2m_sde": "dpmpp_2m_sde", "dpmpp_sde": "dpmpp_sde",
                     "unipc": "unipc", "lcm": "lcm"}
COMPEL_WEIGHTS = re.compile(r"\)[+-]+|\)\d|\w[+-]{2,}|\.(?:and|blend)\(")


def invokeai_parameters(chunks: dict[str, str]) -> dict | None:
    data = _json(chunks.get("invokeai_metadata"))
    if not isinstance(data, dict):
        return None
    result: dict[str, Any] = {"source": "InvokeAI", "emphasis": "Original"}
    ignored: list[str] = []
    result["prompt"] = _text(data.get("positive_prompt")) or ""
    result["negative_prompt"] = _text(data.get("negative_prompt")) or ""
    _put(result, "seed", _int(data.get("seed")))
    _put(result, "steps", _int(data.get("steps")))
    _put(result, "cfg_scale", _float(data.get("cfg_scale")))
    _put(result, "width", _int(data.get("width")))
    _put(result, "height", _int(data.get("height")))
    scheduler = _text(data.get("scheduler"))
    if scheduler:
        karras = scheduler.endswith("_k")
        base = scheduler[:-2] if karras else scheduler
        result["sampler"] = INVOKEAI_SAMPLERS.get(base, scheduler)
        result["schedule"] = "karras" if karras else "normal"
    clip_skip = _int(data.get("clip_skip"))
    result["clip_skip"] = (clip_skip or 0) + 1  # InvokeAI counts the layers skipped: 0 = the last layer
    device = _text(data.get("rand_device"))
    result["rng"] = "nv" if device == "cuda" else "cpu"
    strength = _float(data.get("strength"))
    mode = _text(data.get("generation_mode")) or ""
    if strength is not None and ("img2img" in mode or "inpaint" in mode):
        result["strength"] = strength
    model = data.get("model")
    if isinstance(model, dict):
        _put(result, "model", _text(model.get("name")) or _text(model.get("model_name")))
        _put(result, "model_hash", _text(model.get("hash")))
    _put(result, "version", _text(data.get("app_version")))
    loras = data.get("loras")
    tags = []
    for lora in loras if isinstance(loras, list) else []:
        inner = lora.get("model") or lora.get("lora") if isinstance(lora, dict) else None
        name = _text(inner.get("name") or inner.get("model_name")) if isinstance(inner, dict) else None
        if name:
            weight = _float(lora.get("weight"))
            tags.append(lora_tag(_lora_name(name) or name, 1.0 if weight is None else weight))
        else:
            ignored.append("a LoRA without a name")
    if tags:
        result["prompt"] = " ".join([result["prompt"], *tags]).strip()
    if data.get("hrf_enabled"):
        ignored.append("Hires fix")
    if data.get("refiner_model"):
        ignored.append("Refiner")
    if COMPEL_WEIGHTS.search(result["prompt"] + " " + result["negative_prompt"]):
        ignored.append("InvokeAI's compel weights (read as text)")
    result["ignored"] = ignored
    return result
