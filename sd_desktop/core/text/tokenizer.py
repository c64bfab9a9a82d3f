"""CLIP's byte-level BPE tokenizer, without `regex`, `ftfy` or `tokenizers`.

It gives the ids that transformers' (5.x, tokenizers-backed) `CLIPTokenizer` gives, the one
diffusers feeds SD 1.x with, so a prompt means the same picture here as there. Where that differs
from OpenAI's `simple_tokenizer` it follows transformers, and says so:

- no `html.unescape`: "&amp;" stays three tokens, as in transformers (OpenAI unescapes it twice);
- no ftfy: the text is NFC-normalised, whitespace runs become one space, then lower-cased one
  character at a time (so a final capital sigma becomes "σ", not "ς");
- the special strings "<|startoftext|>" / "<|endoftext|>" (and the pad token's) are cut out of the
  raw text first, exactly as written, and become their ids; any other spelling of them (say
  "<|EndOfText|>", lower-cased to the same string) is ordinary text, which the byte-level step
  splits into "<|", "endoftext", "|>", and BPE encodes.
"""

from __future__ import annotations

import bisect
import functools
import gzip
import json
import re
import unicodedata
from pathlib import Path
from typing import TYPE_CHECKING

from sd_desktop.core.errors import ModelLoadError

if TYPE_CHECKING:  # torch is imported where tensors are made: the window counts tokens without it
    import torch

BOS_TOKEN = "<|startoftext|>"
EOS_TOKEN = "<|endoftext|>"
END_OF_WORD = "</w>"
MAX_LENGTH = 77  # positions of SD 1.x's text encoder: start + 75 tokens + end
BUNDLED_MERGES = 49152 - 256 - 2  # merge lines OpenAI reads from the bundled file: 48894
_CACHE_LIMIT = 10_000  # words; a prompt session repeats few, a training run could grow it forever

# ---------------------------------------------------------------------------------------------
# Unicode classes as the tokenizers library's regex engine (Oniguruma, Unicode 16) sees them.
# Python 3.11's unicodedata is Unicode 14, so the letters, digits and case pairs added in 15-16
# are listed here; these are stable Unicode facts, so the lists stay right on newer Pythons.

# \s: Unicode White_Space. str.isspace() would also count \x1c-\x1f, which the regex does not.
_WHITESPACE = frozenset(
    "\t\n\x0b\x0c\r \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_WHITESPACE_RUN = re.compile("[" + re.escape("".join(sorted(_WHITESPACE))) + "]+")

_NEWER_LETTERS = (  # \p{L} added in Unicode 15.0-16.0, inclusive ranges
    (0x1C89, 0x1C8A), (0xA7CB, 0xA7CD), (0xA7DA, 0xA7DC), (0x105C0, 0x105F3),
    (0x10D4A, 0x10D65), (0x10D6F, 0x10D85), (0x10EC2, 0x10EC4), (0x1123F, 0x11240),
    (0x11380, 0x11389), (0x1138B, 0x1138B), (0x1138E, 0x1138E), (0x11390, 0x113B5),
    (0x113B7, 0x113B7), (0x113D1, 0x113D1), (0x113D3, 0x113D3), (0x11BC0, 0x11BE0),
    (0x11F02, 0x11F02), (0x11F04, 0x11F10), (0x11F12, 0x11F33), (0x1342F, 0x1342F),
    (0x13441, 0x13446), (0x13460, 0x143FA), (0x16100, 0x1611D), (0x16D40, 0x16D6C),
    (0x18CFF, 0x18CFF), (0x1B132, 0x1B132), (0x1B155, 0x1B155), (0x1DF25, 0x1DF2A),
    (0x1E030, 0x1E06D), (0x1E4D0, 0x1E4EB), (0x1E5D0, 0x1E5ED), (0x1E5F0, 0x1E5F0),
    (0x2B739, 0x2B739), (0x2EBF0, 0x2EE5D), (0x31350, 0x323AF),
)
_NEWER_NUMBERS = (  # \p{N} added in Unicode 15.0-16.0
    (0x10D40, 0x10D49), (0x116D0, 0x116E3), (0x11BF0, 0x11BF9), (0x11F50, 0x11F59),
    (0x16130, 0x16139), (0x16D70, 0x16D79), (0x1CCF0, 0x1CCF9), (0x1D2C0, 0x1D2D3),
    (0x1E4F0, 0x1E4F9), (0x1E5F1, 0x1E5FA),
)
# Lower-case mappings Rust's char::to_lowercase knows (Unicode 16-17) and Python 3.11 does not.
_NEWER_LOWER = {
    0x1C89: 0x1C8A, 0xA7CB: 0x0264, 0xA7CC: 0xA7CD, 0xA7CE: 0xA7CF, 0xA7D2: 0xA7D3,
    0xA7D4: 0xA7D5, 0xA7DA: 0xA7DB, 0xA7DC: 0x019B,
    **{c: c + 0x20 for c in range(0x10D50, 0x10D66)},  # Garay
    **{c: c + 0x1B for c in range(0x16EA0, 0x16EB9)},  # Beria Erfe
}

SPACE, LETTER, NUMBER, OTHER = range(4)


def _in_ranges(ranges: tuple[tuple[int, int], ...], code: int) -> bool:
    i = bisect.bisect_right(ranges, (code, 0x10FFFF)) - 1
    return i >= 0 and ranges[i][0] <= code <= ranges[i][1]


@functools.lru_cache(maxsize=65536)
def char_class(char: str) -> int:
    """SPACE (\\s), LETTER (\\p{L}), NUMBER (\\p{N}) or OTHER, as CLIP's split pattern sees it."""
    if char in _WHITESPACE:
        return SPACE
    category = unicodedata.category(char)
    if category[0] == "L" or (category == "Cn" and _in_ranges(_NEWER_LETTERS, ord(char))):
        return LETTER
    if category[0] == "N" or (category == "Cn" and _in_ranges(_NEWER_NUMBERS, ord(char))):
        return NUMBER
    return OTHER


def _lower(text: str) -> str:
    if text.isascii():
        return text.lower()
    # One character at a time, as the tokenizers library does: str.lower() would turn a
    # word-final "Σ" into "ς".
    return "".join(c.lower() for c in text).translate(_NEWER_LOWER)


def clean_text(text: str) -> str:
    """The normaliser: NFC, whitespace runs to one space, lower case (and strip, which OpenAI does
    and which cannot change ids). The text a decode of plain ascii words gives back."""
    # strip(" "), not strip(): str.isspace() counts \x1c-\x1f, which are text to the regex.
    return _lower(_WHITESPACE_RUN.sub(" ", unicodedata.normalize("NFC", text))).strip(" ")


# ---------------------------------------------------------------------------------------------
# Pre-tokenisation: CLIP's pattern
#   <|startoftext|>|<|endoftext|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
# scanned by hand: at each position try the alternatives in order; whitespace matches nothing.

_CONTRACTIONS = ("s", "t", "re", "ve", "m", "ll", "d")  # after "'"; none is a prefix of an earlier one
_SPECIAL_WORDS = ("startoftext", "endoftext")


def split_words(text: str) -> list[str]:
    """Cut cleaned text into the pieces BPE encodes one by one."""
    words = []
    i, n = 0, len(text)
    while i < n:
        char = text[i]
        kind = char_class(char)
        if kind == SPACE:
            i += 1
            continue
        if char == "<" and text.startswith((BOS_TOKEN, EOS_TOKEN), i):
            # The pattern keeps the literal whole, but transformers' byte-level pre-tokeniser then
            # re-splits it with GPT-2's pattern into "<|", the word, "|>". (Exact literals in the
            # raw text never get here: they were cut out as special tokens before cleaning.)
            word = next(w for w in _SPECIAL_WORDS if text.startswith(w, i + 2))
            words += ["<|", word, "|>"]
            i += len(word) + 4
            continue
        if char == "'":
            suffix = next((s for s in _CONTRACTIONS if text.startswith(s, i + 1)), None)
            if suffix is not None:
                words.append(text[i : i + 1 + len(suffix)])
                i += 1 + len(suffix)
                continue
        j = i + 1
        if kind == LETTER:
            while j < n and char_class(text[j]) == LETTER:
                j += 1
        elif kind == OTHER:
            while j < n and char_class(text[j]) == OTHER:
                j += 1
        # NUMBER: one digit per piece, so "2024" is four pieces
        words.append(text[i:j])
        i = j
    return words


@functools.cache
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2's reversible map from bytes to printable characters (BPE never sees raw bytes)."""
    printable = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1)]
    printable += range(ord("®"), ord("ÿ") + 1)
    mapping = {b: chr(b) for b in printable}
    extra = 0
    for b in range(256):
        if b not in mapping:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping  # this order (printable bytes first) is the order of the first 256 ids


def _pairs(word: tuple[str, ...]) -> set[tuple[str, str]]:
    return set(zip(word, word[1:]))


def bpe(token: str, ranks: dict[tuple[str, str], int]) -> tuple[str, ...]:
    """OpenAI's BPE: merge the best-ranked adjacent pair everywhere, until no pair has a rank."""
    word = (*token[:-1], token[-1] + END_OF_WORD)
    pairs = _pairs(word)
    while pairs:
        bigram = min(pairs, key=lambda pair: ranks.get(pair, float("inf")))
        if bigram not in ranks:
            break
        first, second = bigram
        merged: list[str] = []
        i = 0
        while i < len(word):
            if i < len(word) - 1 and word[i] == first and word[i + 1] == second:
                merged.append(first + second)
                i += 2
            else:
                merged.append(word[i])
                i += 1
        word = tuple(merged)
        pairs = _pairs(word)
    return word


def _read_merges(lines: list[str]) -> list[tuple[str, str]]:
    merges = []
    for line in lines:
        parts = line.split()
        if len(parts) == 2:
            merges.append((parts[0], parts[1]))
    return merges


class CLIPTokenizer:
    """Text -> CLIP token ids. Build with `default()` (bundled vocabulary) or `from_files()`."""

    def __init__(self, vocab: dict[str, int], merges: list[tuple[str, str]], pad_token: str | None = None):
        for token in (BOS_TOKEN, EOS_TOKEN, pad_token or EOS_TOKEN):
            if token not in vocab:
                raise ModelLoadError(
                    f"The CLIP vocabulary has no {token!r} token; the model's tokenizer files are damaged"
                )
        self.vocab = vocab
        self.tokens = {i: t for t, i in vocab.items()}
        self.ranks = {pair: rank for rank, pair in enumerate(merges)}
        self.bos_id = vocab[BOS_TOKEN]
        self.eos_id = vocab[EOS_TOKEN]
        self.pad_id = vocab[pad_token or EOS_TOKEN]  # SD 1.x pads with the end token
        self.unk_id = self.eos_id  # transformers' unk_token; unreachable with a byte-complete vocab
        specials = sorted({BOS_TOKEN, EOS_TOKEN, pad_token or EOS_TOKEN}, key=len, reverse=True)
        self._special_split = re.compile("(" + "|".join(map(re.escape, specials)) + ")")
        self._special_ids = {vocab[t] for t in specials}
        self._byte_encoder = bytes_to_unicode()
        self._byte_decoder = {c: b for b, c in self._byte_encoder.items()}
        self._cache: dict[str, list[int]] = {}

    # -- construction ---------------------------------------------------------------------

    @classmethod
    @functools.cache
    def default(cls) -> CLIPTokenizer:
        """The tokenizer of SD 1.x, from the bundled OpenAI merges file (built once, then shared)."""
        from sd_desktop.resources_path import resource

        path = resource("clip", "bpe_simple_vocab_16e6.txt.gz")
        lines = gzip.decompress(path.read_bytes()).decode("utf-8").split("\n")
        merges = _read_merges(lines[1 : BUNDLED_MERGES + 1])  # line 0 is a version header
        byte_chars = list(bytes_to_unicode().values())
        tokens = byte_chars + [c + END_OF_WORD for c in byte_chars] + ["".join(m) for m in merges]
        tokens += [BOS_TOKEN, EOS_TOKEN]
        return cls({t: i for i, t in enumerate(tokens)}, merges)

    @classmethod
    def from_files(
        cls, vocab_json: str | Path, merges_txt: str | Path, pad_token: str | None = None
    ) -> CLIPTokenizer:
        """A model folder's own `tokenizer/vocab.json` and `tokenizer/merges.txt` (transformers'
        format). `pad_token` is the folder's pad token when it is not the end token (SD 2.x: "!")."""
        try:
            vocab = json.loads(Path(vocab_json).read_text(encoding="utf-8"))
            lines = Path(merges_txt).read_text(encoding="utf-8").split("\n")
        except (OSError, ValueError) as error:
            raise ModelLoadError(
                f"Could not read the tokenizer files {vocab_json} and {merges_txt}: {error}"
            ) from error
        if lines and lines[0].startswith("#version"):
            lines = lines[1:]
        return cls(vocab, _read_merges(lines), pad_token)

    def save_files(self, folder: str | Path) -> tuple[Path, Path]:
        """Write vocab.json and merges.txt in transformers' format (a diffusers folder's tokenizer/), which
        from_files and transformers' CLIPTokenizer read back."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        merges = sorted(self.ranks, key=self.ranks.__getitem__)
        (folder / "vocab.json").write_text(json.dumps(self.vocab), encoding="utf-8")
        (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(" ".join(m) for m in merges) + "\n",
                                           encoding="utf-8")
        return folder / "vocab.json", folder / "merges.txt"

    # -- encoding -------------------------------------------------------------------------

    def _encode_word(self, word: str) -> list[int]:
        ids = self._cache.get(word)
        if ids is None:
            chars = "".join(self._byte_encoder[b] for b in word.encode("utf-8"))
            ids = [self.vocab.get(piece, self.unk_id) for piece in bpe(chars, self.ranks)]
            if len(self._cache) >= _CACHE_LIMIT:
                self._cache.clear()
            self._cache[word] = ids
        return ids

    def encode(self, text: str) -> list[int]:
        """BPE ids of `text`, without the start and end tokens."""
        ids: list[int] = []
        # Special tokens are found in the raw text, before cleaning, as transformers does.
        for i, segment in enumerate(self._special_split.split(text)):
            if i % 2:
                ids.append(self.vocab[segment])
            elif segment:
                for word in split_words(clean_text(segment)):
                    ids += self._encode_word(word)
        return ids

    def pad_chunk(self, ids: list[int], max_length: int = MAX_LENGTH) -> list[int]:
        """start + ids + end, padded with the pad token to `max_length`."""
        if len(ids) > max_length - 2:
            raise ValueError(f"a chunk holds at most {max_length - 2} tokens, got {len(ids)}")
        return [self.bos_id, *ids, self.eos_id] + [self.pad_id] * (max_length - 2 - len(ids))

    def __call__(self, texts: list[str] | str, max_length: int = MAX_LENGTH) -> "torch.Tensor":
        """[B, max_length] long tensor: start + ids + end + padding; long prompts are cut so the
        end token stays last (what transformers' truncation=True, padding="max_length" gives)."""
        import torch

        if isinstance(texts, str):
            texts = [texts]
        rows = [self.pad_chunk(self.encode(t)[: max_length - 2], max_length) for t in texts]
        return torch.tensor(rows, dtype=torch.long).reshape(len(rows), max_length)

    # -- decoding -------------------------------------------------------------------------

    def decode(self, ids: "list[int] | torch.Tensor", skip_special_tokens: bool = True) -> str:
        """Text of `ids`: what transformers' decode gives (words joined by single spaces)."""
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        if skip_special_tokens:
            ids = [i for i in ids if i not in self._special_ids]
        raw = bytearray()
        for char in "".join(self.tokens.get(i, "") for i in ids):  # unknown ids drop out, as there
            byte = self._byte_decoder.get(char)
            raw += char.encode("utf-8") if byte is None else bytes((byte,))
        return raw.decode("utf-8", errors="replace").replace(END_OF_WORD, " ").strip()
