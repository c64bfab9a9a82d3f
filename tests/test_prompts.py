"""Prompt weighting as AUTOMATIC1111 and ComfyUI read and encode it: A1111's own doctests for the parser, its
chunking rules, and the encoding against transformers' CLIP text model."""

from __future__ import annotations

import pytest
import torch

from sd_desktop.core.text.attention import parse_comfy_weights, parse_prompt_attention
from sd_desktop.core.text.prompts import (a1111_chunks, comfy_chunks, count_tokens, empty_chunk, encode_prompts,
                                          prompt_chunks)
from sd_desktop.core.text.tokenizer import CLIPTokenizer


@pytest.fixture(scope="module")
def tokenizer():
    return CLIPTokenizer.default()


# A1111's doctests of modules/prompt_parser.parse_prompt_attention, value for value
A1111_DOCTESTS = [
    ("normal text", [("normal text", 1.0)]),
    ("an (important) word", [("an ", 1.0), ("important", 1.1), (" word", 1.0)]),
    ("(unbalanced", [("unbalanced", 1.1)]),
    ("\\(literal\\]", [("(literal]", 1.0)]),
    ("(unnecessary)(parens)", [("unnecessaryparens", 1.1)]),
    ("a (((house:1.3)) [on] a (hill:0.5), sun, (((sky))).",
     [("a ", 1.0), ("house", 1.5730000000000004), (" ", 1.1), ("on", 1.0), (" a ", 1.1), ("hill", 0.55),
      (", sun, ", 1.1), ("sky", 1.4641000000000006), (".", 1.1)]),
]


@pytest.mark.parametrize("text, expected", A1111_DOCTESTS)
def test_a1111_doctests(text, expected):
    assert parse_prompt_attention(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("", [("", 1.0)]),
    ("[[faded]]", [("faded", 1 / 1.1 / 1.1)]),
    ("(x : 1.5 ) y", [("x ", 1.5), (" y", 1.0)]),  # spaces around the weight, as A1111 1.6+ allows
    ("a:1.2) b", [("a:1.2) b", 1.0)]),  # no "(" open: text
    ("close) and ]", [("close) and ]", 1.0)]),
    ("\\\\ and \\x", [("\\ and x", 1.0)]),  # an escaped backslash stays; a lone one vanishes
    ("a BREAK b", [("a", 1.0), ("BREAK", -1.0), ("b", 1.0)]),
    ("BREAKFAST BREAK", [("BREAKFAST", 1.0), ("BREAK", -1.0), ("", 1.0)]),  # a word of its own only
    ("(a BREAK b)", [("a", 1.1), ("BREAK", -1.1), ("b", 1.1)]),  # weighted: A1111 then reads it as a word
    ("(a (b [c]))", [("a ", 1.1), ("b ", 1.2100000000000002), ("c", 1.1)]),
])
def test_a1111_rules(text, expected):
    assert parse_prompt_attention(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("a (b:1.5) ((c)) [d]", [("a ", 1.0), ("b", 1.5), (" ", 1.0), ("c", 1.2100000000000002), (" [d]", 1.0)]),
    ("((a:1.5))", [("a", 1.5)]),  # an explicit weight replaces, it does not multiply
    ("\\(x\\) (y", [("(x) ", 1.0), ("(y", 1.0)]),
    ("a BREAK b", [("a BREAK b", 1.0)]),
])
def test_comfyui_rules(text, expected):
    assert parse_comfy_weights(text) == expected


def ids_of(chunks):
    return [chunk.tokens[1:-1] for chunk in chunks]


def test_chunks_fill_75_tokens_and_count_as_a1111_shows(tokenizer):
    a = tokenizer.encode("a")[0]
    for count, chunks in [(1, 1), (75, 1), (76, 2), (150, 2), (151, 3)]:
        made, counted = a1111_chunks(tokenizer, "a " * count)
        assert len(made) == chunks and counted == count
        assert all(len(c.tokens) == 77 and c.tokens[0] == tokenizer.bos_id and c.tokens[-1] == tokenizer.eos_id
                   for c in made)
        assert sum(ids_of(made), []).count(a) == count
    assert count_tokens(tokenizer, "a " * 76) == (76, 150)
    assert count_tokens(tokenizer, "") == (0, 75)


def test_a_full_chunk_moves_the_words_after_its_last_comma(tokenizer):
    a, comma, b = tokenizer.encode("a")[0], tokenizer.encode(",")[0], tokenizer.encode("b")[0]
    near = "a " * 70 + ", " + "b " * 10  # the comma is token 71: the 4 b's after it move on with the rest
    first, second = ids_of(a1111_chunks(tokenizer, near)[0])
    assert first[:71] == [a] * 70 + [comma] and first[71:] == [tokenizer.eos_id] * 4
    assert second[:10] == [b] * 10
    far = "a " * 40 + ", " + "b " * 40  # 40 tokens after the comma: too far, the chunk is cut at 75
    first, second = ids_of(a1111_chunks(tokenizer, far)[0])
    assert first == [a] * 40 + [comma] + [b] * 34 and second[:6] == [b] * 6


def test_break_ends_a_chunk_and_weights_ride_with_their_tokens(tokenizer):
    chunks, count = a1111_chunks(tokenizer, "a red circle BREAK (blue:1.5) background")
    assert len(chunks) == 2 and count == 75 + 2
    assert ids_of(chunks)[0][:3] == tokenizer.encode("a red circle")
    second = chunks[1]
    assert second.tokens[1:3] == tokenizer.encode("blue background")
    assert second.weights[:4] == [1.0, 1.5, 1.0, 1.0]
    literal, _ = prompt_chunks(tokenizer, "a (red) BREAK b", "None")
    expected = tokenizer.encode("a (red) BREAK b")
    assert len(literal) == 1 and literal[0].tokens[1:1 + len(expected)] == expected
    ignored, _ = prompt_chunks(tokenizer, "a (red:1.5) b", "Ignore")
    assert set(ignored[0].weights) == {1.0} and ignored[0].tokens[1:4] == tokenizer.encode("a red b")


def test_comfyui_keeps_words_whole_across_chunks(tokenizer):
    word = "photorealistic"
    length = len(tokenizer.encode(word))
    text = "a " * (75 - length + 1) + word  # one token too many: the word moves to the next chunk whole
    first, second = comfy_chunks(tokenizer, text)[0]
    assert first.tokens[1:77 - length] == tokenizer.encode("a") * (75 - length + 1)
    assert second.tokens[1:1 + length] == tokenizer.encode(word)


# --- encoding, against transformers' CLIP text model ----------------------------------------------------


@pytest.fixture(scope="module")
def pair(tmp_path_factory):
    """Our model (tiny, random) and transformers' text encoder with its weights."""
    import sd_desktop.core as core
    from tiny_models import save_diffusers_folder, tiny_parts

    parts = tiny_parts(seed=60)
    model = core.load_model(save_diffusers_folder(parts, tmp_path_factory.mktemp("m") / "tiny"), device="cpu",
                            dtype="fp32")
    return model, parts["text_encoder"]


def reference_hidden(text_encoder, chunks, clip_skip=1):
    ids = torch.tensor([c.tokens for c in chunks])
    with torch.no_grad():
        out = text_encoder(ids, output_hidden_states=True)
        if clip_skip == 1:
            return out.last_hidden_state
        return text_encoder.final_layer_norm(out.hidden_states[-clip_skip])


def test_original_emphasis_scales_tokens_and_keeps_each_chunks_mean(pair):
    model, text_encoder = pair
    prompt = "a (red:1.5) circle, " + ", ".join(["[blue] square"] * 30) + " BREAK (((sky)))"
    chunks, _ = a1111_chunks(model.tokenizer, prompt)
    z = reference_hidden(text_encoder, chunks)
    weights = torch.tensor([c.weights for c in chunks])[..., None]
    weighted = z * weights
    expected = weighted * (z.mean(dim=(1, 2), keepdim=True) / weighted.mean(dim=(1, 2), keepdim=True))
    ours = encode_prompts(model, [prompt])[0].context
    assert ours.shape == (1, 77 * len(chunks), z.shape[2]) and len(chunks) == 3
    torch.testing.assert_close(ours[0], expected.reshape(-1, z.shape[2]), rtol=1e-4, atol=1e-5)
    no_norm = encode_prompts(model, [prompt], "No norm")[0].context
    torch.testing.assert_close(no_norm[0], weighted.reshape(-1, z.shape[2]), rtol=1e-4, atol=1e-5)
    plain = encode_prompts(model, ["a red circle"])[0].context  # no weights: the plain encoding, untouched
    torch.testing.assert_close(plain[0], reference_hidden(text_encoder, a1111_chunks(model.tokenizer, "a red circle")[0])[0])


def test_comfyui_emphasis_moves_weighted_tokens_away_from_the_empty_prompt(pair):
    model, text_encoder = pair
    prompt = "a (red:1.5) circle ((big))"
    chunks, _ = comfy_chunks(model.tokenizer, prompt)
    z = reference_hidden(text_encoder, chunks)[0]
    empty = reference_hidden(text_encoder, [empty_chunk(model.tokenizer)])[0]
    weights = torch.tensor(chunks[0].weights)[:, None]
    expected = torch.where(weights != 1, empty + weights * (z - empty), z)
    torch.testing.assert_close(encode_prompts(model, [prompt], "ComfyUI")[0].context[0], expected, rtol=1e-4, atol=1e-5)


def test_clip_skip_takes_an_earlier_layer_through_the_final_layernorm(pair):
    model, text_encoder = pair
    chunks, _ = a1111_chunks(model.tokenizer, "a red circle on a blue background")
    ours = encode_prompts(model, ["a red circle on a blue background"], clip_skip=2)[0].context[0]
    torch.testing.assert_close(ours, reference_hidden(text_encoder, chunks, clip_skip=2)[0], rtol=1e-4, atol=1e-5)
    assert not torch.allclose(ours, encode_prompts(model, ["a red circle on a blue background"])[0].context[0])
    with pytest.raises(ValueError, match="clip skip must be from 1 to 2"):
        encode_prompts(model, ["x"], clip_skip=3)
