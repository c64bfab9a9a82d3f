"""Textual-inversion embeddings: parity with diffusers' load_textual_inversion, every file form, whole vectors
per chunk, ComfyUI's `embedding:` words, refusals by name, and the infotext's TI hashes."""

from __future__ import annotations

import dataclasses
import hashlib

import pytest
import torch
from safetensors.torch import save_file

import sd_desktop.core as core
from sd_desktop.core.errors import ModelLoadError
from sd_desktop.core.lora.tags import resolve_embeddings, resolve_extra_networks
from sd_desktop.core.text.embeddings import embedding_set, read_embedding
from sd_desktop.core.text.prompts import a1111_chunks

from test_lora import REQUEST, diffusers_pipeline_latents, rel_err
from tiny_models import TEXT_WIDTH, save_diffusers_folder, tiny_parts


@pytest.fixture(scope="module")
def parts():
    return tiny_parts(seed=40)


@pytest.fixture(scope="module")
def folder(parts, tmp_path_factory):
    return save_diffusers_folder(parts, tmp_path_factory.mktemp("tiny") / "model")


@pytest.fixture(scope="module")
def model(folder):
    return core.load_model(folder, device="cpu", dtype="fp32")


def vectors(n, seed=0, width=TEXT_WIDTH):
    return torch.randn(n, width, generator=torch.Generator().manual_seed(seed)) * 0.5


def a1111_pt(path, rows):
    torch.save({"string_to_token": {"*": 265}, "string_to_param": {"*": rows}, "name": path.stem, "step": 1200,
                "sd_checkpoint": "abc", "sd_checkpoint_name": "v1-5"}, path)
    return path


def test_an_a1111_embedding_equals_diffusers_load_textual_inversion(model, parts, folder, tmp_path):
    rows = vectors(3, seed=1)
    path = a1111_pt(tmp_path / "shinyneg.pt", rows)
    prompt = "a red circle, shinyneg, on blue"
    reference = diffusers_pipeline_latents(parts, folder, dataclasses.replace(REQUEST, prompt=prompt),
                                           textual_inversion=(str(path), "shinyneg"))
    request, _ = resolve_extra_networks(dataclasses.replace(REQUEST, prompt=prompt), embedding_dirs=[tmp_path])
    assert request.embeddings == (("shinyneg", str(path)),)
    result = core.generate(model, request)
    assert rel_err(result.latents, reference) <= 1e-3
    plain = core.generate(model, dataclasses.replace(REQUEST, prompt=prompt))  # the word read as text
    assert rel_err(plain.latents, reference) > 0.01
    whole_file = hashlib.sha256(path.read_bytes()).hexdigest()[:12]  # A1111's embedding hash
    assert f'TI hashes: "shinyneg: {whole_file}"' in result.images[0].info["parameters"]


def test_every_file_form_gives_the_same_vectors(tmp_path):
    rows = vectors(2, seed=2)
    save_file({"emb_params": rows}, str(tmp_path / "kohya.safetensors"))
    save_file({"<cat-toy>": rows[0].clone()}, str(tmp_path / "diffusers.safetensors"))
    torch.save({"<cat-toy>": rows}, tmp_path / "learned_embeds.bin")
    assert torch.equal(read_embedding(a1111_pt(tmp_path / "a.pt", rows)).vectors, rows)
    assert torch.equal(read_embedding(tmp_path / "kohya.safetensors").vectors, rows)
    assert torch.equal(read_embedding(tmp_path / "diffusers.safetensors").vectors, rows[:1])
    assert torch.equal(read_embedding(tmp_path / "learned_embeds.bin").vectors, rows)
    save_file({"clip_l": vectors(2, width=768), "clip_g": vectors(2, width=1280)}, str(tmp_path / "xl.safetensors"))
    assert read_embedding(tmp_path / "xl.safetensors").sdxl


def test_embeddings_of_another_encoder_are_refused_by_name(model, tmp_path):
    save_file({"clip_l": vectors(2, width=768), "clip_g": vectors(2, width=1280)}, str(tmp_path / "xl.safetensors"))
    save_file({"emb_params": vectors(2, width=1024)}, str(tmp_path / "v2.safetensors"))
    for name, message in (("xl", "xl is an SDXL embedding"), ("v2", "v2 holds vectors 1024 wide (SD 2.x); this model's "
                                                                     f"text encoder takes {TEXT_WIDTH}")):
        request = dataclasses.replace(REQUEST, prompt=f"a {name}", embeddings=((name, str(tmp_path / f"{name}.safetensors")),))
        with pytest.raises(ModelLoadError) as error:
            core.generate(model, request)
        assert str(error.value).startswith(message)
    torch.save({"string_to_param": {"*": vectors(80)}}, tmp_path / "long.pt")
    with pytest.raises(ModelLoadError, match="80 vectors; at most 75"):
        read_embedding(tmp_path / "long.pt")


def test_an_embedding_never_straddles_two_chunks(model, tmp_path):
    tokenizer = model.tokenizer
    rows = vectors(4, seed=3)
    found = embedding_set(tokenizer, {"clip": TEXT_WIDTH}, 49408, [("glowy", read_embedding(a1111_pt(tmp_path / "glowy.pt", rows)))])
    words = " ".join(["cat"] * 73)  # 73 tokens; the 4 vectors do not fit in the 2 left
    chunks, _ = a1111_chunks(tokenizer, f"{words} glowy dog", "Original", found)
    first, second = (c.tokens[1:-1] for c in chunks)
    assert all(t < 49408 for t in first) and first[73:] == [tokenizer.eos_id] * 2  # padded, no vector in it
    assert second[:5] == [49408, 49409, 49410, 49411, tokenizer.encode("dog")[0]]
    chunks, _ = a1111_chunks(tokenizer, "(glowy:1.3), cat", "Original", found)
    assert chunks[0].tokens[1:5] == [49408, 49409, 49410, 49411] and chunks[0].weights[1:5] == [1.3] * 4


def test_comfyui_embedding_words(model, tmp_path):
    path = a1111_pt(tmp_path / "glowy.pt", vectors(2, seed=4))
    a1111 = core.generate(model, dataclasses.replace(REQUEST, prompt="a glowy circle",
                                                     embeddings=(("glowy", str(path)),)))
    comfy_request, _ = resolve_extra_networks(dataclasses.replace(REQUEST, prompt="a embedding:glowy.pt circle",
                                                                  emphasis="ComfyUI"), embedding_dirs=[tmp_path])
    assert comfy_request.embeddings == (("glowy", str(path)),)
    comfy = core.generate(model, comfy_request)
    assert torch.equal(comfy.latents, a1111.latents)  # no weights: ComfyUI's reading and A1111's agree


def test_embeddings_are_found_as_a1111_finds_them(tmp_path):
    """By their tokens within the prompt's: any case, inside a hyphenated word, with emphasis around them;
    not inside another word; with ComfyUI's reading, only as embedding:name."""
    for name in ("EasyNegative", "bad-artist", "glowy"):
        a1111_pt(tmp_path / f"{name}.pt", vectors(2))

    def used(prompt, negative="", emphasis="Original"):
        request = dataclasses.replace(REQUEST, prompt=prompt, negative_prompt=negative, emphasis=emphasis)
        return [word for word, _ in resolve_embeddings(request, [tmp_path])[0].embeddings]

    assert used("a cat", "easynegative, blurry") == ["EasyNegative"]
    assert used("(EASYNEGATIVE:1.2) very-bad-artist") == ["EasyNegative", "bad-artist"]
    assert used("a glowyness") == [] and used("<lora:glowy:1> cat") == []  # part of a word; a LoRA's name
    assert used("a glowy cat", emphasis="ComfyUI") == []  # a word, as in ComfyUI
    assert used("a embedding:Glowy cat", emphasis="ComfyUI") == ["glowy"]


def test_an_embedding_for_another_model_found_by_its_word_is_left_out_and_said(model, tmp_path):
    """A1111 and ComfyUI folders often hold SDXL embeddings whose names are common words: with the model's
    width, those stay words, with a note; an SD 1.x one beside them still applies."""
    save_file({"clip_l": vectors(2, width=768), "clip_g": vectors(2, width=1280)}, str(tmp_path / "photo.safetensors"))
    save_file({"emb_params": vectors(2, width=1024)}, str(tmp_path / "hands.safetensors"))
    a1111_pt(tmp_path / "glowy.pt", vectors(2))
    request = dataclasses.replace(REQUEST, prompt="a photo of glowy hands")
    resolved, notes = resolve_extra_networks(request, embedding_dirs=[tmp_path], text_widths=(TEXT_WIDTH,))
    assert resolved.embeddings == (("glowy", str(tmp_path / "glowy.pt")),)
    assert notes == ["embedding hands is for SD 2.x, not this model: 'hands' is read as a word",
                     "embedding photo is for SDXL, not this model: 'photo' is read as a word"]
    core.generate(model, resolved)  # and it generates
