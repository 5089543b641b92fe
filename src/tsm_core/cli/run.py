"""The commands that build: ``tsm run``, ``tsm sample`` and ``tsm demo``, and how a run
reports to the terminal (:func:`run_and_report`, also used by ``tsm products rerun``)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from tsm_core import plugins
from tsm_core.cli.progress import progress_option, wants_progress
from tsm_core.cli.signals import interruptible, stop_on_signals
from tsm_core.config import tsm_home
from tsm_core.errors import RunCancelled, TSMError
from tsm_core.plugins.records import SAMPLE_PATH

if TYPE_CHECKING:
    from tsm_core.plugins.records import ObjectCatalog


class ProgressBar:
    """A tqdm progress bar over partitions, fed by the run's progress callback."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Any = None

    def __call__(self, stage: str, done: int, total: int) -> None:
        if not self.enabled:
            return
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, desc=stage, unit="partition", file=sys.stderr, leave=False)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def run_and_report(config: Any, overrides: list[str], progress: bool | None) -> Any:
    """Run a training set (a config file or dict, with ``--set`` overrides) with a progress
    bar and stopped by signals, then print what it built."""
    from tsm_core.pipeline.main import execute, prepare

    bar = ProgressBar(wants_progress(progress))
    try:
        with stop_on_signals() as cancel:
            try:
                plan = interruptible(lambda: prepare(config, overrides), cancel)
                result = execute(plan, progress=bar, cancel=cancel)
            except RunCancelled as exc:
                exc.signal = getattr(cancel, "signal", None)  # type: ignore[attr-defined]
                raise
    finally:
        bar.close()
    click.echo(f"Training set {result.product_id}: {result.n_rows} rows -> {result.output_path}")
    if result.convention:
        click.echo(f"  redshift convention: {result.convention}")
    for reason, count in result.dropped.items():
        click.echo(f"  redshift catalog: dropped {count} rows with {reason}")
    if result.output_paths.get("validation"):
        click.echo(f"  validation rows -> {result.output_paths['validation']}")
    if result.unmatched_path:
        lost = result.provenance.get("unmatched") or {}
        per = ", ".join(f"{n} {reason}" for reason, n in (lost.get("by_reason") or {}).items())
        click.echo(
            f"  unmatched redshifts: {lost.get('rows', 0)} -> {result.unmatched_path}" + (f" ({per})" if per else "")
        )
    from tsm_core.pipeline.funnel import Funnel

    for line in Funnel.from_dict(result.funnel).lines():
        click.echo(f"  {line}")
    rep = result.provenance.get("representativeness") or {}
    if rep.get("empty_cell_fraction") is not None:
        click.echo(
            f"  representativeness: {100 * rep['empty_cell_fraction']:.1f}% of the photometric sample in SOM cells "
            f"without a training object; weights median {rep.get('weights', {}).get('median', float('nan')):.3g}"
            f" ({rep['n_training_used']} of {rep['n_training']} rows weighted)"
        )
    return result


@click.command("run")
@click.argument("config", type=click.Path(dir_okay=False))
@click.option(
    "--set",
    "overrides",
    multiple=True,
    metavar="KEY=VALUE",
    help="Override a config key, e.g. crossmatch.radius_arcsec=0.5",
)
@progress_option
@click.option("--scheduler", help="compute.scheduler: threads, processes, or a Dask scheduler address.")
@click.option("--n-workers", type=int, help="compute.n_workers")
@click.option("--memory-limit", help="compute.memory_limit per worker, e.g. 4GB")
@click.option(
    "--sample", is_flag=True, help="Use the release's SYNTHETIC sample (built if needed) as the object catalog."
)
def run_command(
    config: str,
    overrides: tuple[str, ...],
    progress: bool | None,
    scheduler: str | None,
    n_workers: int | None,
    memory_limit: str | None,
    sample: bool,
) -> None:
    """Build a training set from a YAML CONFIG."""
    extra = list(overrides)
    if sample:
        from tsm_core.config import load_config

        release = plugins.object_catalog(load_config(config, extra).object_catalog.release)
        if not release.sample_objects(tsm_home()).exists():
            build_sample(release, None)
        extra.append(f"object_catalog.path={SAMPLE_PATH}")
    for key, value in (("scheduler", scheduler), ("n_workers", n_workers), ("memory_limit", memory_limit)):
        if value is not None:
            extra.append(f"compute.{key}={value}")
    run_and_report(config, extra, progress)


def sample_size(command: Any) -> Any:
    """The ``--objects`` and ``--redshifts`` options of the synthetic sample (``tsm sample``, ``tsm demo``)."""
    command = click.option(
        "--redshifts",
        "n_redshifts",
        type=click.IntRange(10),
        default=2_000,
        show_default=True,
        help="Redshifts in the sample.",
    )(command)
    return click.option(
        "--objects",
        "n_objects",
        type=click.IntRange(100),
        default=20_000,
        show_default=True,
        help="Objects in the sample.",
    )(command)


def build_sample(
    cat: ObjectCatalog,
    out_dir: Path | None,
    n_objects: int = 20_000,
    n_redshifts: int = 2_000,
    seed: int = 20250630,
    progress: bool = False,
) -> dict[str, Path]:
    """Build (or reuse) the synthetic sample of release ``cat`` in ``out_dir`` (default: under
    $TSM_HOME), with progress bars on stderr where ``progress``."""
    from tsm_core.catalogs.rubin.sample import make_sample

    if cat.sample is None:
        raise TSMError(f"release {cat.name!r} has no synthetic sample")
    return make_sample(cat, out_dir or cat.sample_dir(tsm_home()), n_objects, n_redshifts, seed, progress)


@click.command()
@click.argument("release")
@click.option(
    "--out", "out_dir", type=click.Path(file_okay=False), help="Directory (default: $TSM_HOME/samples/RELEASE)."
)
@sample_size
@click.option("--seed", type=int, default=20250630, show_default=True)
@progress_option
def sample(
    release: str, out_dir: str | None, n_objects: int, n_redshifts: int, seed: int, progress: bool | None
) -> None:
    """Write a synthetic sample of RELEASE: a HATS object catalog and a redshift catalog."""
    paths = build_sample(
        plugins.object_catalog(release),
        Path(out_dir) if out_dir else None,
        n_objects,
        n_redshifts,
        seed,
        wants_progress(progress),
    )
    for kind, path in paths.items():
        click.echo(f"{kind}: {path}")


@click.command()
@click.option("--release", default="dp1", show_default=True)
@click.option("--out", "out_dir", default="demo-output", show_default=True, type=click.Path(file_okay=False))
@click.option("--format", "fmt", default="parquet", show_default=True)
@progress_option
@sample_size
def demo(release: str, out_dir: str, fmt: str, progress: bool | None, n_objects: int, n_redshifts: int) -> None:
    """Build the sample (once per size, under $TSM_HOME) and run a training set on it."""
    cat = plugins.object_catalog(release)
    paths = build_sample(cat, None, n_objects, n_redshifts)
    config = {
        "name": f"demo {release}",
        "description": f"demo training set on the synthetic {release} sample",
        "redshift_catalog": {"path": str(paths["redshifts"])},
        "object_catalog": {
            "release": release,
            "path": SAMPLE_PATH,
            "dereddening": "catalog" if cat.ebv_column else "none",
            "convert_to_magnitudes": True,
        },
        "crossmatch": {"radius_arcsec": 1.0, "n_neighbors": 1},
        "output": {"format": fmt, "directory": out_dir},
    }
    result = run_and_report(config, [], progress)
    median = result.median_separation_arcsec
    click.echo(
        f"{result.n_redshifts} redshifts, {result.n_matched} matched within 1 arcsec"
        + (f", median separation {median:.3f} arcsec" if median is not None else "")
    )


def register(group: click.Group) -> None:
    """Add this module's commands to ``group``."""
    for command in (run_command, sample, demo):
        group.add_command(command)
