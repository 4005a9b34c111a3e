"""Proof images: recognised by their content, re-encoded without metadata.

Only JPEG, PNG and WebP are accepted, whatever the file's name or declared type says. The
pixels are decoded (within a pixel budget, against decompression bombs) and encoded anew, so
EXIF (GPS included), XMP, ICC profiles, comments and anything appended to the file are gone.
The EXIF orientation is applied first, so the picture still stands the right way up.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass

from PIL import Image, ImageOps, UnidentifiedImageError

from src.resolvers.errors import UserFacingError

FORMATS = {
    "JPEG": ("jpg", "image/jpeg"),
    "PNG": ("png", "image/png"),
    "WEBP": ("webp", "image/webp"),
}


class InvalidImage(UserFacingError):
    code = "INVALID_IMAGE"


@dataclass(frozen=True)
class CleanImage:
    data: bytes
    extension: str
    content_type: str
    width: int
    height: int


def clean_image(data: bytes, *, max_pixels: int, field: str = "proofs") -> CleanImage:
    """Decode and re-encode one image. CPU-bound: call it in a thread.

    Raises InvalidImage for anything that is not a whole JPEG, PNG or WebP of at most
    `max_pixels` pixels.
    """
    refused = InvalidImage("Proofs must be JPEG, PNG or WebP images.", field=field)
    try:
        with warnings.catch_warnings():
            # Pillow warns (then fails) on huge images; our own budget is checked first.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data), formats=list(FORMATS)) as source:
                kind = source.format or ""
                width, height = source.size
                if width * height > max_pixels:
                    raise InvalidImage(
                        f"Proof images may have at most {max_pixels:,} pixels.", field=field
                    )
                source.load()  # decodes everything: truncated or corrupt files fail here
                image = ImageOps.exif_transpose(source)
    except InvalidImage:
        raise
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
        OSError,
        ValueError,
        SyntaxError,  # some Pillow decoders signal broken headers this way
    ):
        raise refused from None
    if kind not in FORMATS:
        raise refused
    extension, content_type = FORMATS[kind]
    # Nothing of the original's metadata may be written back; a palette's transparent index
    # is pixel data, not metadata.
    transparency = image.info.get("transparency")
    image.info = {} if transparency is None else {"transparency": transparency}
    out = io.BytesIO()
    if kind == "JPEG":
        if image.mode not in ("L", "RGB"):
            image = image.convert("RGB")
        image.save(out, "JPEG", quality=85, optimize=True)
    elif kind == "PNG":
        if image.mode not in ("1", "L", "LA", "P", "RGB", "RGBA"):
            image = image.convert("RGBA")
        image.save(out, "PNG", optimize=True)
    else:
        if image.mode not in ("RGB", "RGBA"):
            image = image.convert("RGBA" if "A" in image.mode else "RGB")
        image.save(out, "WEBP", quality=85)
    return CleanImage(out.getvalue(), extension, content_type, image.width, image.height)
