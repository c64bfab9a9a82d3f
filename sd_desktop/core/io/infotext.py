"""AUTOMATIC1111's infotext: the text A1111, Forge, Civitai and we write into images, and how A1111 reads it.

    <prompt, may span lines>
    Negative prompt: <negative prompt, may span lines>
    Steps: 20, Sampler: DPM++ 2M, Schedule type: Karras, CFG scale: 7.5, Seed: 123, Size: 512x512, ...

The last line holds the parameters when it has at least three `Key: value` pairs; a value that would break
the line is a JSON string. Sampler and schedule labels come from core.sampling.registry. Pure Python: no
torch, no Pillow.
"""

from __future__ import annotations

import json
import re
from typing import Any

from sd_desktop import __version__

from ..request import MASKED_CONTENT, RESIZE_MODES, GenerationRequest, Mode
from ..sampling.registry import (AUTOMATIC_SCHEDULE, SAMPLERS, sampler_from_label, schedule_from_label,
                                 schedule_label)

NEGATIVE_PREFIX = "Negative prompt:"
SIZE_PATTERN = re.compile(r"^(\d+)x(\d+)$")
OUR_VERSION_PREFIX = "sd-desktop"
RNG_LABELS = {"cpu": "CPU", "nv": "NV"}  # what we write; A1111's "GPU" is read as "nv" (the same numbers)
_WORD = re.compile(r"\w")
_SPACE = re.compile(r"\s")
_KEY_CHAR = re.compile(r"[\w \-/]")


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
                      model_hash: str | None, mode: str, hashes: dict[str, str] | None = None,
                      vae: str | None = None, vae_hash: str | None = None, taesd: str | None = None,
                      zero_snr: bool = False) -> str:
    """The A1111 infotext of one image. `seed`, `width`, `height` are the values actually used.

    Always a `Negative prompt:` line, even when empty (A1111 leaves it out, but ComfyUI's importer takes
    nothing without it), and always `RNG` (A1111 assumes a GPU's noise when the key is missing). `hashes`:
    A1111's "Lora hashes" and "TI hashes" fields, already computed. LoRA tags stay in the prompt, as in A1111.
    `vae`, `vae_hash`: a VAE file that replaced the model's own (A1111's "VAE" and "VAE hash"); `taesd`: the name of
    the TAESD that made the final decode (ours). `zero_snr`: sampled over the zero-terminal-SNR schedule (resolved:
    the request's choice or the model's), A1111's "Noise Schedule: Zero Terminal SNR"."""
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
        "VAE hash": vae_hash if vae else None,
        "VAE": vae or None,
    }
    if mode in (Mode.IMG2IMG, Mode.INPAINT) or request.hires_fix:
        fields["Denoising strength"] = format_number(request.strength)
    if mode in (Mode.IMG2IMG, Mode.INPAINT) and request.resize_mode != "just resize":
        fields["Resize mode"] = request.resize_mode.capitalize()  # "Crop and resize", as A1111's menu says
    if mode == Mode.INPAINT:
        fields["Mask blur"] = int(request.mask_blur)
        if request.masked_content != "original":  # (A1111's default)
            fields["Masked content"] = request.masked_content
        if request.inpaint_full_res:
            fields["Inpaint area"] = "Only masked"
            fields["Masked area padding"] = int(request.inpaint_padding)
        if request.soft_inpainting:  # (ours and ComfyUI's name; A1111's "Soft inpainting" is another method)
            fields["Differential diffusion"] = "True"
    if sampler is not None and sampler.ancestral_eta and request.ancestral_eta != 1.0:
        fields["Eta"] = format_number(request.ancestral_eta)  # (A1111's, for the samplers taking it, when not 1)
    if sampler is not None and sampler.uses_eta and request.eta:
        fields["Eta DDIM"] = format_number(request.eta)
    if request.taesd_decode:  # (ours: A1111 has no such option)
        fields["Decoder"] = "TAESD"
        fields["TAESD"] = taesd or None
    if request.hires_fix:  # A1111's keys; "Hires steps" only when not the same as Steps (0)
        fields["Hires upscale"] = f"{float(request.hires_scale):g}"  # "2", "1.5", as A1111 texts show it
        fields["Hires steps"] = int(request.hires_steps) or None
        fields["Hires upscaler"] = request.hires_upscaler
        hires_sampler = request.hires_sampler or request.sampler  # (A1111's and Forge's, when not the first pass's)
        if hires_sampler != request.sampler:
            fields["Hires sampler"] = SAMPLERS[hires_sampler].label if hires_sampler in SAMPLERS else hires_sampler
        hires_schedule = schedule_label(hires_sampler, request.hires_schedule or request.schedule)
        if hires_schedule != fields["Schedule type"]:
            fields["Hires schedule type"] = hires_schedule
        if request.hires_cfg is not None and request.hires_cfg != request.cfg_scale:
            fields["Hires CFG Scale"] = format_number(request.hires_cfg)
    if request.clip_skip > 1:  # A1111 writes it only when it is not 1
        fields["Clip skip"] = int(request.clip_skip)
    if request.emphasis != "Original":
        fields["Emphasis"] = request.emphasis
    if zero_snr:  # A1111's key (its setting "Noise schedule for sampling"), for the schedule used; "Default" (ours)
        fields["Noise Schedule"] = "Zero Terminal SNR"  # only when the request chose it
    elif request.noise_schedule == "default":
        fields["Noise Schedule"] = "Default"
    # (ours, each only when it is not the default: A1111 has no such keys)
    if request.prediction != "auto":
        fields["Prediction"] = {"eps": "epsilon", "v": "v-prediction"}[request.prediction]
    if request.rescale_cfg:
        fields["CFG Rescale"] = format_number(request.rescale_cfg)
    if request.original_size is not None:
        fields["Original size"] = "{}x{}".format(*request.original_size)
    if tuple(request.crop) != (0, 0):
        fields["Crop position"] = "{}x{}".format(*request.crop)
    fields["RNG"] = RNG_LABELS.get(request.rng, request.rng)
    if request.variation_strength:  # A1111's, only with a strength
        fields["Variation seed"] = request.variation_seed
        fields["Variation seed strength"] = format_number(request.variation_strength)
    if request.seed_resize_from is not None:
        fields["Seed resize from"] = "{}x{}".format(*request.seed_resize_from)
    if request.ensd and sampler is not None and sampler.draws_seeded_noise(request.eta, request.ancestral_eta):
        fields["ENSD"] = int(request.ensd)  # (wherever it changed the noise: A1111_WRITES_ENSD)
    fields.update(hashes or {})  # "Lora hashes", "TI hashes": "name: 0123456789ab, ..." (core.pipelines.generate)
    fields["Version"] = f"{OUR_VERSION_PREFIX} {__version__}"

    line = ", ".join(f"{key}: {quote(value)}" for key, value in fields.items() if value is not None)
    # A1111 strips the whole text, so an empty prompt does not leave a blank first line.
    return f"{request.prompt}\n{NEGATIVE_PREFIX} {request.negative_prompt}\n{line}".strip()


# ---------------------------------------------------------------------------------------------- reading


def find_pairs(line: str) -> list[tuple[str, str]]:
    """Every `Key: value` pair of a line, as A1111 finds them with the regular expression
    `\\s*(\\w[\\w \\-/]+):\\s*("(?:\\\\.|[^\\\\"])+"|[^,]*)(?:,|$)` and findall, in linear time (the regular
    expression backtracks quadratically on a long line without colons: 20,000 characters took 10 s).

    A key is a word character and one or more of word characters, spaces, '-' and '/', right before a
    ':'. A value is a JSON-style quoted string followed by ',' or the end, else everything up to the next ','.
    """
    pairs: list[tuple[str, str]] = []
    n, i = len(line), 0
    while i < n:
        start = i
        while start < n and _SPACE.match(line, start):
            start += 1
        if start >= n:
            break
        if not _WORD.match(line, start):
            i = start + 1
            continue
        end = start + 1
        while end < n and _KEY_CHAR.match(line, end):
            end += 1
        # every start in [start, end) sees the same key run ending at `end`: they all fail together
        if end >= n or line[end] != ":" or end - start < 2:
            i = end
            continue
        key = line[start:end]
        j = end + 1
        while j < n and _SPACE.match(line, j):
            j += 1
        value_end = _quoted_end(line, j)
        # `$` also matches before a final newline
        if value_end is not None and (value_end == n or line[value_end] == "," or line[value_end:] == "\n"):
            value = line[j:value_end]
        else:
            comma = line.find(",", j)
            value_end = n if comma < 0 else comma
            value = line[j:value_end]
        pairs.append((key, value))
        i = value_end + 1 if value_end < n and line[value_end] == "," else max(value_end, i + 1)
    return pairs


def _quoted_end(line: str, j: int) -> int | None:
    """The index after a `"(?:\\\\.|[^\\\\"])+"` starting at j, or None."""
    n = len(line)
    if j >= n or line[j] != '"':
        return None
    k = j + 1
    while k < n:
        c = line[k]
        if c == "\\":
            if k + 1 >= n or line[k + 1] == "\n":
                return None
            k += 2
        elif c == '"':
            return k + 1 if k > j + 1 else None
        else:
            k += 1
    return None


def unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        try:
            decoded = json.loads(value)
        except json.JSONDecodeError:
            return value
        return decoded if isinstance(decoded, str) else value
    return value


def parse_parameters(text: str) -> dict:
    """An A1111 infotext as written, split the way A1111 splits it.

    Always has "prompt" and "negative_prompt". Known keys become ours with their types: steps, sampler
    (our name when known, else the label as written), schedule (our name when known, else as written;
    absent for "Automatic"), cfg_scale, seed, width, height, strength, mask_blur, inpaint_full_res, eta,
    clip_skip, emphasis, rng, hires_fix, hires_scale, hires_steps, hires_upscaler (A1111's Real-ESRGAN names as
    our files'), hires_sampler, hires_schedule, hires_cfg, prediction, noise_schedule, rescale_cfg, original_size, crop, model_hash, model, version. Every
    other pair (Hires resize ..., ADetailer ..., Lora hashes ...), and a known key whose value does not convert, is
    in "extras" as written, unquoted.
    Nothing is added for what the text leaves out (a1111_parameters does that, as A1111 reads them).
    """
    *lines, last = text.strip().replace("\r\n", "\n").split("\n")
    pairs = find_pairs(last)
    # The last line holds the parameters only when it has at least three `Key: value` pairs;
    # otherwise it is part of the prompt (a prompt may well contain "Steps: ..." words).
    if len(pairs) < 3:
        lines.append(last)
        pairs = []

    prompt, negative, in_negative = [], [], False
    for line in lines:
        line = line.strip()
        if not in_negative and line.startswith(NEGATIVE_PREFIX):
            in_negative = True
            line = line[len(NEGATIVE_PREFIX):].strip()
        (negative if in_negative else prompt).append(line)

    result: dict[str, Any] = {"prompt": "\n".join(prompt), "negative_prompt": "\n".join(negative)}
    extras: dict[str, str] = {}
    legacy_schedule, schedule_written = None, None
    hires_legacy, hires_schedule_written = None, None
    for key, value in pairs:
        value = unquote(value.strip())
        try:
            if key == "Sampler":
                sampler, legacy_schedule = sampler_from_label(value)
                result["sampler"] = sampler or value  # a sampler we do not have stays as it was written
            elif key == "Schedule type":
                schedule_written = value
                if value != AUTOMATIC_SCHEDULE:
                    result["schedule"] = schedule_from_label(value) or value
            elif key == "Hires sampler":  # (one we do not have stays in extras: "Hires fix's sampler")
                hires_sampler, hires_legacy = sampler_from_label(value)
                if hires_sampler is None:
                    raise ValueError(value)
                result["hires_sampler"] = hires_sampler
            elif key == "Hires schedule type":
                hires_schedule_written = value
                if value != AUTOMATIC_SCHEDULE and schedule_from_label(value) is None:
                    raise ValueError(value)
            else:
                converted = convert_known(key, value)
                if converted is None:
                    extras[key] = value
                else:
                    result.update(converted)
        except ValueError:
            extras[key] = value
    if legacy_schedule and schedule_written in (None, AUTOMATIC_SCHEDULE):
        result["schedule"] = legacy_schedule
    if hires_schedule_written not in (None, AUTOMATIC_SCHEDULE):
        result["hires_schedule"] = schedule_from_label(hires_schedule_written)
    elif hires_legacy and hires_schedule_written is None:  # ("Hires sampler: DPM++ 2M Karras", before 1.9)
        result["hires_schedule"] = hires_legacy
    elif hires_schedule_written == AUTOMATIC_SCHEDULE:  # the hires sampler's own default, as A1111's Automatic
        hires_sampler = SAMPLERS.get(result.get("hires_sampler") or result.get("sampler"))
        if hires_sampler is not None:
            result["hires_schedule"] = hires_sampler.default_schedule
    if extras:
        result["extras"] = extras
    return result


# A1111 keys whose value is one number, as our field and its type
NUMBERS = {"Steps": ("steps", int), "CFG scale": ("cfg_scale", float), "Seed": ("seed", int),
           "Denoising strength": ("strength", float), "Mask blur": ("mask_blur", int),
           "Masked area padding": ("inpaint_padding", int), "Hires steps": ("hires_steps", int),
           "Eta DDIM": ("eta", float), "Clip skip": ("clip_skip", int), "Variation seed": ("variation_seed", int),
           "Variation seed strength": ("variation_strength", float), "Eta": ("ancestral_eta", float),
           "ENSD": ("ensd", int), "CFG Rescale": ("rescale_cfg", float), "Hires CFG Scale": ("hires_cfg", float)}
# keys whose value is one of a few words, as our field and its value for each (as written; Noise Schedule in lower case)
WORDS = {"Prediction": ("prediction", {"epsilon": "eps", "eps": "eps", "v-prediction": "v", "v_prediction": "v",
                                       "v": "v"}),
         "Noise Schedule": ("noise_schedule", {"zero terminal snr": "zsnr", "default": "default"}),
         "RNG": ("rng", {"CPU": "cpu", "NV": "nv", "GPU": "nv"})}


def convert_known(key: str, value: str) -> dict[str, Any] | None:
    """One A1111 pair as our typed keys; None for a key we do not know; ValueError for a bad value."""
    if key in NUMBERS:
        field, number = NUMBERS[key]
        return {field: number(value)}
    if key in WORDS:
        field, meanings = WORDS[key]
        meaning = meanings.get(value.strip().lower() if key == "Noise Schedule" else value)
        if meaning is None:
            raise ValueError(value)
        return {field: meaning}
    if key == "Size":
        match = SIZE_PATTERN.match(value)
        if match is None:
            raise ValueError(value)
        return {"width": int(match.group(1)), "height": int(match.group(2))}
    if key == "Decoder":
        if value != "TAESD":
            raise ValueError(value)
        return {"taesd_decode": True}
    if key == "Resize mode":
        if value.lower() not in RESIZE_MODES:
            raise ValueError(value)
        return {"resize_mode": value.lower()}
    if key == "Masked content":
        if value not in MASKED_CONTENT:
            raise ValueError(value)
        return {"masked_content": value}
    if key == "Differential diffusion":
        return {"soft_inpainting": value == "True"}
    if key == "Hires upscale":
        return {"hires_fix": True, "hires_scale": float(value)}
    if key == "Hires upscaler":
        from ..upscale.catalogue import A1111_NAMES

        return {"hires_upscaler": A1111_NAMES.get(value, value)}
    if key == "Inpaint area":
        return {"inpaint_full_res": value == "Only masked"}
    if key == "Seed resize from":  # (A1111 leaves it out when off; older texts wrote -1x-1 or 0x0 for off)
        match = re.fullmatch(r"\s*(-?\d+)\s*x\s*(-?\d+)\s*", value)
        if match is None:
            raise ValueError(value)
        width, height = int(match.group(1)), int(match.group(2))
        return {"seed_resize_from": (width, height) if width > 0 and height > 0 else None}
    if key in ("Original size", "Crop position"):
        match = SIZE_PATTERN.match(value)
        if match is None:
            raise ValueError(value)
        return {"original_size" if key == "Original size" else "crop": (int(match.group(1)), int(match.group(2)))}
    if key == "Emphasis":
        return {"emphasis": value}
    simple = {"Model hash": "model_hash", "Model": "model", "Version": "version"}
    return {simple[key]: value} if key in simple else None


def is_infotext(text: str) -> bool:
    """Whether a text (a pasted prompt, say) is a whole A1111 infotext: a last line of parameters with Steps."""
    last = text.strip().replace("\r\n", "\n").rsplit("\n", 1)[-1]
    pairs = find_pairs(last)
    return len(pairs) >= 3 and any(key == "Steps" for key, _ in pairs)


# ------------------------------------------------------------------ what A1111 means by what it leaves out

# The samplers A1111 writes "ENSD" for (its uses_ensd option; it re-seeds DDIM's, DDPM's and LCM's noise too, but
# does not say so); ours write it wherever it changed the noise
A1111_WRITES_ENSD = ("euler_a", "dpm2_a", "dpmpp_2s_a")

# Keys that say what made an image without changing it here (the model is the user's choice).
INFORMATIONAL = {"Model hash", "Model", "VAE hash", "TAESD", "Version", "Hashes", "Template", "Negative Template",
                 "User", "Batch size", "Batch pos", "Size-1", "Size-2", "Schedule type",
                 "Lora hashes", "TI hashes"}  # (LoRAs and embeddings are the prompt's: core.lora.tags.missing_addons)
# Key prefix -> the feature a user knows it as
FEATURES = [("ADetailer", "ADetailer"), ("ControlNet", "ControlNet"),
            ("Refiner", "Refiner"),
            ("Face restoration", "face restoration"),
            ("Token merging", "token merging"), ("Tiled Diffusion", "Tiled Diffusion"),
            ("Ultimate SD upscale", "Ultimate SD upscale"), ("Dynamic thresholding", "Dynamic thresholding"),
            ("Schedule ", "custom schedule sigmas")]
def features_of(extras: dict) -> list[str]:
    """What the unknown pairs of an infotext ask for that we do not do, each named once, as a user knows it
    (every "Hires ..." key is "Hires fix"; a VAE by its name: the model's own VAE is used unless you load that
    one)."""
    named: list[str] = []
    for key in extras:
        if key in INFORMATIONAL:
            continue
        label = next((feature for prefix, feature in FEATURES if key.startswith(prefix)), key)
        if key.startswith("Hires"):  # the hires fix is done; what is named is the part of it we do not do
            label = f"Hires fix's {key.removeprefix('Hires ').strip()}"
        if key == "VAE":
            label = f"VAE {extras[key]}"
        if label not in named:
            named.append(label)
    return named


def a1111_parameters(text: str) -> dict:
    """An A1111 infotext as A1111 itself reads it: parse_parameters, plus what a missing key means there
    (Clip skip 1, Emphasis Original, RNG GPU — the same numbers as "NV" — except in our own texts, which
    always drew on the CPU), plus "ignored": the features it asks for that sd-desktop does not do."""
    params = parse_parameters(text)
    ours = str(params.get("version", "")).startswith(OUR_VERSION_PREFIX)
    if ours or "steps" in params or "sampler" in params:  # a parameters line, not a bare prompt
        params.setdefault("clip_skip", 1)
        params.setdefault("emphasis", "Original")
        params.setdefault("rng", "cpu" if ours else "nv")
        # what A1111 leaves out when it is the default (restoring over the controls must not keep theirs)
        for key, default in (("hires_fix", False), ("masked_content", "original"), ("resize_mode", "just resize"),
                             ("soft_inpainting", False), ("inpaint_padding", 32),
                             ("taesd_decode", False), ("prediction", "auto"), ("noise_schedule", "auto"), ("rescale_cfg", 0.0),
                             ("variation_strength", 0.0), ("seed_resize_from", None), ("ancestral_eta", 1.0),
                             ("crop", (0, 0))):
            params.setdefault(key, default)
        sampler = SAMPLERS.get(params.get("sampler"))  # no ENSD where it would have been written: 0
        if sampler is not None and sampler.draws_seeded_noise(params.get("eta", 0.0), params["ancestral_eta"]) and (
                ours or sampler.name in A1111_WRITES_ENSD):
            params.setdefault("ensd", 0)
        if params["hires_fix"]:
            params.setdefault("hires_steps", 0)
            params.setdefault("hires_upscaler", "Latent")
            for key in ("hires_sampler", "hires_schedule", "hires_cfg"):  # (not written: the first pass's)
                params.setdefault(key, None)
    params["ignored"] = features_of(params.get("extras", {}))
    params["source"] = OUR_VERSION_PREFIX if ours else "A1111"
    return params
