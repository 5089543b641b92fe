"""Limits of a FITS file, from the headers of the HDUs the reader reads."""

from __future__ import annotations

import re
from pathlib import Path

from tsm_web.uploads.limits import UploadLimits

#: a FITS variable-length array column (TFORMn = rPt(max) or rQt(max))
VLA_FORM = re.compile(r"^\s*\d*[PQ]")


def fits_shape(path: Path, limits: UploadLimits) -> tuple[int, int]:
    """Rows and data bytes of the FITS table the reader reads (HDU 1), from the headers only
    (tile-compressed HDUs count their uncompressed size, from the ``Z`` keywords)."""
    from astropy.io import fits

    headers = []
    with fits.open(path, memmap=True, lazy_load_hdus=True, disable_image_compression=True) as hdul:
        for index in range(2):  # len(hdul) would read every header
            try:
                headers.append(hdul[index].header)
            except IndexError:
                break
    size = rows = 0
    for header in headers:
        prefix = "Z" if header.get("ZIMAGE") or header.get("ZTABLE") else ""
        naxis = int(header.get(f"{prefix}NAXIS", 0))
        if naxis == 0:
            continue
        elements = 1
        for axis in range(1, naxis + 1):
            elements *= int(header.get(f"{prefix}NAXIS{axis}", 0))
        bits = abs(int(header.get(f"{prefix}BITPIX", header.get("BITPIX", 8))))
        size += bits // 8 * int(header.get("GCOUNT", 1)) * (int(header.get("PCOUNT", 0)) + elements)
        if header.get("XTENSION", "").strip() not in ("BINTABLE", "TABLE") or header.get("ZIMAGE") or naxis < 2:
            continue
        rows = max(rows, int(header.get(f"{prefix}NAXIS2", 0)))
        if not prefix:  # every row of a variable-length array column may point at the whole heap
            arrays = sum(1 for key, value in header.items() if key.startswith("TFORM") and VLA_FORM.match(str(value)))
            size += arrays * int(header.get("NAXIS2", 0)) * int(header.get("PCOUNT", 0))
    return rows, size
