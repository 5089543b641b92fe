"""One training-set run, top to bottom as the data flows:
plan -> match -> select -> finish -> write -> register.

:func:`run` is the whole of it. Every choice is resolved and checked when the run is
planned (:mod:`tsm_core.pipeline.plan`) before any data is read; :func:`execute` then
claims the output, gives the matched rows (:mod:`~tsm_core.pipeline.match`) to the
selection (:mod:`~tsm_core.pipeline.select`), finishes and writes the selected frames
(:mod:`~tsm_core.pipeline.write`), records what the run found
(:mod:`~tsm_core.pipeline.provenance`) and registers the product.
"""

from __future__ import annotations

import logging
from contextlib import ExitStack, closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from tsm_core.compute.memory import check_address_space, out_of_memory
from tsm_core.compute.scheduler import dask_scheduler, stream
from tsm_core.config import RunConfig, load_config, tsm_home
from tsm_core.errors import RunCancelled, TSMError
from tsm_core.pipeline.depths import DepthMeter
from tsm_core.pipeline.match import match
from tsm_core.pipeline.plan import Plan, plan_run
from tsm_core.pipeline.provenance import now, provenance, run_provenance
from tsm_core.pipeline.select import select
from tsm_core.pipeline.timing import Progress, stage
from tsm_core.pipeline.unmatched import UNMATCHED, check_columns, unmatched_path, write_unmatched
from tsm_core.pipeline.write import Finisher, column_info, output_files, with_split, write
from tsm_core.plugins.records import OutputMetadata
from tsm_core.products.cancel import CancelToken, registry_poll
from tsm_core.products.claims import claim_output, commit_together
from tsm_core.products.output import open_sinks, writing_into
from tsm_core.products.recovery import recover_once
from tsm_core.products.registry import Registry
from tsm_core.science import layout, representativeness
from tsm_core.science.filters import parse_filters

__all__ = ["Plan", "Progress", "RunResult", "execute", "prepare", "product_config", "rerun", "run"]

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What a run produced."""

    product_id: int
    output_path: Path
    n_rows: int
    n_redshifts: int
    n_matched: int
    removed: dict[str, int]
    median_separation_arcsec: float | None
    provenance: dict[str, Any] = field(repr=False)
    #: the redshift catalog's survey convention, and the rows dropped from it per reason
    convention: str | None = None
    dropped: dict[str, int] = field(default_factory=dict)
    #: with ``output.split_files``: ``{"training": path, "validation": path}``
    output_paths: dict[str, Path] = field(default_factory=dict)
    #: where the redshifts went (:meth:`tsm_core.pipeline.funnel.Funnel.to_dict`)
    funnel: dict[str, Any] = field(default_factory=dict, repr=False)
    #: with ``output.unmatched``: the file of the redshifts the run lost, with the reason
    unmatched_path: Path | None = None

    def to_pandas(self, part: str | None = None) -> pd.DataFrame:
        """The rows the run wrote, read back by the writer of its output format.

        ``part`` (``"training"`` or ``"validation"``) picks one file of a run with
        ``output.split_files``, ``"unmatched"`` the redshifts it lost (``output.unmatched``);
        by default the run's training-set file.
        """
        from tsm_core.products.reading import read_file

        files = dict(self.output_paths) | ({UNMATCHED: self.unmatched_path} if self.unmatched_path else {})
        if part and part not in files:
            choices = ", ".join(files) or "none: the run wrote one file, call to_pandas()"
            raise TSMError(f"part {part!r} is not a file of this run; choices: {choices}")
        if part == UNMATCHED:
            return read_file(files[part], self.provenance["unmatched"]["format"])
        path = files[part] if part else self.output_path
        fmt = ((self.provenance.get("config") or {}).get("output") or {}).get("format")
        return read_file(path, fmt)


def _compute_and_write(
    plan: Plan,
    product_id: int,
    progress: Progress | None,
    cancel: CancelToken,
    finals: dict[str | None, Path],
    staged: dict[str | None, Path],
    started: str,
) -> RunResult:
    """match -> select -> finish and write, streaming partitions through the chosen scheduler."""
    cfg = plan.config
    lost = unmatched_path(plan, product_id)
    with stage("crossmatch graph"):
        tasks, meta = match(plan)
        meter = DepthMeter(plan)  # the depths, from the object partitions the match tasks read
        tasks = meter.attach(tasks)
        info = column_info(plan)
        finisher = Finisher(cfg, info, rail=plan.rail)
        weigher = (
            representativeness.Weigher(plan.photometry, cfg.representativeness) if cfg.representativeness else None
        )
        if weigher:
            weigher.limits = meter.limits
        empty = weigher.apply(meta.iloc[:0]) if weigher else meta.iloc[:0]
        finisher.schema = finisher.table(with_split(empty, cfg, np.zeros(0, dtype=bool), None)).schema
    metadata = OutputMetadata(
        cfg.name,
        cfg.description,
        product_id,
        layout.column_info(info, cfg.output),
        provenance(plan, product_id, started),
    )

    def report(done: int) -> None:
        if progress:
            progress("crossmatch", done, len(tasks))

    written = writing_into(plan.output_dir)  # a full disk: one line naming the folder and its free space
    with (
        dask_scheduler(cfg.compute) as scheduler,
        closing(
            stream(tasks, in_flight=scheduler.in_flight, on_done=report, scheduler=scheduler, cancel=cancel)
        ) as computed,
    ):  # closed on any exit: computations in flight are dropped at once
        if weigher:
            with stage("photometric sample"):
                cuts = [
                    *representativeness.release_cut_filters(plan.release.default_filters),
                    *parse_filters(cfg.filters.object, "filters.object"),
                ]
                weigher.sample(
                    plan.object_path,
                    list(plan.objects.columns),
                    cuts,
                    scheduler.in_flight,
                    scheduler=scheduler,
                    cancel=cancel,
                )
        # LSDB hands NestedFrames: plain frames from here
        matched = (pd.DataFrame(frame) for frame in meter.frames(computed))
        hold = plan.rail is not None and plan.rail.needs_depths  # the rail fill waits for every depth
        selection = select(plan, matched, weigher, next(iter(staged.values())).parent, written, hold)
        if hold and plan.rail is not None:
            finisher.rail = plan.rail.with_depths(meter.depths(), plan.release.name)
            metadata.provenance["rail_layout"] = finisher.rail.provenance()
        product_files = {side: path for side, path in staged.items() if side in finals}
        with open_sinks(plan.writer, product_files, finisher.schema, metadata, cfg.output, written) as sinks:
            out = write(plan, selection, finisher, weigher, sinks, written, cancel)
            metadata.provenance.update(run_provenance(plan, selection, out, weigher, finals))
            metadata.provenance["depths"] = meter.provenance()
            if lost is not None:
                write_unmatched(plan, selection, out, staged[UNMATCHED], lost, metadata, written, cancel)
    counts = metadata.provenance["counts"]
    return RunResult(
        product_id=product_id,
        output_path=finals[None] if None in finals else finals["training"],
        n_rows=out.n_rows,
        n_redshifts=len(plan.redshifts),
        n_matched=counts["matched"],
        removed=selection.removed,
        median_separation_arcsec=out.median_separation(),
        provenance=metadata.provenance,
        convention=plan.redshift_summary.get("convention"),
        dropped=dict(plan.redshift_summary.get("rows_dropped") or {}),
        output_paths={side: path for side, path in finals.items() if side is not None},
        funnel=plan.funnel.to_dict(),
        unmatched_path=lost,
    )


def _execute(
    plan: Plan, product_id: int, progress: Progress | None, registry: Registry, cancel: CancelToken
) -> RunResult:
    """Claim the output names, compute and write into one staging folder, then move the
    finished files into place; whatever happens, the claims and the staging folder go."""
    cfg = plan.config
    started = now()
    finals = output_files(plan, product_id)
    lost = unmatched_path(plan, product_id)
    owner = {"product_id": product_id, "registry": str(registry.path)}
    with ExitStack() as held:
        claims = {}
        for side, final in (finals | ({UNMATCHED: lost} if lost else {})).items():
            claims[side] = claim_output(final, cfg.output.overwrite, owner)
            held.callback(claims[side].release)
        first = next(iter(claims.values()))
        folder = first.stage().parent
        staged = {side: folder / claim.final.name for side, claim in claims.items()}
        registry.set_files(product_id, str(first.final), str(first.staging), str(first.claim))
        cancel.check()
        result = _compute_and_write(plan, product_id, progress, cancel, finals, staged, started)
        commit_together([(claim, staged[side]) for side, claim in claims.items()])
        return result


def prepare(config: RunConfig | dict[str, Any] | str | Path, overrides: list[str] | None = None) -> Plan:
    """Validate ``config`` and resolve every choice, reading only the redshift catalog.

    Raises a :class:`~tsm_core.errors.TSMError` naming the bad value; nothing is
    registered or written. :func:`execute` then does the work.
    """
    cfg = load_config(config if not isinstance(config, Path) else str(config), overrides)
    check_address_space()
    home = tsm_home()
    with stage("plan"):
        try:
            plan = plan_run(cfg, home, Registry.at_home(home))
        except Exception as exc:
            short = out_of_memory(exc)
            if short is None:
                raise
            raise short from exc
    if cfg.output.unmatched:
        check_columns(plan.redshifts.columns)
    return plan


def execute(
    plan: Plan, product_id: int | None = None, progress: Progress | None = None, cancel: CancelToken | None = None
) -> RunResult:
    """Run a prepared training set and record it in the registry.

    ``product_id`` is for callers that registered the product themselves, queued (the
    web service); a failure marks the product failed and leaves no output file.
    ``cancel`` (a :class:`~tsm_core.products.cancel.CancelToken`) stops the run at its next
    partition: the product ends ``cancelled`` (or ``failed``, as the token says) and
    :class:`~tsm_core.errors.RunCancelled` is raised. A cancel asked through the
    registry (``tsm products cancel``) stops it the same way.
    """
    registry = Registry.at_home(tsm_home())
    recover_once(registry)
    cfg = plan.config
    if product_id is None:
        product_id = registry.create_product(cfg.name, cfg.description, cfg.model_dump(mode="json"))
    elif not registry.start_product(product_id):
        raise RunCancelled(f"training set {product_id} was cancelled before it started")
    token = CancelToken(poll=registry_poll(registry, product_id), parent=cancel)
    log.info("training set %r: product ID %d", cfg.name, product_id)
    try:
        result = _execute(plan, product_id, progress, registry, token)
    except RunCancelled as exc:
        registry.fail_product(product_id, str(exc), exc.status)
        raise
    except KeyboardInterrupt:
        registry.fail_product(product_id, "cancelled (KeyboardInterrupt)", "cancelled")
        raise
    except BaseException as exc:
        if token.is_set():  # a failure caused by the stop (workers hit by Ctrl-C while starting)
            registry.fail_product(product_id, token.reason, token.status)
            raise RunCancelled(token.reason, token.status) from exc
        short = out_of_memory(exc)
        registry.fail_product(product_id, str(short or exc) or type(exc).__name__)
        if short is not None:
            raise short from exc
        raise
    registry.finish_product(product_id, result.n_rows, str(result.output_path), result.provenance)
    log.info("wrote %d rows to %s", result.n_rows, result.output_path)
    return result


def _without_nulls(data: Any) -> Any:
    if isinstance(data, dict):
        return {k: _without_nulls(v) for k, v in data.items() if v is not None}
    return data


def product_config(product_id: int) -> dict[str, Any]:
    """The stored config of product ``product_id``, unset keys left out (ready for overrides)."""
    return _without_nulls(Registry.at_home(tsm_home()).product(product_id).config)


def rerun(product_id: int, *, overrides: list[str] | None = None, progress: Progress | None = None) -> RunResult:
    """Build again, as a new product, the training set of product ``product_id``.

    Its stored config is used, with ``overrides`` (``key.sub=value``) applied on top.
    A product made from a registered redshift catalog re-runs from the catalog's stored
    copy, even after the original file was moved or deleted.
    """
    return run(product_config(product_id), overrides=overrides, progress=progress)


def run(
    config: RunConfig | dict[str, Any] | str | Path,
    *,
    overrides: list[str] | None = None,
    progress: Progress | None = None,
    cancel: CancelToken | None = None,
) -> RunResult:
    """Build one training set.

    ``config`` is a :class:`~tsm_core.config.RunConfig`, a dict of the same keys, or
    the path of a YAML file; ``overrides`` are ``key.sub=value`` strings applied on top.
    Returns a :class:`RunResult` with ``output_path``, ``n_rows`` and ``product_id``.
    Raises a :class:`~tsm_core.errors.TSMError` naming the bad value, before any work
    where it can; a run that fails later leaves no output file and is recorded as
    failed in the registry. ``progress(stage, done, total)`` is told how far it is;
    ``cancel`` (a :class:`~tsm_core.products.cancel.CancelToken`) stops it cleanly.
    """
    return execute(prepare(config, overrides), progress=progress, cancel=cancel)
