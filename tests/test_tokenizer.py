"""The CLIP tokenizer gives transformers' CLIPTokenizer's ids, built from the same vocabulary."""

from __future__ import annotations

import json
import random
import sys
import unicodedata

import pytest
import torch
from tokenizers import Regex, pre_tokenizers
from transformers import CLIPTokenizer as HFCLIPTokenizer

from sd_desktop.core.errors import ModelLoadError
from sd_desktop.core.text.tokenizer import (
    LETTER,
    NUMBER,
    OTHER,
    SPACE,
    CLIPTokenizer,
    char_class,
    clean_text,
)

HANDWRITTEN = [
    "",
    " ",
    "a photo of a cat",
    "A Photo Of A CAT",
    "(masterpiece:1.2), [blue] sky, ((best quality)), {cinematic}",
    "portrait of a woman, (detailed eyes:1.3), [[lowres]], 8k uhd, dslr, soft lighting",
    "(worst quality, low quality:1.4), bad anatomy, watermark, text, signature",
    "a cat AND a dog, <lora:style_v2:0.8>, embedding:easynegative",
    "masterpiece, best_quality, 1girl, solo, looking_at_viewer",
    "hello, world! how are you?? ... ok!!! #tag @user $100 50% a&b c|d",
    "!!!???...,,,;;;:::---___===+++***///\\\\\\",
    "~`^'\"<>[]{}()",
    "12345678901234567890123456789012345678901234567890",
    "3.14159 2,000,000 1e-5 -42 +7 0x1F 1/2 ½ ² ³ ¼ Ⅻ ٣ ४",
    "year 2024, 4k, 16:9, f/1.8, 85mm, iso100",
    "café naïve résumé façade jalapeño Zürich Ærø Øresund crème brûlée",
    "e\u0301 a\u0300 o\u0308 n\u0303 combining: Z\u0351\u0325\u0327 ",
    "\u0301 leading combining mark, i\u0307, \u0651\u064e",
    "ΟΔΟΣ ΣΟΦΟΣ Σ σ ς İstanbul ǅemal ẞtraße ǈ ǋ",
    "東京の夜景、ネオン、雨 一只可爱的猫 한국어 프롬프트",
    "Привет мир, Ёжик в тумане",
    "مرحبا بالعالم שלום עולם नमस्ते दुनिया สวัสดีชาวโลก",
    "emoji 🐱🐶 🎨✨ 👩‍👩‍👧 🇯🇵 ❤️ 👍🏽 🏳️‍🌈",
    "   leading and trailing spaces   ",
    "tabs\tand\nnewlines\r\nand\x0bvertical\x0cfeed",
    "odd spaces:\u00a0nbsp\u2003em\u3000ideographic\u2028line\u2029para\x85nel",
    "separators \x1c\x1d\x1e\x1f are not whitespace to the regex",
    "zero\u200bwidth\u200cjoiner\u200dword\ufeffbom \u00adsoft",
    "control \x00 \x07 \x1b[31m \x7f chars",
    "&amp; &lt;tag&gt; &#39;quoted&#39; &quot;q&quot; &nbsp; &amp;amp; &#x27; &copy;",
    "<|startoftext|>",
    "<|endoftext|>",
    "a <|startoftext|> b <|endoftext|> c",
    "x<|endoftext|>y<|startoftext|>z",
    "!!<|endoftext|>!! '<|endoftext|>'s",
    "<|ENDOFTEXT|> <|StartOfText|>'s <|endoftext|",
    "<<|endoftext|>> <|<|endoftext|>|>",
    "it's don't can't won't I'm you're we've they'll she'd",
    "IT'S DON'T THEY'LL WE'VE I'M",
    "rock'n'roll o'clock 'twas 'll 's ''s 'S ''''",
    "it’s curly apostrophe ‘quoted’ “double”",
    "¡hola! ¿qué tal? « guillemets » — em dash – en dash … ellipsis",
    "math: ∑ ∫ √ ∞ ≠ ≤ ≥ ± × ÷ → ⇒ ∀ ∃",
    "fullwidth ＡＢＣ１２３！ halfwidth ｱｲｳ",
    "ligatures ﬁ ﬂ ﬀ and Ⓐ ⓑ ㊙",
    "newer unicode: \U00031350\U00031351 \U000105c0 \U00010d40\U00010d41 \U00010d50 \ua7cb \U00016ea0",
    "mixed123abc456def 7up a1b2c3",
    "snake_case_words and kebab-case-words and CamelCaseWords",
    "http://example.com/path?query=1&x=2 user@example.com",
    "\"quoted prompt\" and 'single quoted'",
    "a " * 100,
    "masterpiece, " * 40,
    ", ".join(f"tag{i}" for i in range(120)),
    "a very long prompt " + " ".join(["with many words about a beautiful landscape"] * 20),
    "9" * 300,
    "🐱" * 50,
]

FRAGMENTS = [
    "cat", "Dog", "HOUSE", "masterpiece", "best quality", "(red:1.3)", "[blue]", "((x))", "{y}",
    ",", ".", "!", "?", "...", ";", ":", "-", "_", "/", "\\", "|", "#", "@", "&", "%", "+", "=",
    "0", "7", "42", "1.5", "2024", "1234567890123", "½", "²", "٣",
    "é", "e\u0301", "ñ", "ü", "Å", "ø", "ß", "ẞ", "ǅ", "İ", "Σ", "ΟΔΟΣ", "\u0300", "\u0327\u0301",
    "東京", "猫", "한글", "ひらがな", "カタカナ", "中文字符",
    "🐱", "🎨", "✨", "👩‍👧", "🇫🇷", "❤️", "👍🏿",
    " ", "  ", "\t", "\n", "\r\n", "\u00a0", "\u3000", "\x1c", "\x85", "\u2028",
    "&amp;", "&lt;", "&gt;", "&#39;", "&quot;", "&amp;amp;",
    "<|startoftext|>", "<|endoftext|>", "<|ENDOFTEXT|>", "<|", "|>",
    "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'", "it's", "DON'T", "THEY'LL",
    "\u200b", "\x00", "\ufffd", "\U00031350", "\U00010d40",
]


def random_prompts(count: int, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    prompts = []
    for _ in range(count):
        parts = rng.choices(FRAGMENTS, k=rng.randint(1, 40))
        separators = rng.choices(["", " ", ", ", " "], k=len(parts))
        prompts.append("".join(p + s for p, s in zip(parts, separators)))
    return prompts


CORPUS = HANDWRITTEN + random_prompts(220)


def write_transformers_files(folder, vocab: dict[str, int], merges: list[tuple[str, str]]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    lines = ["#version: 0.2"] + [f"{a} {b}" for a, b in merges]
    (folder / "merges.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")


def sorted_merges(tok: CLIPTokenizer) -> list[tuple[str, str]]:
    return sorted(tok.ranks, key=tok.ranks.get)


@pytest.fixture(scope="module")
def ours() -> CLIPTokenizer:
    return CLIPTokenizer.default()


@pytest.fixture(scope="module")
def reference(ours, tmp_path_factory) -> HFCLIPTokenizer:
    """transformers' CLIPTokenizer over vocab.json + merges.txt written from the bundled .gz file."""
    folder = tmp_path_factory.mktemp("hf_tokenizer")
    write_transformers_files(folder, ours.vocab, sorted_merges(ours))
    return HFCLIPTokenizer.from_pretrained(str(folder), pad_token="<|endoftext|>", model_max_length=77)


def reference_ids(reference, texts, max_length=77) -> list[list[int]]:
    return reference(texts, padding="max_length", truncation=True, max_length=max_length).input_ids


def test_bundled_vocabulary_is_openais(ours, reference):
    assert len(ours.vocab) == 49408 == len(reference)
    assert (ours.bos_id, ours.eos_id, ours.pad_id) == (49406, 49407, 49407)
    assert (reference.bos_token_id, reference.eos_token_id, reference.pad_token_id) == (49406, 49407, 49407)
    assert len(ours.ranks) == 48894
    # Landmarks of OpenAI's layout: bytes, their end-of-word forms, then merges in file order.
    assert ours.vocab["!"] == 0 and ours.vocab["!</w>"] == 256 and ours.vocab["in"] == 512
    assert ours.vocab["a</w>"] == 320 and ours.vocab["photo</w>"] == 1125
    assert ours.encode("a photo of a cat") == [320, 1125, 539, 320, 2368]


def test_corpus_ids_match_transformers(ours, reference):
    assert len(CORPUS) >= 200
    expected = reference_ids(reference, CORPUS)
    got = ours(CORPUS)
    assert got.dtype == torch.long and got.shape == (len(CORPUS), 77)
    mismatches = [(text, e, g) for text, e, g in zip(CORPUS, expected, got.tolist()) if e != g]
    assert not mismatches, f"{len(mismatches)} prompts differ, first: {mismatches[0]}"


def test_untruncated_encode_matches_transformers(ours, reference):
    # Long prompts in full (the chunked path needs every id, not the first 75).
    long_ones = [t for t in CORPUS if len(reference(t, add_special_tokens=False).input_ids) > 75]
    assert len(long_ones) >= 10
    for text in CORPUS:
        assert ours.encode(text) == reference(text, add_special_tokens=False).input_ids, text


def test_other_lengths_match_transformers(ours, reference):
    texts = CORPUS[:80]
    for max_length in (5, 16, 100):
        assert ours(texts, max_length=max_length).tolist() == reference_ids(reference, texts, max_length)
    row = ours("word " * 200)[0]
    assert row[0] == ours.bos_id and row[-1] == ours.eos_id and (row[1:-1] != ours.eos_id).all()
    assert ours("a single string").shape == (1, 77)


@pytest.mark.slow
def test_char_classes_match_the_regex_engine():
    # Every code point, classified by the tokenizers library's own regex engine (Oniguruma).
    code_points = [c for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]
    text = "".join(map(chr, code_points))

    def matched(pattern):
        split = pre_tokenizers.Split(Regex(pattern), behavior="removed", invert=True)
        return {char for piece, _ in split.pre_tokenize_str(text) for char in piece}

    expected = {SPACE: matched(r"\s"), LETTER: matched(r"\p{L}"), NUMBER: matched(r"\p{N}")}
    for kind, chars in expected.items():
        ours_chars = {chr(c) for c in code_points if char_class(chr(c)) == kind}
        diff = sorted(hex(ord(c)) for c in ours_chars ^ chars)
        assert not diff, f"class {kind} differs at {diff[:20]}"
    assert char_class("!") == OTHER and char_class("\x1c") == OTHER  # isspace() says True here


@pytest.mark.slow
def test_normalizer_matches_transformers_on_every_code_point(reference):
    # Each code point between spaces, so NFC cannot compose neighbours: lower case and NFC of
    # each character as transformers' normaliser does them (strip and collapsing aside).
    code_points = [c for c in range(sys.maxunicode + 1) if not 0xD800 <= c <= 0xDFFF]
    text = " ".join(map(chr, code_points))
    expected = reference.backend_tokenizer.normalizer.normalize_str(text)
    assert clean_text(text) == expected.strip(" ")
    assert clean_text("  ΟΔΟΣ\t\n A  ") == "οδοσ a"  # per-character lower case: no final ς
    assert clean_text("\x1c A \x1f") == "\x1c a \x1f"  # not whitespace to the regex


def test_decode_gives_back_cleaned_ascii_prompts(ours, reference):
    plain = ["a photo of a cat", "  A   Red  HOUSE on a hill ", "masterpiece best quality",
             "the quick brown fox jumps over the lazy dog", "Portrait Of An Old Man In The Rain"]
    for text in plain:
        assert ours.decode(ours.encode(text)) == clean_text(text) == " ".join(text.lower().split())
    for text, ids in zip(CORPUS, reference_ids(reference, CORPUS)):
        assert ours.decode(ids) == reference.decode(ids, skip_special_tokens=True), text
        assert ours.decode(ids, skip_special_tokens=False) == reference.decode(ids), text
    assert ours.decode(torch.tensor(ours.encode("a cat"))) == "a cat"


def test_pad_chunk(ours, reference):
    assert ours.pad_chunk([]) == [ours.bos_id, ours.eos_id] + [ours.eos_id] * 75
    assert ours.pad_chunk([]) == reference_ids(reference, [""])[0]
    text = ", ".join(f"tag{i}" for i in range(120))
    assert ours.pad_chunk(ours.encode(text)[:75]) == reference_ids(reference, [text])[0]  # truncated as there
    with pytest.raises(ValueError):
        ours.pad_chunk([320] * 76)


def test_from_files_diffusers_folder(ours, tmp_path):
    tokenizer_dir = tmp_path / "my-model" / "tokenizer"
    write_transformers_files(tokenizer_dir, ours.vocab, sorted_merges(ours))
    (tokenizer_dir / "special_tokens_map.json").write_text(json.dumps({"pad_token": "<|endoftext|>"}))
    loaded = CLIPTokenizer.from_files(tokenizer_dir / "vocab.json", tokenizer_dir / "merges.txt")
    assert loaded.vocab == ours.vocab and loaded.ranks == ours.ranks
    assert (loaded.bos_id, loaded.eos_id, loaded.pad_id) == (49406, 49407, 49407)
    assert torch.equal(loaded(CORPUS), ours(CORPUS))


def test_from_files_reads_special_ids_from_the_vocab(ours, tmp_path):
    # Same tokens, different ids: the specials first, everything else shifted by two.
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for token, index in sorted(ours.vocab.items(), key=lambda item: item[1])[:-2]:
        vocab[token] = index + 2
    write_transformers_files(tmp_path, vocab, sorted_merges(ours))
    loaded = CLIPTokenizer.from_files(tmp_path / "vocab.json", tmp_path / "merges.txt")
    assert (loaded.bos_id, loaded.eos_id, loaded.pad_id) == (0, 1, 1)
    reference = HFCLIPTokenizer.from_pretrained(str(tmp_path), pad_token="<|endoftext|>", model_max_length=77)
    texts = CORPUS[:60]
    assert loaded(texts).tolist() == reference_ids(reference, texts)
    assert loaded.decode(loaded.encode("a photo of a cat")) == "a photo of a cat"


def test_pad_token_other_than_end_matches_transformers(ours, tmp_path):
    # SD 2.x folders pad with "!"; transformers also cuts that token out of the text as special.
    write_transformers_files(tmp_path, ours.vocab, sorted_merges(ours))
    loaded = CLIPTokenizer.from_files(tmp_path / "vocab.json", tmp_path / "merges.txt", pad_token="!")
    reference = HFCLIPTokenizer.from_pretrained(str(tmp_path), pad_token="!", model_max_length=77)
    assert loaded.pad_id == reference.pad_token_id == 0
    texts = ["hi!! there!", "a cat"] + CORPUS[:40]
    assert loaded(texts).tolist() == reference_ids(reference, texts)


def test_broken_vocab_is_a_clear_error(tmp_path):
    (tmp_path / "vocab.json").write_text(json.dumps({"a": 0, "<|startoftext|>": 1}))
    (tmp_path / "merges.txt").write_text("#version: 0.2\n")
    with pytest.raises(ModelLoadError, match="endoftext"):
        CLIPTokenizer.from_files(tmp_path / "vocab.json", tmp_path / "merges.txt")
    with pytest.raises(ModelLoadError):
        CLIPTokenizer.from_files(tmp_path / "missing.json", tmp_path / "merges.txt")


def test_default_is_shared(ours):
    assert CLIPTokenizer.default() is ours
    assert unicodedata.normalize("NFC", "e\u0301") == "é" and ours.encode("e\u0301") == ours.encode("é")
