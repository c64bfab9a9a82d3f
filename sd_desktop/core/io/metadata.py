"""PNG parameters: AUTOMATIC1111's `parameters` text chunk plus our own JSON chunk, read and write.

The `parameters` chunk follows AUTOMATIC1111's infotext exactly, so other tools (A1111, Forge,
ComfyUI loaders, Civitai, image viewers) read our images:

    <prompt, may span lines>
    Negative prompt: <negative prompt, may span lines>      (omitted when empty)
    Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7.5, Seed: 123, Size: 512x512, ...

The `sd-desktop` chunk is JSON holding the whole request, so "restore parameters" loses nothing.
Sampler and schedule labels come from core.sampling.registry. Pure Python + Pillow: no torch here.
Writing files is core.io.outputs' job.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path
from typing import Any

from PIL import Image, UnidentifiedImageError

from sd_desktop import __version__

from ..errors import SDDesktopError
from ..request import GenerationRequest, Mode
from ..sampling.registry import (AUTOMATIC_SCHEDULE, SAMPLERS, SCHEDULES, sampler_from_label,
                                 schedule_from_label, schedule_label)

PARAMETERS_KEY = "parameters"  # AUTOMATIC1111's chunk name
JSON_KEY = "sd-desktop"
JSON_FORMAT = 1
IMAGE_FIELDS = ("init_image", "mask")

# One `Key: value` pair of the last line; a value is either a json-quoted string or runs to the next comma.
# The same grammar A1111 parses with, so we split lines exactly as it does.
PARAM_PATTERN = re.compile(r'\s*(\w[\w \-/]+):\s*("(?:\\.|[^\\"])+"|[^,]*)(?:,|$)')
SIZE_PATTERN = re.compile(r"^(\d+)x(\d+)$")
NEGATIVE_PREFIX = "Negative prompt:"


class UnreadableImageError(SDDesktopError, OSError):
    """An image file whose parameters were asked for cannot be opened."""


# ---------------------------------------------------------------------------------------------- writing


def quote(value: Any) -> str:
    """A1111's quoting: values that would break the `Key: value, ...` line become json strings."""
    text = str(value)
    if any(c in text for c in ',:\n"'):
        return json.dumps(text, ensure_ascii=False)
    return text


def format_number(value: float | int) -> str:
    return str(int(value)) if isinstance(value, (int, bool)) else str(float(value))


def format_parameters(request: GenerationRequest, *, seed: int, width: int, height: int, model_name: str,
                      model_hash: str | None, mode: str) -> str:
    """The A1111 infotext of one image. `seed`, `width`, `height` are the values actually used."""
    sampler = SAMPLERS.get(request.sampler)
    fields: dict[str, Any] = {
        "Steps": int(request.steps),
        "Sampler": sampler.label if sampler else request.sampler,
        # A1111 1.9+ writes the schedule's label; "Automatic" for samplers with their own timesteps (DDIM)
        "Schedule type": schedule_label(request.sampler, request.schedule),
        "CFG scale": format_number(request.cfg_scale),
        "Seed": int(seed),
        "Size": f"{int(width)}x{int(height)}",
        "Model hash": model_hash or None,
        "Model": model_name or None,
    }
    if mode in (Mode.IMG2IMG, Mode.INPAINT):
        fields["Denoising strength"] = format_number(request.strength)
    if mode == Mode.INPAINT:
        fields["Mask blur"] = int(request.mask_blur)
        if request.inpaint_full_res:
            fields["Inpaint area"] = "Only masked"
    if sampler is not None and sampler.uses_eta and request.eta:
        fields["Eta DDIM"] = format_number(request.eta)
    if request.clip_skip > 1:  # A1111 writes it only when it is not 1
        fields["Clip skip"] = int(request.clip_skip)
    if request.emphasis != "Original":
        fields["Emphasis"] = request.emphasis
    fields["Version"] = f"sd-desktop {__version__}"

    line = ", ".join(f"{key}: {quote(value)}" for key, value in fields.items() if value is not None)
    negative = f"\n{NEGATIVE_PREFIX} {request.negative_prompt}" if request.negative_prompt else ""
    # A1111 strips the whole text, so an empty prompt does not leave a blank first line.
    return f"{request.prompt}{negative}\n{line}".strip()


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
        out[field.name] = image_summary(value) if field.name in IMAGE_FIELDS else value
    return out


def metadata_json(request: GenerationRequest, *, seed: int, width: int, height: int, model_name: str,
                  model_hash: str | None, mode: str, family: str | None = None) -> str:
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
    # ASCII json always fits a plain tEXt chunk; default=str keeps an odd value from failing the save.
    return json.dumps(record, ensure_ascii=True, default=str)


# ---------------------------------------------------------------------------------------------- reading


def parse_parameters(text: str) -> dict:
    """A1111 infotext -> dict, splitting lines the way A1111 does.

    Always has "prompt" and "negative_prompt". Known keys become ours with their types: steps, sampler
    (our name when known), schedule (our name when known; absent for "Automatic"), cfg_scale, seed,
    width, height, strength, mask_blur, inpaint_full_res, eta, model_hash, model, version. Every other
    key (Hires ..., ADetailer ..., Lora hashes ...) is kept as written, its value unquoted, as a string.
    A known key whose value does not convert is kept that way too.
    """
    *lines, last = text.strip().replace("\r\n", "\n").split("\n")
    # The last line holds the parameters only when it has at least three `Key: value` pairs;
    # otherwise it is part of the prompt (a prompt may well contain "Steps: ..." words).
    if len(PARAM_PATTERN.findall(last)) < 3:
        lines.append(last)
        last = ""

    prompt, negative, in_negative = [], [], False
    for line in lines:
        line = line.strip()
        if not in_negative and line.startswith(NEGATIVE_PREFIX):
            in_negative = True
            line = line[len(NEGATIVE_PREFIX):].strip()
        (negative if in_negative else prompt).append(line)

    result: dict[str, Any] = {"prompt": "\n".join(prompt), "negative_prompt": "\n".join(negative)}
    raw: dict[str, str] = {}
    for key, value in PARAM_PATTERN.findall(last):
        raw[key] = unquote(value.strip())
    legacy_schedule = None
    for key, value in raw.items():
        try:
            if key == "Sampler":
                sampler, legacy_schedule = sampler_from_label(value)
                result["sampler"] = sampler or value  # a sampler we do not have stays as it was written
            else:
                result.update(convert_known(key, value))
        except ValueError:
            result[key] = value
    if legacy_schedule and "schedule" not in result and raw.get("Schedule type") in (None, AUTOMATIC_SCHEDULE):
        result["schedule"] = legacy_schedule
    return result


def unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            return json.loads(value)
        except json.JSONDecodeError:
            return value
    return value


def convert_known(key: str, value: str) -> dict[str, Any]:
    """One A1111 pair as our typed keys; raises ValueError for a known key with a bad value."""
    if key == "Steps":
        return {"steps": int(value)}
    if key == "CFG scale":
        return {"cfg_scale": float(value)}
    if key == "Seed":
        return {"seed": int(value)}
    if key == "Size":
        match = SIZE_PATTERN.match(value)
        if match is None:
            raise ValueError(value)
        return {"width": int(match.group(1)), "height": int(match.group(2))}
    if key == "Denoising strength":
        return {"strength": float(value)}
    if key == "Mask blur":
        return {"mask_blur": int(value)}
    if key == "Eta DDIM":
        return {"eta": float(value)}
    if key == "Inpaint area":
        return {"inpaint_full_res": value == "Only masked"}
    if key == "Clip skip":
        return {"clip_skip": int(value)}
    if key == "Emphasis":
        return {"emphasis": value}
    if key == "Schedule type":
        return {} if value == AUTOMATIC_SCHEDULE else {"schedule": schedule_from_label(value) or value}
    simple = {"Model hash": "model_hash", "Model": "model", "Version": "version"}
    return {simple.get(key, key): value}


def read_parameters(path_or_image: str | os.PathLike | Image.Image) -> dict | None:
    """The parameters stored in an image, or None when it has none.

    Prefers our JSON chunk: the request's fields, with seed/width/height being the values actually used,
    plus "mode", "model", "model_hash", "version", "request" (the request as it was asked, seed None
    included) and "source": "sd-desktop". Otherwise parses the A1111 `parameters` text
    (see parse_parameters) and adds "source": "parameters".
    """
    chunks = text_chunks(path_or_image)
    if JSON_KEY in chunks:
        record = decode_json_chunk(chunks[JSON_KEY])
        if record is not None:
            return record
    if PARAMETERS_KEY in chunks:
        return {**parse_parameters(chunks[PARAMETERS_KEY]), "source": PARAMETERS_KEY}
    return None


def text_chunks(path_or_image: str | os.PathLike | Image.Image) -> dict[str, str]:
    if isinstance(path_or_image, Image.Image):
        return image_text(path_or_image)
    path = Path(path_or_image)
    try:
        with Image.open(path) as image:
            return image_text(image)
    except FileNotFoundError as error:
        raise UnreadableImageError(f"Cannot read parameters: {path} does not exist.") from error
    except IsADirectoryError as error:
        raise UnreadableImageError(f"Cannot read parameters: {path} is a folder, not an image.") from error
    except UnidentifiedImageError as error:
        raise UnreadableImageError(
            f"Cannot read parameters: {path.name} is not an image file (or not one Pillow can open).") from error
    except (OSError, SyntaxError, ValueError) as error:
        # Pillow raises SyntaxError/ValueError for broken PNG chunks.
        raise UnreadableImageError(f"Cannot read parameters: {path.name} is damaged or truncated ({error}).") from error


def image_text(image: Image.Image) -> dict[str, str]:
    """Text chunks of an image; `.text` also reads chunks stored after the pixel data."""
    found = {key: value for key, value in image.info.items() if isinstance(value, str)}
    text = getattr(image, "text", None)  # PNG only; reading it loads the image
    if text:
        found.update({key: str(value) for key, value in text.items()})
    return found


def decode_json_chunk(text: str) -> dict | None:
    """Our chunk as the flat dict read_parameters returns; None when it is not ours or is damaged."""
    try:
        record = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(record, dict) or not isinstance(record.get("request"), dict):
        return None
    request = record["request"]
    result = {key: value for key, value in request.items() if key not in IMAGE_FIELDS}
    for key in ("seed", "width", "height"):
        if record.get(key) is not None:
            result[key] = record[key]
    result.update({key: request.get(key) for key in IMAGE_FIELDS})
    result.update({key: record.get(key) for key in ("mode", "family", "model", "model_hash", "version")})
    result["request"] = request
    result["source"] = JSON_KEY
    return result


def request_from_parameters(params: dict) -> GenerationRequest:
    """Best effort: every field with a usable value is taken, the rest keep their defaults. Never images."""
    defaults = GenerationRequest()
    values: dict[str, Any] = {}
    for field in dataclasses.fields(GenerationRequest):
        if field.name in IMAGE_FIELDS or field.name not in params:
            continue
        value = coerce_like(params[field.name], getattr(defaults, field.name), field.name)
        if value is not None:
            values[field.name] = value
    if values.get("sampler") not in (None, *SAMPLERS):
        del values["sampler"]
    if values.get("schedule") not in (None, *SCHEDULES):
        del values["schedule"]
    return GenerationRequest(**values)


def coerce_like(value: Any, default: Any, name: str) -> Any:
    """`value` converted to the type of the field's default; None when it does not convert."""
    if value is None:
        return None
    try:
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
    except (TypeError, ValueError, OverflowError):
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
