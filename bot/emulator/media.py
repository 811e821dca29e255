"""Just enough knowledge of image formats to answer like Telegram's media servers.

Telegram rejects a "photo" that is not an image (``IMAGE_PROCESS_FAILED``) and reports its
width and height; sniffing the header is enough for both, without an imaging library.
"""

from __future__ import annotations

import struct


def image_size(content: bytes) -> tuple[int, int] | None:
    """(width, height) of a PNG, JPEG, GIF or WebP image; None when it is none of them."""
    if content.startswith(b"\x89PNG\r\n\x1a\n") and len(content) >= 24 and content[12:16] == b"IHDR":
        width, height = struct.unpack(">II", content[16:24])
        return int(width), int(height)
    if content[:6] in (b"GIF87a", b"GIF89a") and len(content) >= 10:
        width, height = struct.unpack("<HH", content[6:10])
        return int(width), int(height)
    if content.startswith(b"\xff\xd8"):
        return _jpeg_size(content)
    if content[:4] == b"RIFF" and content[8:12] == b"WEBP":
        return _webp_size(content)
    return None


def image_extension(content: bytes) -> str:
    """The usual file extension for an image's format (".jpg" when unknown: Telegram re-encodes)."""
    if content.startswith(b"\x89PNG"):
        return ".png"
    if content[:3] == b"GIF":
        return ".gif"
    if content[:4] == b"RIFF":
        return ".webp"
    return ".jpg"


def _jpeg_size(content: bytes) -> tuple[int, int] | None:
    index = 2
    while index + 9 < len(content):
        if content[index] != 0xFF:
            return None
        marker = content[index + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            index += 2
            continue
        (segment_length,) = struct.unpack(">H", content[index + 2:index + 4])
        if marker in (0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF):
            height, width = struct.unpack(">HH", content[index + 5:index + 9])
            return int(width), int(height)
        index += 2 + segment_length
    return None


def _webp_size(content: bytes) -> tuple[int, int] | None:
    chunk = content[12:16]
    if chunk == b"VP8 " and len(content) >= 30:
        width, height = struct.unpack("<HH", content[26:30])
        return int(width & 0x3FFF), int(height & 0x3FFF)
    if chunk == b"VP8L" and len(content) >= 25:
        bits = int.from_bytes(content[21:25], "little")
        return int((bits & 0x3FFF) + 1), int(((bits >> 14) & 0x3FFF) + 1)
    if chunk == b"VP8X" and len(content) >= 30:
        width = int.from_bytes(content[24:27], "little") + 1
        height = int.from_bytes(content[27:30], "little") + 1
        return width, height
    return None
