"""The text an image file carries, read without decoding a pixel, and the EXIF that carries it in JPEG/WebP.

- PNG: every tEXt, zTXt and iTXt chunk, before or after the pixel data, found by walking the chunks and
  seeking over the image data (Pillow's `.text` decodes the whole image to reach chunks after it: 2 s for
  an 8192² PNG). eXIf's UserComment too.
- JPEG and WebP: EXIF UserComment, where A1111 writes its infotext (as `parameters`, the name it has in
  a PNG), whether in the Exif sub-IFD (A1111, piexif) or in IFD0 (Fooocus); a JPEG comment as a fallback.
  Both found by walking the file's segments (JPEG markers, RIFF chunks), whatever the image's size.
- Anything else Pillow opens: its text info, without loading the pixels.
"""

from __future__ import annotations

import io
import logging
import os
import struct
import warnings
import zlib
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from ..errors import SDDesktopError

log = logging.getLogger(__name__)

PARAMETERS_KEY = "parameters"  # AUTOMATIC1111's chunk name, and what its EXIF UserComment is read as
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_TEXT_BYTES = 32 * 1024 * 1024  # one decompressed chunk at most (a zTXt bomb is skipped)
EXIF_IFD = 0x8769
USER_COMMENT = 0x9286
USER_COMMENT_PREFIXES = {b"ASCII\0\0\0": "ascii", b"UNICODE\0": "utf-16", b"JIS\0\0\0\0\0": "shift_jis",
                         b"\0" * 8: "utf-8"}


class UnreadableImageError(SDDesktopError, OSError):
    """An image file whose parameters were asked for cannot be opened."""


def text_chunks(path_or_image: str | os.PathLike | Image.Image) -> dict[str, str]:
    """The text an image carries, keyed as in a PNG ("parameters", "prompt", "workflow", "Comment" ...).
    Raises UnreadableImageError (one line, saying which file and why) and nothing else."""
    if isinstance(path_or_image, Image.Image):
        return image_info_text(path_or_image)
    path = Path(path_or_image)
    try:
        with open(path, "rb") as f:
            head = f.read(12)
            f.seek(0)
            if head.startswith(PNG_SIGNATURE):
                return png_text(f)
            if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
                return webp_text(f)
            if head[:3] == b"\xff\xd8\xff":
                return jpeg_text(f)
            with warnings.catch_warnings():  # a huge image is fine: its pixels are never decoded here
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(f) as image:  # reads the header only; the pixels stay on disk
                    return image_info_text(image)
    except FileNotFoundError as error:
        raise UnreadableImageError(f"Cannot read parameters: {path} does not exist.") from error
    except IsADirectoryError as error:
        raise UnreadableImageError(f"Cannot read parameters: {path} is a folder, not an image.") from error
    except UnidentifiedImageError as error:
        raise UnreadableImageError(
            f"Cannot read parameters: {path.name} is not an image file (or not one Pillow can open).") from error
    except Image.DecompressionBombError as error:
        raise UnreadableImageError(f"Cannot read parameters: {path.name} is larger than Pillow opens ({error}).") from error
    except PermissionError as error:
        raise UnreadableImageError(f"Cannot read parameters: {path.name} may not be read ({error.strerror}).") from error
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error) as error:
        raise UnreadableImageError(f"Cannot read parameters: {path.name} is damaged or truncated ({error}).") from error


def image_info_text(image: Image.Image) -> dict[str, str]:
    """The text in an opened image's .info (never its pixels), with EXIF UserComment as "parameters"."""
    found = {key: value for key, value in image.info.items() if isinstance(value, str)}
    comment = image.info.get("comment")
    if isinstance(comment, bytes) and comment:
        found.setdefault("comment", comment.decode("utf-8", errors="replace"))
    exif = image.info.get("exif")
    if isinstance(exif, bytes) and PARAMETERS_KEY not in found:
        found.update(exif_text(exif))
    if PARAMETERS_KEY not in found and image.format in ("JPEG", "GIF") and found.get("comment"):
        found[PARAMETERS_KEY] = found["comment"]  # as A1111 reads a GIF's (and some tools' JPEG) comment
    return found


# ---------------------------------------------------------------------------------------------- PNG


def png_text(f) -> dict[str, str]:
    """The text chunks of a PNG stream at its start, walking chunk headers and seeking over the rest.

    A text chunk that is damaged (its CRC, its compressed stream, a decompressed size past MAX_TEXT_BYTES)
    is skipped, as is what follows IEND; a file cut short keeps the text read before the cut, and is an
    error only when it has none."""
    f.read(len(PNG_SIGNATURE))
    found: dict[str, str] = {}
    while True:
        header = f.read(8)
        if len(header) < 8:
            if found:
                return found
            raise EOFError("the file ends before its last chunk (IEND)")
        length, kind = struct.unpack(">I4s", header)
        if kind == b"IEND":
            return found
        if kind in (b"tEXt", b"zTXt", b"iTXt", b"eXIf") and length <= MAX_TEXT_BYTES:
            data = f.read(length)
            crc = f.read(4)
            if len(data) < length or len(crc) < 4:
                if found:
                    return found
                raise EOFError(f"the {kind.decode('latin-1')} chunk is cut off")
            if struct.unpack(">I", crc)[0] != zlib.crc32(kind + data):
                log.info("skipped a damaged %s chunk (CRC)", kind)
                continue
            if kind == b"eXIf":
                for key, value in exif_text(data).items():
                    found.setdefault(key, value)
                continue
            try:
                entry = _png_text_chunk(kind, data)
            except (ValueError, zlib.error) as error:
                log.info("skipped a %s chunk: %s", kind, error)
                continue
            if entry is not None:
                found.setdefault(*entry)
        else:  # image data and the rest: skipped unread (a cut-off file ends at the next header read)
            f.seek(length + 4, io.SEEK_CUR)


def _png_text_chunk(kind: bytes, data: bytes) -> tuple[str, str] | None:
    keyword, sep, rest = data.partition(b"\0")
    if not sep or not keyword:
        return None
    key = keyword.decode("latin-1")
    if kind == b"tEXt":
        return key, rest.decode("latin-1")
    if kind == b"zTXt":
        if not rest or rest[0] != 0:
            return None
        return key, _inflate(rest[1:]).decode("latin-1")
    # iTXt: compression flag, method, language tag \0, translated keyword \0, text (UTF-8)
    if len(rest) < 2:
        return None
    compressed, method = rest[0], rest[1]
    _language, _, rest = rest[2:].partition(b"\0")
    _translated, _, text = rest.partition(b"\0")
    if compressed:
        if method != 0:
            return None
        text = _inflate(text)
    return key, text.decode("utf-8", errors="replace")


def _inflate(data: bytes) -> bytes:
    inflater = zlib.decompressobj()
    out = inflater.decompress(data, MAX_TEXT_BYTES)
    if inflater.unconsumed_tail:
        raise ValueError(f"a compressed text chunk inflates to more than {MAX_TEXT_BYTES // 2**20} MB")
    return out


# ---------------------------------------------------------------------------------------------- JPEG


def jpeg_text(f) -> dict[str, str]:
    """EXIF UserComment (APP1) and the comment (COM) of a JPEG, walking its marker segments up to the image
    data (SOS); nothing of the image is decoded, whatever its size. A comment stands in for the EXIF text
    when there is none, as A1111 reads it."""
    f.read(2)  # SOI
    found: dict[str, str] = {}

    def done() -> dict[str, str]:
        if PARAMETERS_KEY not in found and found.get("comment"):
            found[PARAMETERS_KEY] = found["comment"]
        return found

    while True:
        byte = f.read(1)
        while byte == b"\xff":  # fill bytes before a marker
            byte = f.read(1)
        if not byte:
            if found:
                return done()
            raise EOFError("the file ends before its image data")
        marker = byte[0]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:  # markers without a length
            continue
        if marker in (0xDA, 0xD9):  # start of scan, end of image: the metadata is all before
            return done()
        size = f.read(2)
        if len(size) < 2:
            raise EOFError("a marker segment is cut off")
        length = struct.unpack(">H", size)[0] - 2
        if length < 0:
            raise ValueError("a marker segment with a negative length")
        if marker not in (0xE1, 0xFE):
            f.seek(length, io.SEEK_CUR)
            continue
        data = f.read(length)
        if len(data) < length:
            if found:
                return done()
            raise EOFError("a marker segment is cut off")
        if marker == 0xE1 and data.startswith(b"Exif\0\0"):
            for key, value in exif_text(data).items():
                found.setdefault(key, value)
        elif marker == 0xFE and data:
            found.setdefault("comment", data.decode("utf-8", errors="replace"))


# ---------------------------------------------------------------------------------------------- WebP


def webp_text(f) -> dict[str, str]:
    """EXIF UserComment (and XMP-free text) of a WebP's RIFF chunks, skipping the image data."""
    header = f.read(12)
    riff_end = 8 + struct.unpack("<I", header[4:8])[0]
    found: dict[str, str] = {}
    while f.tell() + 8 <= riff_end:
        chunk = f.read(8)
        if len(chunk) < 8:
            break
        kind, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
        padded = size + (size & 1)
        if kind == b"EXIF" and size <= MAX_TEXT_BYTES:  # (a bigger one is skipped, as in a PNG)
            data = f.read(size)
            if len(data) < size:
                raise EOFError("the EXIF chunk is cut off")
            found.update(exif_text(data))
            f.seek(padded - size, io.SEEK_CUR)
        else:
            f.seek(padded, io.SEEK_CUR)
    return found


# ---------------------------------------------------------------------------------------------- EXIF


def exif_text(data: bytes) -> dict[str, str]:
    """{"parameters": UserComment} of raw EXIF (with or without the "Exif\\0\\0" of a JPEG's APP1), from
    the Exif sub-IFD (A1111) or IFD0 (Fooocus); {} when there is none or the EXIF is damaged."""
    exif = Image.Exif()
    try:
        with warnings.catch_warnings():  # Pillow warns of each damaged tag it skips
            warnings.simplefilter("ignore")
            exif.load(data)
            comment = exif.get_ifd(EXIF_IFD).get(USER_COMMENT)
            if comment is None:
                comment = exif.get(USER_COMMENT)
    except Exception as error:  # noqa: BLE001 - Pillow's TIFF reader raises many kinds on bad EXIF
        log.info("unreadable EXIF: %s", error)
        return {}
    try:
        text = decode_user_comment(comment)
    except (ValueError, TypeError, MemoryError) as error:
        log.info("unreadable EXIF UserComment: %s", error)
        return {}
    return {PARAMETERS_KEY: text} if text else {}


def decode_user_comment(value) -> str:
    """EXIF UserComment as text: its 8-byte character-code prefix says ASCII, JIS or UNICODE (UTF-16: big
    endian as written by A1111's piexif, little endian by some Windows tools; told apart by where the zero
    bytes of ASCII characters fall); no prefix: UTF-8, as A1111 falls back."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.rstrip("\0")
    if isinstance(value, (bytes, bytearray)):
        data = bytes(value)
    elif (isinstance(value, tuple) and len(value) <= MAX_TEXT_BYTES
          and all(isinstance(b, int) and 0 <= b < 256 for b in value)):
        data = bytes(value)  # stored as type BYTE, as Pillow's own EXIF writer does
    else:
        return ""  # a number or a rational: not a comment
    encoding = USER_COMMENT_PREFIXES.get(data[:8])
    if encoding is None:
        return data.decode("utf-8", errors="ignore").rstrip("\0")
    body = data[8:]
    if encoding == "utf-16":
        even_zeros = body[0::2].count(0)
        odd_zeros = body[1::2].count(0)
        encoding = "utf-16-be" if even_zeros >= odd_zeros else "utf-16-le"
        body = body[: len(body) // 2 * 2]
    return body.decode(encoding, errors="replace").rstrip("\0")


def encode_user_comment(text: str) -> bytes:
    """UserComment as A1111 writes it (piexif.helper.UserComment.dump(text, encoding="unicode"))."""
    return b"UNICODE\0" + text.encode("utf-16-be")


def exif_with_user_comment(text: str) -> bytes:
    """EXIF bytes for a JPEG or WebP save, laid out as piexif.dump lays out A1111's: "Exif\0\0", a big-endian
    TIFF header, IFD0 with one entry pointing to the Exif sub-IFD, whose one entry is UserComment of type
    UNDEFINED (7). (Pillow's own EXIF writer stores bytes as type BYTE, which piexif, and so A1111, reads
    as a tuple of numbers and cannot decode.)"""
    comment = encode_user_comment(text)
    ifd0 = 8  # offsets count from the TIFF header
    exif_ifd = ifd0 + 2 + 12 + 4
    data = exif_ifd + 2 + 12 + 4
    return (b"Exif\0\0" + b"MM\0*" + struct.pack(">I", ifd0)
            + struct.pack(">HHHII", 1, EXIF_IFD, 4, 1, exif_ifd) + struct.pack(">I", 0)
            + struct.pack(">HHHII", 1, USER_COMMENT, 7, len(comment), data) + struct.pack(">I", 0)
            + comment)
