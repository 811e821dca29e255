"""Image sniffing: the dimensions Telegram reports, and refusing what is not an image."""

from __future__ import annotations

import struct

from bot.emulator.media import image_extension, image_size
from tests.bot.emulator_fixtures import tiny_png


def jpeg(width: int, height: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sof0 = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + app0 + sof0 + b"\xff\xd9"


def test_sizes_of_png_jpeg_and_gif() -> None:
    assert image_size(tiny_png(7, 3)) == (7, 3)
    assert image_size(jpeg(640, 480)) == (640, 480)
    assert image_size(b"GIF89a" + struct.pack("<HH", 12, 34) + b"\x00" * 8) == (12, 34)


def test_what_is_not_an_image_has_no_size() -> None:
    assert image_size(b"customer,score\n") is None
    assert image_size(b"\x89PNG\r\n\x1a\n") is None  # a truncated header is no image either


def test_extensions_follow_the_format() -> None:
    assert (image_extension(tiny_png()), image_extension(jpeg(1, 1))) == (".png", ".jpg")
