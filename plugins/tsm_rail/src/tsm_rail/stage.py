"""``TrainingSetMaker``: the RAIL stage that makes a pipeline's training set with the Training Set Maker.

It runs :func:`tsm_core.run` in the rail layout (HDF5, group ``photometry``: what RAIL's
informers and estimators read with their defaults) and hands the rows over as two RAIL
``Hdf5Handle`` outputs: ``output``, the training rows, and ``validation``, the validation rows of
the run's split (no rows without a split). The run is a product of the Training Set Maker like
any other (in its registry, with its provenance); each output file is a copy of the product's
file, attributes and provenance included.

In a ceci pipeline the stage is built like any RAIL stage (``TrainingSetMaker.build(...)`` in a
``RailPipeline``); interactively, ``TrainingSetMaker.make_stage(...).make_training_set()`` or
:func:`training_set_maker`, which returns the tables as rail.interactive functions do.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import tables_io
from ceci.stage import PipelineStage
from rail.core.data import Hdf5Handle, TableHandle
from rail.core.stage import RailStage

import tsm_core
from tsm_rail import options

#: the HDF5 group of the rail layout (RAIL's default ``hdf5_groupname``)
GROUP = "photometry"
#: output tag -> the part of a run with ``output.split_files``
PARTS = {"output": "training", "validation": "validation"}


class TrainingSetMaker(RailStage):
    """Make the training (and validation) table of a RAIL pipeline with the Training Set Maker.

    Options: ``run_config`` (the run config as a dict or a YAML path) and every top-level key
    of the run config as an option of its own over it (``run_name`` and ``run_output`` for the
    run's ``name`` and ``output``, whose names RAIL uses); RAIL's ``name``, ``output``,
    ``validation`` and ``output_mode`` as for any stage.
    """

    name = "TrainingSetMaker"
    entrypoint_function = "make_training_set"
    interactive_function = "training_set_maker"
    config_options = RailStage.config_options.copy()
    config_options.update(options.config_options())
    inputs: list[tuple[str, type[TableHandle]]] = []
    outputs = [("output", Hdf5Handle), ("validation", Hdf5Handle)]

    def __init__(self, args: Any, **kwargs: Any) -> None:
        super().__init__(args, **kwargs)
        base = options.plain(self.config.run_config)
        # a YAML path is kept absolute: ceci runs the stage again in a process of its own
        self.config["run_config"] = str(Path(base).expanduser().resolve()) if isinstance(base, str) else base
        #: what :func:`tsm_core.run` returned, once the stage has run
        self.result: tsm_core.RunResult | None = None

    def make_training_set(self, **kwargs: Any) -> dict[str, TableHandle]:
        """Run the stage and return its handles, ``{"output": training, "validation": ...}``.

        ``kwargs`` are ignored: they are the stage's options, which rail.interactive-style
        callers pass to :meth:`make_stage` and to the entry point alike.
        """
        self.run()
        self.finalize()
        return {tag: self.get_handle(tag) for tag in PARTS}

    def run(self) -> None:
        """Run the Training Set Maker and attach its rows to the outputs."""
        final = self.get_output(self.get_aliased_tag("output"), final_name=True)
        config = options.run_config(
            self.config.to_dict(), default_name=self.instance_name, default_directory=str(Path(final).parent.resolve())
        )
        self.result = tsm_core.run(config)
        files = self.result.output_paths or {"training": self.result.output_path}
        tables = {part: tables_io.read(str(path)) for part, path in files.items()}
        for tag, part in PARTS.items():
            data = tables[part] if part in tables else _no_rows(tables["training"])
            handle = self.add_handle(tag, data=data)
            if self.config.output_mode == "default":
                if part in files:
                    shutil.copyfile(files[part], os.path.expandvars(handle.path))
                else:
                    handle.write()

    def _finalize_tag(self, tag: str) -> str | None:
        """Move the copied file to its final name (RAIL's default would write the table again,
        without the product's attributes)."""
        handle = self.get_handle(tag, allow_missing=True)
        if self.config.output_mode == "return":
            handle.path = None
            return None
        final_name = PipelineStage._finalize_tag(self, tag)
        handle.path = final_name
        return final_name


def _no_rows(tables: Any) -> dict[str, dict[str, Any]]:
    """``tables`` (``{group: {column: array}}``) with no rows: the validation of a run without split."""
    return {group: {name: values[:0] for name, values in columns.items()} for group, columns in tables.items()}


def training_set_maker(**kwargs: Any) -> dict[str, Any]:
    """Make a training set as a rail.interactive function does: options in, tables out.

    ``kwargs`` are :class:`TrainingSetMaker`'s options (``run_config`` and the run-config keys);
    nothing is written but the Training Set Maker's product. Returns
    ``{"output": training, "validation": validation}``, each ``{"photometry": {column: array}}``.
    """
    stage = TrainingSetMaker.make_stage(**kwargs, output_mode="return")
    handles = stage.make_training_set(**kwargs)
    return {tag: handle.data for tag, handle in handles.items()}
