"""Prompt weighting, as AUTOMATIC1111 and ComfyUI read it. Pure Python: the window counts tokens with it.

AUTOMATIC1111 (`parse_prompt_attention`):
    (words)       x 1.1            (words:1.3)   x 1.3 (spaces around the number allowed)
    [words]       / 1.1            nesting multiplies: ((words)) is x 1.21
    \\( \\) \\[ \\] \\\\   literal characters; a backslash before anything else is dropped
    BREAK         (a word of its own, in capitals) ends the 75-token chunk
    Brackets left open are closed at the end of the text; a closing bracket with none open, or a
    ":1.3)" with no "(" open, is ordinary text. Runs of equal weight are merged.
ComfyUI (`parse_comfy_weights`):
    (words) x 1.1, (words:1.3) sets the weight to 1.3 (it does not multiply), \\( \\) literal;
    square brackets and BREAK are ordinary text, and a "(" never closed stays text.
"""

from __future__ import annotations

BRACKET_UP = 1.1  # ( ) multiplies the weight by this, [ ] divides by it
BREAK = "BREAK"
BREAK_WEIGHT = -1.0  # the marker A1111's parser gives a BREAK (a weighted BREAK is ordinary text)
_ESCAPABLE = "()[]\\"
_SPECIAL = set("()[]:\\")


def _number_then_close(text: str, start: int) -> tuple[float, int] | None:
    """At text[start] == ":", a weight "  +1.25 )" -> (1.25, index after ")"); None if it is not one."""
    i, n = start + 1, len(text)
    while i < n and text[i].isspace():
        i += 1
    begin = i
    if i < n and text[i] in "+-":
        i += 1
    digits = i
    while i < n and (text[i].isdigit() or text[i] == "."):
        i += 1
    if i == digits:
        return None
    number = text[begin:i]
    while i < n and text[i].isspace():
        i += 1
    if i >= n or text[i] != ")":
        return None
    try:
        return float(number), i + 1
    except ValueError:  # "1.2.3": A1111 would fail; here it stays text
        return None


def _split_breaks(text: str) -> list[tuple[str, float]]:
    """Plain text with each standalone BREAK (and the white space around it) as a marker."""
    pieces: list[tuple[str, float]] = []
    words_start, i, n = 0, 0, len(text)
    while i < n:
        at_word_start = i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")
        end = i + len(BREAK)
        if at_word_start and text.startswith(BREAK, i) and (end == n or not (text[end].isalnum() or text[end] == "_")):
            before = text[words_start:i].rstrip()
            after = end
            while after < n and text[after].isspace():
                after += 1
            pieces += [(before, 1.0), (BREAK, BREAK_WEIGHT)]
            words_start = i = after
            continue
        i += 1
    pieces.append((text[words_start:], 1.0))
    return pieces


def parse_prompt_attention(text: str) -> list[tuple[str, float]]:
    """AUTOMATIC1111's reading of a prompt: [(text, weight)], BREAK as (BREAK, -1.0). See the module doc."""
    out: list[list] = []
    rounds: list[int] = []
    squares: list[int] = []

    def scale_from(position: int, factor: float) -> None:
        for item in out[position:]:
            item[1] *= factor

    i, n = 0, len(text)
    while i < n:
        char = text[i]
        if char == "\\":
            if i + 1 < n and text[i + 1] in _ESCAPABLE:
                out.append([text[i + 1], 1.0])
                i += 2
            else:
                i += 1  # a lone backslash vanishes, as in A1111
            continue
        if char == "(":
            rounds.append(len(out))
        elif char == "[":
            squares.append(len(out))
        elif char == ":" and rounds and (weight := _number_then_close(text, i)) is not None:
            scale_from(rounds.pop(), weight[0])
            i = weight[1]
            continue
        elif char == ")" and rounds:
            scale_from(rounds.pop(), BRACKET_UP)
        elif char == "]" and squares:
            scale_from(squares.pop(), 1 / BRACKET_UP)
        elif char in _SPECIAL:
            out.append([char, 1.0])  # an unmatched bracket or a colon: text
        else:
            end = i
            while end < n and text[end] not in _SPECIAL:
                end += 1
            out += [list(piece) for piece in _split_breaks(text[i:end])]
            i = end
            continue
        i += 1
    for position in rounds:
        scale_from(position, BRACKET_UP)
    for position in squares:
        scale_from(position, 1 / BRACKET_UP)
    return _merge(out)


def _merge(items: list[list]) -> list[tuple[str, float]]:
    merged: list[list] = []
    for text, weight in items:
        if merged and merged[-1][1] == weight:
            merged[-1][0] += text
        else:
            merged.append([text, weight])
    return [(text, weight) for text, weight in merged] or [("", 1.0)]


def parse_comfy_weights(text: str) -> list[tuple[str, float]]:
    """ComfyUI's reading of a prompt: [(text, weight)]. See the module doc."""
    escaped = text.replace("\\)", "\0\1").replace("\\(", "\0\2")

    def restore(part: str) -> str:
        return part.replace("\0\1", ")").replace("\0\2", "(")

    def groups(part: str) -> list[str]:
        """Top-level pieces: plain runs and whole "( ... )" groups (a "(" never closed stays in its run)."""
        found, current, depth = [], "", 0
        for char in part:
            if char == "(":
                if depth == 0 and current:
                    found.append(current)
                    current = ""
                current += char
                depth += 1
            elif char == ")":
                depth -= 1
                current += char
                if depth == 0:
                    found.append(current)
                    current = ""
            else:
                current += char
        if current:
            found.append(current)
        return found

    def weigh(part: str, weight: float) -> list[tuple[str, float]]:
        result = []
        for piece in groups(part):
            if len(piece) >= 2 and piece[0] == "(" and piece[-1] == ")":
                inner, inner_weight = piece[1:-1], weight * BRACKET_UP
                colon = inner.rfind(":")
                if colon > 0:
                    try:
                        inner_weight = float(inner[colon + 1:])
                        inner = inner[:colon]
                    except ValueError:
                        pass
                result += weigh(inner, inner_weight)
            else:
                result.append((restore(piece), weight))
        return result

    return weigh(escaped, 1.0)
