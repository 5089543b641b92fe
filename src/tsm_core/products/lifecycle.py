"""The life of a training set, shared by the CLI, Python calls and the web service.

A product goes ``queued -> running -> done | failed | cancelled``. This module holds what
is done to products as a whole: cancelling (:func:`cancel_product`), removing
(:func:`remove_product`) and recovering the runs whose process is gone
(:func:`recover_interrupted`): those are marked failed ("interrupted") and their staging
folders and output claims removed.

Recovery checks processes and deletes files, so opening a registry does not do it: it runs
once per process and registry (:func:`recover_once`: the ``tsm`` commands that list or run
products, :func:`tsm_core.run` / :func:`tsm_core.execute`, the start of ``tsm serve``) and
on request (``tsm products recover``, and before a cancel waits for a run).
"""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING

from tsm_core.errors import TSMError
from tsm_core.products.output import release_files, remove_output
from tsm_core.products.process import Owner, owner_alive

if TYPE_CHECKING:
    from tsm_core.products.records import ProductRecord
    from tsm_core.products.registry import Registry

log = logging.getLogger(__name__)

#: states in which a product still has a process working on it (or waiting to)
ACTIVE_STATES = ("queued", "running")
#: states a product ends in
TERMINAL_STATES = ("done", "failed", "cancelled")
#: the error of a product whose run's process is gone (its host and pid are only logged)
INTERRUPTED = "interrupted: the process running it stopped"

#: the registry files recovered by this process (see :func:`recover_once`)
_recovered: set[Path] = set()
_recovered_lock = threading.Lock()


def recover_interrupted(registry: Registry) -> list[int]:
    """Mark failed ("interrupted") the queued and running products of this host whose
    process is gone, removing their staging folders and output claims. Returns their IDs.
    Runs of other hosts sharing the registry are left alone."""
    gone = []
    for product in registry.active_products():
        if product.pid is None or owner_alive(Owner(product.host or "", product.pid, product.start_token)) is not False:
            continue
        release_files(product.staging_path, product.claim_path, product.output_path, product.pid)
        # the host and pid are the operator's business: logged, not stored in the error users see
        log.warning("training set %s interrupted: its process %s on %s is gone", product.id, product.pid, product.host)
        if registry.fail_product(product.id, INTERRUPTED):
            gone.append(product.id)
    return gone


def recover_once(registry: Registry) -> list[int]:
    """:func:`recover_interrupted`, the first time this process asks for the registry file
    of ``registry``; later calls do nothing and return ``[]``."""
    key = registry.path.resolve()
    with _recovered_lock:
        if key in _recovered:
            return []
        _recovered.add(key)
    try:
        return recover_interrupted(registry)
    except BaseException:
        with _recovered_lock:
            _recovered.discard(key)  # not recovered: the next caller tries again
        raise


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
    """Remove a training set that has ended, its file and its stored report; fails for a
    queued or running one, and (for a user, ``visible_to``) for one that is not theirs."""
    from tsm_core.reports.build import remove_stored_report  # the reports' imports are heavy

    product = registry.product(product_id, visible_to)
    if visible_to is not None and product.owner != visible_to:
        raise registry.not_found(product_id)
    if product.status in ACTIVE_STATES:
        raise TSMError(f"training set {product_id} is {product.status}; cancel it first (tsm products cancel {product_id})")
    if product.status == "done" and product.output_path:
        remove_output(Path(product.output_path))
    registry.delete_product(product_id)
    remove_stored_report(registry.path.parent, product_id)
    return product
