"""Read IDX files (the MNIST family's format) of unsigned bytes, gzip-compressed or not, with numpy.

An IDX file is a 4-byte magic number ``0x00 0x00 <type> <ndim>``, then ``ndim`` big-endian uint32
sizes, then the values. Type ``0x08`` is unsigned bytes, so images are magic 2051 (``0x0803``,
3 dimensions) and labels magic 2049 (``0x0801``, 1 dimension).
"""

from __future__ import annotations

import gzip
import zlib
from pathlib import Path

import numpy as np

from memberscope.exceptions import DataUnavailableError

__all__ = ["IMAGES_MAGIC", "LABELS_MAGIC", "read_idx"]

IMAGES_MAGIC, LABELS_MAGIC = 2051, 2049
_UBYTE = 0x08
_GZIP_MAGIC = b"\x1f\x8b"


def read_idx(path: str | Path, *, expected_magic: int | None = None) -> np.ndarray:
    """Parse one IDX file of unsigned bytes.

    Parameters
    ----------
    path : path
        The file; gzip-compressed files are recognised by their content, not their name.
    expected_magic : int, optional
        Refuse any other magic number (2051 for images, 2049 for labels).

    Returns
    -------
    ndarray of uint8 of the shape the header gives, e.g. (n, 28, 28) or (n,); read-only.

    Raises
    ------
    DataUnavailableError
        If the file cannot be read or decompressed, its magic number is wrong, or its length
        disagrees with the sizes in its header. The message names the file.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
        if raw[:2] == _GZIP_MAGIC:
            raw = gzip.decompress(raw)
    except (OSError, EOFError, zlib.error) as exc:
        raise DataUnavailableError(f"cannot read IDX file {str(path)!r}: {exc}") from None
    if len(raw) < 4:
        raise DataUnavailableError(f"IDX file {str(path)!r} is truncated: {len(raw)} bytes, shorter than its header")
    magic = int.from_bytes(raw[:4], "big")
    ndim = raw[3]
    if raw[:2] != b"\x00\x00" or raw[2] != _UBYTE or ndim == 0:
        raise DataUnavailableError(
            f"{str(path)!r} is not an IDX file of unsigned bytes (magic number {magic}; "
            f"expected {IMAGES_MAGIC} for images or {LABELS_MAGIC} for labels)"
        )
    if expected_magic is not None and magic != expected_magic:
        raise DataUnavailableError(
            f"IDX file {str(path)!r} has magic number {magic} ({ndim} dimensions); expected {expected_magic}"
        )
    offset = 4 + 4 * ndim
    if len(raw) < offset:
        raise DataUnavailableError(f"IDX file {str(path)!r} is truncated inside its header ({len(raw)} bytes)")
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = int(np.prod(dims, dtype=np.int64))
    if len(raw) - offset != expected:
        raise DataUnavailableError(
            f"IDX file {str(path)!r} is corrupt: it holds {len(raw) - offset} values but its header "
            f"promises {expected} ({'×'.join(map(str, dims))})"
        )
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims)
