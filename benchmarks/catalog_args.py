"""The command-line options the catalog generators share (generate.py, generate_dp2.py)."""

from __future__ import annotations

import argparse
from pathlib import Path


def catalog_parser(
    doc: str | None, chunk: int, seed: int, field_radius: float, radius_help: str = "deg"
) -> argparse.ArgumentParser:
    """A parser with --rows, --out, --chunk, --workers, --seed and --field-radius."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--chunk", type=int, default=chunk)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=seed)
    parser.add_argument("--field-radius", type=float, default=field_radius, help=radius_help)
    return parser
