"""What the CLI and the web service do to a training set as a whole: cancel and remove it.

A product goes ``queued -> running -> done | failed | cancelled``; runs whose process is
gone are found by :mod:`tsm_core.products.recovery`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from tsm_core.errors import TSMError
from tsm_core.products.output import remove_output
from tsm_core.products.recovery import recover_interrupted

if TYPE_CHECKING:
    from tsm_core.products.records import ProductRecord
    from tsm_core.products.registry import Registry

#: states in which a product still has a process working on it (or waiting to)
ACTIVE_STATES = ("queued", "running")
#: states a product ends in
TERMINAL_STATES = ("done", "failed", "cancelled")


def cancel_product(registry: Registry, product_id: int, wait: float = 0.0) -> ProductRecord:
    """Cancel a queued or running training set.

    A queued one is cancelled at once; a running one is asked to stop, and its process
    (the CLI, Python or the web service, on any host sharing the registry) stops at its
    next partition, removes its files and marks it cancelled. If that process is gone,
    the product is marked failed at once. Waits up to ``wait`` seconds for the run to
    end; returns the product as it is then. Fails for a product that has ended.
    """
    product = registry.product(product_id)
    if product.status in TERMINAL_STATES:
        raise TSMError(f"training set {product_id} is {product.status} already; nothing to cancel")
    registry.request_cancel(product_id)
    recover_interrupted(registry)
    deadline = time.monotonic() + wait
    product = registry.product(product_id)
    while product.status in ACTIVE_STATES and time.monotonic() < deadline:
        time.sleep(0.2)
        product = registry.product(product_id)
    return product


def remove_product(registry: Registry, product_id: int, visible_to: str | None = None) -> ProductRecord:
    """Remove a training set that has ended, its files (the unmatched one too) and its stored
    report; fails for a queued or running one, and (for a user, ``visible_to``) for one that is not theirs."""
    from tsm_core.products.reading import product_files  # the writers' plugins load with it
    from tsm_core.reports.build import remove_stored_report  # the reports' imports are heavy

    product = registry.product(product_id, visible_to)
    if visible_to is not None and product.owner != visible_to:
        raise registry.not_found(product_id)
    if product.status in ACTIVE_STATES:
        raise TSMError(
            f"training set {product_id} is {product.status}; cancel it first (tsm products cancel {product_id})"
        )
    if product.status == "done" and product.output_path:
        remove_output(Path(product.output_path))
        for path, _format in product_files(product).values():
            remove_output(path)
    registry.delete_product(product_id)
    remove_stored_report(registry.path.parent, product_id)
    return product
