"""Training sets read back: a product's file through the writer of its format.

:func:`read` is ``tsm_core.read``: a finished training set by product ID (its format is the
one its run wrote), or a file by path (its format found from its extension among the
installed writers). The rows come from that writer's :meth:`~tsm_core.plugins.records.Writer.read`,
so a format added by a plugin is read the way it is written; the report and the web
service read products this way too.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from tsm_core import plugins
from tsm_core.config import OutputConfig, tsm_home
from tsm_core.errors import CatalogError, TSMError, UnknownChoiceError
from tsm_core.products.registry import ProductRecord, Registry
from tsm_core.science.layout import file_extension

if TYPE_CHECKING:
    import pandas as pd

    from tsm_core.plugins.records import Writer


def finished_product(product_id: int, purpose: str = "a file to read") -> ProductRecord:
    """The registry's record of training set ``product_id``, which must be done (``purpose``
    ends the error message for one that is not: "only a finished training set has ...")."""
    record = Registry.at_home(tsm_home()).product(product_id)
    if record.status != "done" or not record.output_path:
        raise TSMError(f"training set {product_id} is {record.status}: only a finished training set has {purpose}")
    return record


def _extensions(writer: Writer) -> tuple[str, ...]:
    """The endings of the files ``writer`` makes (in every output layout)."""
    rail = file_extension(writer.extension, OutputConfig(layout="rail"))
    return tuple(dict.fromkeys(f".{e.lstrip('.').lower()}" for e in (writer.extension, rail)))


def writer_for(path: Path, fmt: str | None = None) -> Writer:
    """The installed writer of format ``fmt``, else the one whose extension ends ``path``."""
    installed = plugins.writers()
    listed = ", ".join(f"{w.name} ({', '.join(_extensions(w))})" for w in installed.values()) or "none"
    if fmt:
        try:
            return plugins.writer(fmt)
        except UnknownChoiceError:
            raise CatalogError(
                "product",
                f"no reader for the product file {path}: its format {fmt!r} is not installed "
                f"(installed formats: {listed})",
            ) from None
    name = path.name.lower()
    for writer in installed.values():
        if name.endswith(_extensions(writer)):
            return writer
    raise CatalogError(
        "product",
        f"no reader for the product file {path}: no installed output format makes "
        f"{path.suffix or 'such'} files (installed formats: {listed})",
    )


def read_file(path: str | Path, fmt: str | None = None) -> pd.DataFrame:
    """The rows of the training-set file (or HATS directory) ``path``, read by the writer
    of format ``fmt`` (by default the one whose extension ``path`` has)."""
    path = Path(path)
    if not path.exists():
        raise CatalogError("product", f"the product file {path} does not exist (moved or deleted?)")
    writer = writer_for(path, fmt)
    try:
        return writer.read(path)
    except TSMError:
        raise
    except Exception as exc:  # any reader failure is the file's fault
        message = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CatalogError("product", f"cannot read the product file {path} as {writer.name}: {message}") from exc


def product_format(record: ProductRecord) -> str | None:
    """The output format the run of ``record`` wrote (``None`` where its config does not say)."""
    fmt = ((record.config or {}).get("output") or {}).get("format")
    return str(fmt) if fmt else None


def product_files(record: ProductRecord) -> dict[str, tuple[Path, str | None]]:
    """The other files of a product, by part, with their format: ``training`` and
    ``validation`` (``output.split_files``), ``unmatched`` (``output.unmatched``), as its
    provenance lists them beside its file."""
    provenance = record.provenance or {}
    if not record.output_path:
        return {}
    folder = Path(record.output_path).parent
    files = {
        side: (folder / name, product_format(record)) for side, name in (provenance.get("output_files") or {}).items()
    }
    lost = provenance.get("unmatched")
    if lost:
        files["unmatched"] = (folder / lost["file"], lost.get("format"))
    return files


def read_product(record: ProductRecord, part: str | None = None) -> pd.DataFrame:
    """The rows of the file of the finished training set ``record`` (``part``: one of
    :func:`product_files`)."""
    if part is None:
        return read_file(record.output_path or "", product_format(record))
    files = product_files(record)
    if part not in files:
        choices = ", ".join(files) or "none (set output.unmatched: true for an unmatched file)"
        raise TSMError(f"training set {record.id} has no {part!r} file; its files: {choices}")
    return read_file(*files[part])


def read(product: int | str | Path, part: str | None = None) -> pd.DataFrame:
    """A training set as a pandas DataFrame.

    ``product`` is the ID of a finished training set in the registry (``$TSM_HOME``), or
    the path of a training-set file. ``part`` reads another file of a product:
    ``"unmatched"`` (the redshifts it lost, with ``output.unmatched``), ``"training"`` or
    ``"validation"`` (``output.split_files``). Raises a :class:`~tsm_core.errors.TSMError`
    for an unknown or unfinished product, a missing file, or a format no installed writer reads.
    """
    if isinstance(product, int) or (isinstance(product, str) and product.isdigit() and not Path(product).exists()):
        return read_product(finished_product(int(product)), part)
    if part is not None:
        raise TSMError(f"part {part!r} applies to a product ID; {product} is a file: read it without part")
    return read_file(product)
