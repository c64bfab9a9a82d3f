"""A1111's extra-network tags in prompts, `<lora:name:weight>` and `<lora:name:te_weight:unet_weight>`
(`<lyco:...>` as the LyCORIS extension wrote them), and embedding trigger words: found in a request's
prompts and resolved against folders into its `loras` and `embeddings` fields.

A tag's numbers are A1111's: the first is the text encoder's weight, the second the U-Net's (the first when
absent); `te=` and `unet=` name them. A name is a file's stem, its path under the folder ("style/ink"), or
the `ss_output_name` kohya wrote in it (A1111's alias).

The tags stay in the prompt (the infotext keeps them, as A1111's does); the text encoder never sees them:
`strip_tags` takes them out before the prompt is parsed, as A1111 does.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from pathlib import Path
from typing import Callable, Iterable, Sequence

from ..errors import InvalidRequestError
from ..request import GenerationRequest, LoraRef

TAG = re.compile(r"<(\w+):([^>]+)>")  # A1111's extra-network syntax
NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
LORA_KINDS = ("lora", "lyco")
LORA_SUFFIXES = (".safetensors", ".pt", ".ckpt")
EMBEDDING_SUFFIXES = (".safetensors", ".pt", ".bin")
STILL_HASHING = "not found by name, and its folders are still being hashed: restore again in a moment"
COMFY_EMBEDDING = re.compile(r"embedding:([^\s,()\[\]{}<>:]+)", re.IGNORECASE)


@dataclasses.dataclass(frozen=True)
class Tag:
    kind: str  # "lora", "lyco", "hypernet" ...
    name: str
    weight: float  # on the U-Net
    text_weight: float | None  # on the text encoder; None: the same
    ignored: tuple[str, ...] = ()  # named arguments of extensions we do not apply ("lbw=...")


def _number(text: str, tag: str, name: str) -> float:
    value = float(text) if NUMBER.fullmatch(text.strip()) else math.nan
    if not math.isfinite(value):
        raise InvalidRequestError(f"{tag}: the weight must be a number, e.g. <lora:{name}:0.8>")
    return value


def find_tags(prompt: str) -> list[Tag]:
    """The extra-network tags of a prompt. A weight that is not a finite number is an InvalidRequestError,
    and so is A1111's `dyn=` (a rank limit), which sd-desktop does not apply."""
    tags = []
    for match in TAG.finditer(prompt or ""):
        kind, (name, *arguments) = match.group(1).lower(), match.group(2).split(":")
        name, positional, named, ignored = name.strip(), [], {}, []
        for argument in arguments:
            key, equals, value = argument.partition("=")
            key = key.strip().lower()
            if not equals:
                positional.append(_number(argument, match.group(0), name))
            elif key in ("te", "unet"):
                named[key] = _number(value, match.group(0), name)
            elif key == "dyn":
                positional += [0.0] * (3 - len(positional))
            else:
                ignored.append(argument.strip())
        if len(positional) > 2:
            raise InvalidRequestError(f"{match.group(0)}: a rank limit (dyn) is not applied by sd-desktop; "
                                      f"remove it (<lora:{name}:te_weight:unet_weight>)")
        text = named.get("te", positional[0] if positional else 1.0)
        unet = named.get("unet", positional[1] if len(positional) > 1 else text)
        tags.append(Tag(kind, name, unet, None if text == unet else text, tuple(ignored)))
    return tags


def lora_tag(name: str, weight: float, text_weight: float | None = None) -> str:
    """A1111's tag for a LoRA: <lora:name:w>, or <lora:name:te:unet> when the text encoder's weight differs."""
    if text_weight is None or text_weight == weight:
        return f"<lora:{name}:{weight:g}>"
    return f"<lora:{name}:{text_weight:g}:{weight:g}>"


def strip_tags(prompt: str) -> str:
    """The prompt without its extra-network tags: what the text encoder reads."""
    return TAG.sub("", prompt or "")


def lora_folders_of(models_folders: Iterable[str | Path]) -> list[Path]:
    """Where A1111 and ComfyUI keep LoRAs beside their checkpoints: models/Lora and models/loras (and
    LyCORIS) next to each configured models folder, and inside it."""
    from ..loading.folders import named_folders

    return named_folders(models_folders, ("Lora", "loras", "LyCORIS", "lora"))


def embedding_folders_of(models_folders: Iterable[str | Path]) -> list[Path]:
    """A1111's `embeddings/` (beside `models/`) and ComfyUI's `models/embeddings`, for each models folder."""
    found: list[Path] = []
    for folder in models_folders:
        folder = Path(folder).expanduser()
        for candidate in (folder / "embeddings", folder.parent / "embeddings", folder.parent.parent / "embeddings"):
            if candidate.is_dir() and candidate not in found:
                found.append(candidate)
    return found


def files_in(folders: Sequence[str | Path], suffixes: tuple[str, ...]) -> dict[str, Path]:
    """stem -> file for every file with one of `suffixes` under the folders (recursively, into linked
    folders too, as A1111 and ComfyUI look; the first found wins), also keyed by its path relative to its
    folder without suffix ("style/ink")."""
    found: dict[str, Path] = {}
    for folder in folders:
        folder = Path(folder).expanduser()
        if not folder.is_dir():
            continue
        seen: set[str] = set()
        for root, dirs, names in os.walk(folder, followlinks=True):
            real = os.path.realpath(root)
            if real in seen:  # a link back up the tree
                dirs.clear()
                continue
            seen.add(real)
            dirs.sort()
            for name in sorted(names):
                path = Path(root) / name
                if path.suffix.lower() in suffixes and path.is_file():
                    relative = path.relative_to(folder).with_suffix("").as_posix()
                    found.setdefault(relative, path)
                    found.setdefault(path.stem, path)
    return found


_ALIASES: dict[tuple[str, int, int], str | None] = {}


def lora_alias(path: str | Path) -> str | None:
    """The name kohya wrote into a LoRA (`ss_output_name`), which A1111 lets prompts call it by. Remembered
    per file, time and size."""
    from .catalogue import read_header

    path = Path(path)
    try:
        stat = path.stat()
    except OSError:
        return None
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    if key not in _ALIASES:
        alias = (read_header(path).get("__metadata__") or {}).get("ss_output_name")
        _ALIASES[key] = alias.strip() if isinstance(alias, str) and alias.strip() else None
    return _ALIASES[key]


def find_lora(files: dict[str, Path], name: str) -> Path | None:
    """A tag's file among `files_in`'s: by stem or relative path, then by alias, then ignoring case."""
    key = name.replace("\\", "/")
    path = files.get(name) or files.get(key)
    if path is not None:
        return path
    paths = list(dict.fromkeys(files.values()))
    by_alias = [path for path in paths if lora_alias(path) == name]
    if by_alias:
        return by_alias[0]
    folded = [path for stem, path in files.items() if stem.casefold() == key.casefold()]
    return folded[0] if len(set(folded)) == 1 else None


def resolve_extra_networks(request: GenerationRequest, lora_dirs: Sequence[str | Path] = (),
                           embedding_dirs: Sequence[str | Path] = (),
                           text_widths: tuple[int, ...] | None = None) -> tuple[GenerationRequest, list[str]]:
    """The request with its prompt's `<lora:...>` tags as `loras` (after any it already has) and the
    embeddings its prompts use as `embeddings`; and notes. An unknown LoRA name is an InvalidRequestError
    naming the folders searched; a hypernetwork tag is refused. With `text_widths` (the widths of the model's
    text encoders, StableDiffusionModel.text_widths), an embedding made for another model is left out, with a
    note, and its word stays a word."""
    request, notes = resolve_loras(request, lora_dirs)
    request, more = resolve_embeddings(request, embedding_dirs, text_widths)
    return request, notes + more


def resolve_loras(request: GenerationRequest, lora_dirs: Sequence[str | Path]) -> tuple[GenerationRequest, list[str]]:
    """`resolve_extra_networks`' LoRA half. A tag whose file the request already carries with the same
    weights is not added again (a request read back from an image has both); with other weights, it is an
    InvalidRequestError (the same LoRA twice)."""
    notes: list[str] = []
    loras = list(request.loras)
    tags = find_tags(request.prompt)
    lora_files = files_in(lora_dirs, LORA_SUFFIXES) if tags else {}
    for tag in tags:
        if tag.kind not in LORA_KINDS:
            raise InvalidRequestError(f"<{tag.kind}:{tag.name}>: sd-desktop does not use {tag.kind} networks; "
                                      "remove the tag (LoRA and LyCORIS tags are <lora:name:weight>)")
        path = find_lora(lora_files, tag.name)
        if path is None:
            where = ", ".join(str(Path(d).expanduser()) for d in lora_dirs) or "no LoRA folder is set"
            raise InvalidRequestError(f"LoRA '{tag.name}' is not in the LoRA folders ({where}); put the file there "
                                      "or fix the name in the tag")
        ref = LoraRef(str(path), tag.weight, tag.text_weight)
        same_file = [other for other in loras if Path(other.path).expanduser() == path]
        if ref in same_file:
            continue
        if same_file:
            raise InvalidRequestError(f"LoRA '{tag.name}' is given twice with different weights (a tag and a "
                                      "--lora, or two tags); keep one")
        loras.append(ref)
        if tag.ignored:
            notes.append(f"<lora:{tag.name}>: {', '.join(tag.ignored)} not applied (an extension's; the LoRA "
                         "applies to every layer it names)")
    if find_tags(request.negative_prompt):
        notes.append("LoRA tags in the negative prompt are not applied (taken out of its text)")
    return dataclasses.replace(request, loras=tuple(loras)), notes


def used_embeddings(files: dict[str, Path], texts: Sequence[str], comfy: bool) -> list[str]:
    """The names among `files` (stems) that the prompts use: as A1111 finds them, their tokens within the
    prompt's (so case does not matter, and "bad-artist" is found in "very-bad-artist"); with ComfyUI's
    emphasis, only `embedding:name` (ComfyUI reads a bare word as a word)."""
    names = [name for name in files if "/" not in name]
    if comfy:
        wanted = {Path(found).stem.casefold() if Path(found).suffix.lower() in EMBEDDING_SUFFIXES else found.casefold()
                  for text in texts for found in COMFY_EMBEDDING.findall(text)}
        return [name for name in names if name.casefold() in wanted]
    from ..text.tokenizer import CLIPTokenizer

    lowered = " ".join(texts).casefold()
    candidates = [name for name in names if name.casefold() in lowered]
    if not candidates:
        return []
    tokenizer = CLIPTokenizer.default()
    token_lists = [tokenizer.encode(text) for text in texts]
    found = []
    for name in candidates:
        trigger = tokenizer.encode(name)
        if trigger and any(_contains(tokens, trigger) for tokens in token_lists):
            found.append(name)
    return found


def _contains(tokens: list[int], part: list[int]) -> bool:
    return any(tokens[i:i + len(part)] == part for i in range(len(tokens) - len(part) + 1))


def resolve_embeddings(request: GenerationRequest, embedding_dirs: Sequence[str | Path],
                       text_widths: tuple[int, ...] | None = None) -> tuple[GenerationRequest, list[str]]:
    """`resolve_extra_networks`' embedding half."""
    if not embedding_dirs:
        return request, []
    notes: list[str] = []
    embeddings = dict(request.embeddings)
    files = files_in(embedding_dirs, EMBEDDING_SUFFIXES)
    texts = [strip_tags(request.prompt), strip_tags(request.negative_prompt)]
    for name in used_embeddings(files, texts, request.emphasis == "ComfyUI"):
        if name in embeddings:
            continue
        other = _other_family(files[name], tuple(text_widths)) if text_widths else None
        if other:
            notes.append(f"embedding {name} is for {other}, not this model: '{name}' is read as a word")
            continue
        embeddings[name] = str(files[name])
    return dataclasses.replace(request, embeddings=tuple(sorted(embeddings.items()))), notes


def _other_family(path: Path, text_widths: tuple[int, ...]) -> str | None:
    """The family an embedding file is made for when it does not fit text encoders this wide (SDXL: two)."""
    from ..errors import ModelLoadError
    from ..text.embeddings import read_embedding

    try:
        embedding = read_embedding(path)
    except ModelLoadError:
        return None  # an unreadable file is refused by name when generating
    width = embedding.vectors.shape[1]
    sdxl_model = len(text_widths) > 1
    if embedding.sdxl:
        return None if sdxl_model else "SDXL"
    if not sdxl_model and width == text_widths[0]:
        return None
    return {768: "SD 1.x", 1024: "SD 2.x", 1280: "SDXL"}.get(width, f"{width}-wide vectors")


def lora_names(path: str | Path) -> set[str]:
    """What a prompt may call a LoRA file: its stem, and its alias."""
    return {Path(path).stem} | ({alias} if (alias := lora_alias(path)) else set())


def tag_calls(name: str, path: str | Path) -> bool:
    """Whether a tag's name calls this LoRA file: its stem or alias, written alone or at the end of a folder
    path ("style/ink"), in any case, as find_lora resolves names."""
    name = name.replace("\\", "/")
    called = {name.casefold(), name.rsplit("/", 1)[-1].casefold()}
    return bool(called & {known.casefold() for known in lora_names(path)})


def check_tags_resolved(request: GenerationRequest) -> None:
    """A prompt's LoRA tags must be among the request's loras (resolve_extra_networks puts them there):
    a tag nothing resolved would otherwise be dropped without a word."""
    tags = find_tags(request.prompt)
    for tag in tags:
        if tag.kind not in LORA_KINDS:
            raise InvalidRequestError(f"<{tag.kind}:{tag.name}>: sd-desktop does not use {tag.kind} networks; remove the tag")
    for tag in tags:
        if any(tag_calls(tag.name, ref.path) for ref in request.loras):
            continue
        raise InvalidRequestError(f"the prompt names LoRA '{tag.name}', which the request does not carry; "
                                  "resolve its tags against your LoRA folders (core.resolve_extra_networks)")


def _listed_hashes(params: dict, field: str) -> dict[str, str]:
    """An infotext's "Lora hashes" / "TI hashes": name -> hash (lower case)."""
    listed = (params.get("extras") or {}).get(field)
    found = {}
    for entry in listed.split(",") if isinstance(listed, str) else []:
        name, _, digest = entry.rpartition(":")
        if name.strip() and digest.strip():
            found[name.strip()] = digest.strip().lower()
    return found


def _computed(kind: str, path: Path) -> str | None:
    from .hashes import file_hash, lora_hash

    try:
        return lora_hash(path) if kind == "lora" else file_hash(path)
    except OSError:
        return None


def restore_addons(params: dict, lora_dirs: Sequence[str | Path], embedding_dirs: Sequence[str | Path],
                   hash_of: Callable[[str, Path], str | None] = _computed) -> tuple[dict, list[str], list[str]]:
    """An image's parameters with the LoRAs and embeddings it names found in the folders: by name (or
    alias), else by the hash its "Lora hashes"/"TI hashes" give (A1111 does the same), the prompt then naming
    the file found here; LoRAs our JSON lists that no tag names (given with --lora) become tags. Returns
    (params, found, missing): one phrase each ("LoRA add_detail, found by its hash as add_detail_v2";
    "LoRA add_detail (not in your LoRA folders)").

    `hash_of(kind, path)` ("lora" or "file") gives a file's hash; the window passes
    core.lora.hashes.known, which reads nothing, so a restore never waits on hashing a folder."""
    found: list[str] = []
    missing: list[str] = []
    params = dict(params)
    prompt = str(params.get("prompt") or "")
    negative = str(params.get("negative_prompt") or "")
    tags = [tag for tag in _tags_quietly(prompt) if tag.kind in LORA_KINDS]
    untagged = _untagged_loras(params, tags)
    files = files_in(lora_dirs, LORA_SUFFIXES) if tags or untagged else {}
    hashes = _listed_hashes(params, "Lora hashes")
    for name in dict.fromkeys(tag.name for tag in tags):
        if find_lora(files, name) is not None:
            continue
        match, unknown = _by_hash(files, hashes.get(name), "lora", hash_of)
        if match is None:
            missing.append(f"LoRA {name} ({STILL_HASHING if unknown else 'not in your LoRA folders'})")
            continue
        prompt = rename_lora_tags(prompt, name, match)
        found.append(f"LoRA {name}, found by its hash as {match}")
    for ref in untagged:
        stem = Path(ref.path).stem
        here = find_lora(files, stem) or (Path(ref.path) if Path(ref.path).is_file() else None)
        if here is None:
            match, unknown = _by_hash(files, hashes.get(stem), "lora", hash_of)
            if match is None:
                missing.append(f"LoRA {stem} ({STILL_HASHING if unknown else 'not in your LoRA folders'})")
                continue
            stem = match
        elif find_lora(files, stem) is None:
            missing.append(f"LoRA {stem} (its file {ref.path} is not in your LoRA folders: add its folder in "
                           "Preferences)")
            continue
        tag = lora_tag(stem, ref.weight, ref.text_weight)
        prompt = f"{prompt.rstrip()} {tag}".strip()
        found.append(f"LoRA {Path(ref.path).stem}, given outside the prompt, added to it as {tag}")
    hashes = _listed_hashes(params, "TI hashes")
    if hashes:
        files = files_in(embedding_dirs, EMBEDDING_SUFFIXES)
        for name, digest in hashes.items():
            if name in files:
                continue
            match, unknown = _by_hash(files, digest, "file", hash_of)
            if match is None:
                missing.append(f"embedding {name} ({STILL_HASHING if unknown else 'not in your embeddings folders'})")
                continue
            prompt, negative = (rename_words(text, name, match) for text in (prompt, negative))
            found.append(f"embedding {name}, found by its hash as {match}")
    if found:
        params["prompt"] = prompt
        if params.get("negative_prompt") is not None:
            params["negative_prompt"] = negative
    return params, found, missing


def _untagged_loras(params: dict, tags: list[Tag]) -> list[LoraRef]:
    """The LoRAs of our JSON (params["loras"]) that no tag of the prompt names: given with --lora."""
    refs = []
    for entry in params.get("loras") or []:
        try:
            ref = LoraRef(str(entry["path"]), float(entry.get("weight", 1.0)),
                          None if entry.get("text_weight") is None else float(entry["text_weight"]))
        except (TypeError, KeyError, ValueError, AttributeError):
            continue
        if not any(tag_calls(tag.name, ref.path) for tag in tags):
            refs.append(ref)
    return refs


def rename_lora_tags(prompt: str, old: str, new: str) -> str:
    """The prompt with its LoRA tags that name `old` naming `new` (any case of the kind, spaces kept out)."""
    def swap(match: re.Match) -> str:
        name, colon, rest = match.group(2).partition(":")
        if match.group(1).lower() in LORA_KINDS and name.strip() == old:
            return f"<{match.group(1)}:{new}{colon}{rest}>"
        return match.group(0)

    return TAG.sub(swap, prompt)


def rename_words(text: str, old: str, new: str) -> str:
    """`old` as a whole word (any case, ComfyUI's embedding:old too) replaced by `new`, outside the tags."""
    word = re.compile(r"(?<![\w\-.])" + re.escape(old) + r"(?![\w\-])", re.IGNORECASE)
    pieces, last = [], 0
    for match in TAG.finditer(text):
        pieces += [word.sub(lambda _m: new, text[last:match.start()]), match.group(0)]
        last = match.end()
    return "".join(pieces) + word.sub(lambda _m: new, text[last:])


def _by_hash(files: dict[str, Path], digest: str | None, kind: str,
             hash_of: Callable[[str, Path], str | None]) -> tuple[str | None, bool]:
    """(the name (stem) of the file with this hash or None, whether some file's hash was not known)."""
    if not digest or len(digest) < 8:
        return None, False
    unknown = False
    for name, path in files.items():
        if "/" not in name:
            value = hash_of(kind, path)
            unknown |= value is None
            if value and (value.startswith(digest) or digest.startswith(value)):
                return name, False
    return None, unknown


def _tags_quietly(prompt: str) -> list[Tag]:
    """The prompt's tags that parse (a restore reads what it can; generating names the bad one)."""
    tags = []
    for match in TAG.finditer(prompt or ""):
        try:
            tags += find_tags(match.group(0))
        except InvalidRequestError:
            continue
    return tags
