"""Generation parameters in images: what we write, and what every app's files say, read into one form.

We write two things into each image (core.io.outputs puts them in the file):
- `parameters`: AUTOMATIC1111's infotext (core.io.infotext), which A1111, Forge, ComfyUI's importer,
  Civitai and image viewers read; in JPEG and WebP it is the EXIF UserComment, as A1111 writes it;
- `sd-desktop`: JSON holding the whole request (PNG only), so "restore parameters" loses nothing.

read_parameters reads ours and the files of A1111 (and Forge, Civitai), ComfyUI, Fooocus, NovelAI and
InvokeAI (core.io.foreign) into one normalised dict; restore_request turns it into a request, listing what it
cannot honour. Pure Python + Pillow: no torch here.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
from typing import Any

from PIL import Image

from sd_desktop import __version__

from ..request import MASKED_CONTENT, NOISE_SCHEDULES, PREDICTIONS, RESIZE_MODES, RNG_SOURCES, GenerationRequest, LoraRef
from ..sampling.registry import SAMPLERS, SCHEDULES, schedule_label
from ..text.prompts import EMPHASIS_MODES
from .foreign import comfyui_parameters, fooocus_parameters, invokeai_parameters, novelai_parameters
from .image_text import PARAMETERS_KEY, UnreadableImageError, text_chunks
from .infotext import a1111_parameters, format_parameters, parse_parameters

__all__ = ["PARAMETERS_KEY", "JSON_KEY", "UnreadableImageError", "text_chunks", "format_parameters",
           "parse_parameters", "metadata_json", "read_parameters", "parameters_from_chunks",
           "request_from_parameters", "restore_request", "SOURCES"]

JSON_KEY = "sd-desktop"
JSON_FORMAT = 1
IMAGE_FIELDS = ("init_image", "mask")
SOURCES = ("sd-desktop", "A1111", "ComfyUI", "Fooocus", "NovelAI", "InvokeAI")
log = logging.getLogger(__name__)
# What a restored value must be, beyond its type (the request's own validation, where it needs no model)
IN_RANGE = {"steps": lambda v: 1 <= v <= 1000, "seed": lambda v: 0 <= v < 2**63, "width": lambda v: v > 0,
            "height": lambda v: v > 0, "cfg_scale": lambda v: math.isfinite(v) and v >= 0,
            "strength": lambda v: 0 <= v <= 1, "mask_blur": lambda v: v >= 0, "eta": lambda v: math.isfinite(v) and v >= 0,
            "clip_skip": lambda v: v >= 1, "batch_size": lambda v: v >= 1,
            "emphasis": lambda v: v in EMPHASIS_MODES, "rng": lambda v: v in RNG_SOURCES,
            "ensd": lambda v: 0 <= v < 2**31,
            "variation_strength": lambda v: 0 <= v <= 1, "variation_seed": lambda v: 0 <= v < 2**63,
            "ancestral_eta": lambda v: 0 <= v <= 1,
            "tiled_vae": lambda v: v is None or isinstance(v, bool), "inpaint_padding": lambda v: 0 <= v <= 1024,
            "masked_content": lambda v: v in MASKED_CONTENT, "hires_scale": lambda v: 1 <= v <= 4,
            "hires_steps": lambda v: 0 <= v <= 1000,
            "resize_mode": lambda v: v in RESIZE_MODES, "prediction": lambda v: v in PREDICTIONS,
            "noise_schedule": lambda v: v in NOISE_SCHEDULES,
            "rescale_cfg": lambda v: 0 <= v <= 1, "original_size": lambda v: min(v) >= 1, "crop": lambda v: min(v) >= 0,
            "seed_resize_from": lambda v: 8 <= min(v) and max(v) <= 16384,
            "hires_sampler": lambda v: v in SAMPLERS, "hires_schedule": lambda v: v in SCHEDULES,
            "hires_cfg": lambda v: math.isfinite(v) and v >= 0}
# Fields whose None is a setting (off; the picture's own size), not "not said": restored as None
NONE_IS_SAID = ("seed_resize_from", "original_size", "hires_sampler", "hires_schedule", "hires_cfg")


def image_summary(value: Any) -> Any:
    """What the JSON keeps of an input image: its size when known without reading a file, else True."""
    if value is None:
        return None
    if isinstance(value, Image.Image):
        return {"width": value.width, "height": value.height}
    shape = getattr(value, "shape", None)
    if shape is not None and len(shape) >= 2:
        return {"width": int(shape[1]), "height": int(shape[0])}
    return True


def request_to_json(request: GenerationRequest) -> dict:
    out = {}
    for field in dataclasses.fields(request):
        value = getattr(request, field.name)
        if field.name == "loras":
            value = [dataclasses.asdict(ref) for ref in value]
        elif field.name == "embeddings":
            value = [list(pair) for pair in value]
        out[field.name] = image_summary(value) if field.name in IMAGE_FIELDS else value
    return out


def metadata_json(request: GenerationRequest, *, seed: int, width: int, height: int, model_name: str,
                  model_hash: str | None, mode: str, family: str | None = None,
                  hashes: dict[str, str] | None = None, batch: dict | None = None, vae: str | None = None,
                  vae_hash: str | None = None, taesd: str | None = None, precision: str | None = None,
                  device: str | None = None) -> str:
    """Our JSON chunk. `hashes`: A1111's "Lora hashes"/"TI hashes" fields, which a restore finds renamed
    files by (core.lora.tags.restore_addons reads them from "extras", as from A1111's text). `batch`: which
    job the image belongs to (core.pipelines.generate.BatchTag.record), what the history groups by.
    `precision`, `device`: the networks' dtype ("float32", "bfloat16", "float16") and device type ("cpu", "cuda"
    ...); they change the pixels a little (bf16 against fp32: about 1%), and A1111's text has no field for them."""
    record = {
        "format": JSON_FORMAT,
        "version": __version__,
        "mode": str(mode),
        "family": family,
        "seed": int(seed),
        "width": int(width),
        "height": int(height),
        "model": model_name,
        "model_hash": model_hash,
        "request": request_to_json(request),
    }
    if vae:  # a VAE file that replaced the model's own
        record["vae"], record["vae_hash"] = vae, vae_hash
    if taesd and request.taesd_decode:
        record["taesd"] = taesd
    if precision:
        record["precision"] = precision
    if device:
        record["device"] = device
    if hashes:
        record["hashes"] = dict(hashes)
    if batch:
        record["batch"] = dict(batch)
    # ASCII json always fits a plain tEXt chunk; default=str keeps an odd value from failing the save.
    return json.dumps(record, ensure_ascii=True, default=str)


# ---------------------------------------------------------------------------------------------- reading


def read_parameters(path_or_image: str | os.PathLike | Image.Image) -> dict | None:
    """The generation parameters an image carries, normalised; None when it carries none. Reads text
    only, never the pixels. Raises UnreadableImageError (one line) when the file cannot be read, and
    nothing else: a chunk that is not what it claims is skipped.

    The dict always has "source" (one of SOURCES: the app whose format it is; "A1111" covers Forge, Civitai
    and others writing A1111's text), "prompt" and "negative_prompt". When the file says them: the
    request's fields in our names and types (steps, sampler, schedule, cfg_scale, seed, width, height,
    strength, mask_blur, inpaint_full_res, eta, clip_skip, emphasis, rng, batch_size); a sampler or
    schedule we do not have keeps its label as written; a missing "schedule" means the sampler's own
    (A1111's "Automatic"). Also "model", "model_hash", "version"; "extras": other A1111 pairs as written;
    "ignored": the features it asks for that sd-desktop does not do ("Hires fix", "LoRA x" ...).
    Ours add "mode", "family" and "request" (the request as asked, seed None included), "precision" and "device"
    (the networks' dtype and device type) when written, and "batch" when
    the file says which job it came from: {"id", "index", "size", "seed"} (index within the job, the job's
    image count and its base seed).
    """
    return parameters_from_chunks(text_chunks(path_or_image))


def parameters_from_chunks(chunks: dict[str, str]) -> dict | None:
    """read_parameters on text already read (str -> str, as in a PNG). Ours first, then each app's own
    chunks, then the A1111 text (Fooocus puts JSON there)."""
    if JSON_KEY in chunks:
        record = decode_json_chunk(chunks[JSON_KEY])
        if record is not None:
            return record
    for reader in (comfyui_parameters, invokeai_parameters, novelai_parameters, fooocus_parameters):
        if reader is comfyui_parameters and PARAMETERS_KEY in chunks and not chunks[PARAMETERS_KEY].lstrip().startswith("{"):
            continue  # a ComfyUI image with an A1111 text too (image-saver nodes): the text is explicit
        try:
            found = reader(chunks)
        except (ValueError, TypeError, KeyError, AttributeError, IndexError, OverflowError, RecursionError,
                MemoryError) as error:  # content no reader expected: not that app's parameters
            log.info("%s could not read these chunks: %r", reader.__name__, error)
            found = None
        if found is not None:
            return found
    text = chunks.get(PARAMETERS_KEY)
    if text and not text.lstrip().startswith("{"):
        return a1111_parameters(text)
    return None


def decode_json_chunk(text: str) -> dict | None:
    """Our chunk as the flat dict read_parameters returns; None when it is not ours or is damaged."""
    try:
        record = json.loads(text)
    except (ValueError, RecursionError):  # JSONDecodeError, and numbers of over 4,300 digits
        return None
    if not isinstance(record, dict) or not isinstance(record.get("request"), dict):
        return None
    request = record["request"]
    result = {key: value for key, value in request.items() if key not in IMAGE_FIELDS}
    for field in dataclasses.fields(GenerationRequest):  # a field newer than the file: what it was then
        if field.name not in IMAGE_FIELDS and field.name not in request:
            result[field.name] = field.default
    for key in ("seed", "width", "height"):
        if record.get(key) is not None:
            result[key] = record[key]
    result.update({key: request.get(key) for key in IMAGE_FIELDS})
    result.update({key: record.get(key) for key in ("mode", "family", "model", "model_hash", "version")})
    result.update({key: record[key] for key in ("precision", "device") if isinstance(record.get(key), str)})
    batch = record.get("batch")
    if isinstance(batch, dict) and isinstance(batch.get("id"), str) and all(
            isinstance(batch.get(key), int) and not isinstance(batch.get(key), bool) for key in ("index", "size", "seed")):
        result["batch"] = {key: batch[key] for key in ("id", "index", "size", "seed")}
    hashes = record.get("hashes")
    if isinstance(hashes, dict):
        result["extras"] = {key: value for key, value in hashes.items() if isinstance(value, str)}
    result["request"] = request
    result["source"] = JSON_KEY
    result["ignored"] = []
    return result


def request_from_parameters(params: dict) -> GenerationRequest:
    """Best effort: every field with a usable value is taken, the rest keep their defaults. Never images."""
    return restore_request(params)[0]


def restore_request(params: dict, current: GenerationRequest | None = None) -> tuple[GenerationRequest, list[str]]:
    """(`current` with every value of `params` we can honour, what we cannot, one short phrase each).

    A sampler or schedule we do not have keeps the current one, said as "sampler DPM adaptive Karras →
    using DPM++ 2M Karras"; no schedule means the restored sampler's own default (A1111's "Automatic");
    a value of the wrong type or range is named; the features the file asks for that we do not do
    (params["ignored"]: Hires fix, LoRA ...) come last. Never images."""
    current = current or GenerationRequest()
    values: dict[str, Any] = {}
    notes: list[str] = []
    for field in dataclasses.fields(GenerationRequest):
        name = field.name
        if name in NONE_IS_SAID and name in params and params[name] is None:
            values[name] = None
            continue
        if name in IMAGE_FIELDS or name in ("sampler", "schedule") or name not in params or params[name] is None:
            continue
        value = coerce_like(params[name], getattr(current, name), name)
        if value is None or not IN_RANGE.get(name, lambda v: True)(value):
            notes.append(f"{name.replace('_', ' ')} {params[name]}")
            continue
        values[name] = value

    written_sampler, written_schedule = (None if params.get(key) is None else str(params[key])
                                         for key in ("sampler", "schedule"))
    sampler = written_sampler if written_sampler in SAMPLERS else current.sampler
    if written_sampler in SAMPLERS:
        values["sampler"] = sampler
    if written_schedule in SCHEDULES:
        values["schedule"] = written_schedule
    elif written_schedule is None and written_sampler is not None:
        values["schedule"] = SAMPLERS[sampler].default_schedule  # "Automatic"
    schedule = values.get("schedule", current.schedule)
    if written_sampler is not None and written_sampler not in SAMPLERS:
        asked = " ".join(str(part) for part in (written_sampler, written_schedule) if part)
        notes.insert(0, f"sampler {asked} → using {run_label(sampler, schedule)}")
    elif written_schedule is not None and written_schedule not in SCHEDULES and SAMPLERS[sampler].uses_schedule:
        notes.insert(0, f"schedule {written_schedule} → using {SCHEDULES[schedule].label}")
    ignored = params.get("ignored")
    if isinstance(ignored, list):
        notes += [str(item) for item in ignored]
    return dataclasses.replace(current, **values), notes


def run_label(sampler: str, schedule: str) -> str:
    """"DPM++ 2M Karras": a sampler with the schedule it runs on (none for DDIM's own timesteps)."""
    label = schedule_label(sampler, schedule)
    return SAMPLERS[sampler].label + ("" if label == "Automatic" else f" {label}")


def coerce_like(value: Any, default: Any, name: str) -> Any:
    """`value` converted to the type of the field's default; None when it does not convert."""
    if value is None:
        return None
    try:
        if name == "loras":
            return tuple(LoraRef(str(ref["path"]), float(ref.get("weight", 1.0)),
                                 None if ref.get("text_weight") is None else float(ref["text_weight"])) for ref in value)
        if name == "embeddings":
            return tuple((str(word), str(path)) for word, path in value)
        if name in ("original_size", "crop", "seed_resize_from"):  # (width, height) / (left, top): a JSON list
            pair = tuple(as_int(v) for v in value)
            return pair if len(pair) == 2 and None not in pair else None
        if name == "hires_cfg":
            return float(value)
        if name in ("hires_sampler", "hires_schedule"):
            return str(value)
        if isinstance(default, bool):
            if isinstance(value, str):
                return {"true": True, "false": False}.get(value.strip().lower())
            return bool(value)
        if isinstance(default, int) or name in ("seed", "width", "height"):
            return as_int(value)
        if isinstance(default, float):
            return float(value)
        if isinstance(default, str):
            return str(value)
    except (TypeError, ValueError, OverflowError, KeyError, AttributeError):
        return None
    return value


def as_int(value: Any) -> int | None:
    """Exact for big seeds (no float round trip); accepts "7" and 7.0 but not 7.5."""
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    text = str(value).strip()
    try:
        return int(text)
    except ValueError:
        number = float(text)
        return int(number) if number.is_integer() else None
