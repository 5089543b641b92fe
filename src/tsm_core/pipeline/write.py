"""The finish and write stages: each selected frame gets its split columns and weights,
its output layout, and goes to the writer's sink (one file, or one per side of the
split); and the names of the run's output files."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from tsm_core.columns import WEIGHT_COLUMN
from tsm_core.config import RunConfig
from tsm_core.pipeline.timing import stage
from tsm_core.plugins.records import ColumnInfo
from tsm_core.products.output import output_file_name
from tsm_core.science import layout, representativeness
from tsm_core.science.photometry import DIST_COLUMN, ZROW_COLUMN

if TYPE_CHECKING:
    from tsm_core.pipeline.plan import Plan
    from tsm_core.pipeline.select import Selection
    from tsm_core.products.cancel import CancelToken

SPLIT_COLUMN = "is_training"
FOLD_COLUMN = "fold"
#: the two files of ``output.split_files``: suffix of the file name -> rows written there
SPLIT_FILES = {"training": True, "validation": False}


def column_info(plan: Plan) -> dict[str, ColumnInfo]:
    """Unit and description of every column the run writes (before the output layout)."""
    info = plan.photometry.column_info()
    for name, longest in plan.redshifts.string_lengths.items():  # for fixed-width formats
        info[name] = replace(info[name], max_length=longest)
    if plan.config.split:
        s = plan.config.split
        how = f"{s.method}" + (f" order {s.healpix_order}" if s.method == "healpix" else "")
        how += f", {s.k} folds, fold {s.validation_fold} is validation" if s.k else f", fraction {s.train_fraction}"
        how += f", stratified in {s.z_bins} z bins" if s.stratify else ""
        info[SPLIT_COLUMN] = ColumnInfo(
            "",
            f"training (true) or validation (false); {how}, seed {s.seed}; "
            "all rows of an object and of a redshift id on one side",
        )
        if s.k:
            info[FOLD_COLUMN] = ColumnInfo("", f"fold 0..{s.k - 1} of the {s.method} split")
    if plan.config.representativeness:
        how = representativeness.describe(plan.config.representativeness)
        info[WEIGHT_COLUMN] = ColumnInfo(
            "", f"k-nearest-neighbour weight to the photometric sample (Lima et al. 2008), {how}"
        )
    return info


def with_split(frame: pd.DataFrame, config: RunConfig, training: np.ndarray, fold: np.ndarray | None) -> pd.DataFrame:
    """``frame`` with the split columns of ``config`` (values for its rows)."""
    if not config.split:
        return frame
    columns: dict[str, Any] = {SPLIT_COLUMN: training}
    if config.split.k:
        columns[FOLD_COLUMN] = fold if fold is not None else np.zeros(len(frame), dtype=np.int64)
    return frame.assign(**columns)


@dataclass
class Finisher:
    """Turns a matched, selected frame into the Arrow table that is written."""

    config: RunConfig
    info: dict[str, ColumnInfo]
    schema: pa.Schema | None = None
    rail: layout.RailFill | None = None

    def frame(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The frame as written: split columns already added, internal columns dropped."""
        return layout.apply(frame.drop(columns=[ZROW_COLUMN]), self.info, self.config.output, self.rail)

    def table(self, frame: pd.DataFrame) -> pa.Table:
        """The Arrow table written for ``frame``; the first call (on the empty frame) sets the
        schema, the others convert column by column into it (no pandas metadata, no index:
        a fifth of ``pa.Table.from_pandas``'s time on the small partitions of a warm server)."""
        if self.schema is None:
            return pa.Table.from_pandas(self.frame(frame), preserve_index=False).replace_schema_metadata(None)
        frame = self.frame(frame)
        columns = [pa.array(frame[f.name], type=f.type, from_pandas=True) for f in self.schema]
        return pa.Table.from_arrays(columns, schema=self.schema)


def finish(
    frame: pd.DataFrame, config: RunConfig, selection: Selection, start: int, weigher: representativeness.Weigher | None
) -> pd.DataFrame:
    """A selected frame (rows ``start`` onwards of the written set) with its split columns and weights."""
    if config.split:
        assert selection.training is not None
        at = slice(start, start + len(frame))
        frame = with_split(
            frame, config, selection.training[at], None if selection.fold is None else selection.fold[at]
        )
    return weigher.apply(frame) if weigher else frame


@dataclass
class Written:
    """What was written: the redshift row, separation and (with a split) side of every row."""

    zrows: list[np.ndarray] = field(default_factory=list)
    distances: list[np.ndarray] = field(default_factory=list)
    sides: list[np.ndarray] = field(default_factory=list)
    n_rows: int = 0

    def add(self, frame: pd.DataFrame) -> None:
        self.zrows.append(frame[ZROW_COLUMN].to_numpy())
        self.distances.append(frame[DIST_COLUMN].to_numpy(dtype=float))
        if SPLIT_COLUMN in frame.columns:
            self.sides.append(frame[SPLIT_COLUMN].to_numpy())
        self.n_rows += len(frame)

    def all_zrows(self) -> np.ndarray:
        return np.concatenate(self.zrows) if self.zrows else np.zeros(0, np.int64)

    def all_sides(self) -> np.ndarray:
        """``is_training`` of every written row, in order."""
        return np.concatenate(self.sides) if self.sides else np.zeros(0, dtype=bool)

    def median_separation(self) -> float | None:
        dist = np.concatenate(self.distances) if self.distances else np.zeros(0)
        return float(np.median(dist)) if len(dist) else None


#: selected frames are gathered up to this many rows and written together: the many small
#: partitions of a small training set make one conversion and one row group, not one each
GATHER_ROWS = 65_536


def gathered(frames: Iterable[pd.DataFrame], rows: int = GATHER_ROWS) -> Iterator[pd.DataFrame]:
    """``frames`` in the same order, consecutive ones joined until they hold ``rows`` rows
    (a frame as large alone passes as it is); empty frames are left out, unless all are
    (then the first one is yielded, so that its columns are written)."""
    held: list[pd.DataFrame] = []
    n = 0
    first_empty = None
    yielded = False
    for frame in frames:
        if not len(frame):
            first_empty = frame if first_empty is None else first_empty
            continue
        held.append(frame)
        n += len(frame)
        if n >= rows:
            yield held[0] if len(held) == 1 else pd.concat(held, ignore_index=True)
            held, n, yielded = [], 0, True
    if held:
        yield held[0] if len(held) == 1 else pd.concat(held, ignore_index=True)
    elif not yielded and first_empty is not None:
        yield first_empty


def write(
    plan: Plan,
    selection: Selection,
    finisher: Finisher,
    weigher: representativeness.Weigher | None,
    sinks: dict[str | None, Any],
    written: Any,
    cancel: CancelToken,
) -> Written:
    """Finish each selected frame and write it to its sink (one, or one per side of the split)."""
    out = Written()
    with stage("match, photometry and write"):
        for frame in gathered(selection.frames, GATHER_ROWS):
            cancel.check()
            frame = finish(frame, plan.config, selection, out.n_rows, weigher)
            out.add(frame)
            parts = (
                {None: frame}
                if None in sinks
                else {
                    side: frame[frame[SPLIT_COLUMN].to_numpy() == is_training]
                    for side, is_training in SPLIT_FILES.items()
                }
            )
            for side, part in parts.items():
                table = finisher.table(part)
                with written:
                    sinks[side].write(table)
    return out


def output_files(plan: Plan, product_id: int) -> dict[str | None, Path]:
    """Final path per side: ``{None: path}``, or one per side with ``output.split_files``."""
    cfg = plan.config
    extension = layout.file_extension(plan.writer.extension, cfg.output)
    if not cfg.output.split_files:
        return {None: plan.output_dir / output_file_name(cfg.name, product_id, extension)}
    stem = output_file_name(cfg.name, product_id, extension).rsplit(".", 1)[0]
    return {side: plan.output_dir / f"{stem}_{side}.{extension}" for side in SPLIT_FILES}
