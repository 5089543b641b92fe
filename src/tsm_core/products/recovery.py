"""Recovering the runs whose process is gone (killed, out of memory, a node lost).

Such a product is marked failed ("interrupted") and its staging folder and output claim
are removed. This checks processes and deletes files, so opening a registry does not do
it: it runs once per process and registry (:func:`recover_once`: the ``tsm`` commands that
list or run products, :func:`tsm_core.run` / :func:`tsm_core.execute`, the start of
``tsm serve``) and on request (:func:`recover_interrupted`: ``tsm products recover``, and
a cancel, so that a run whose process is gone ends at once).
"""

from __future__ import annotations

import logging
import threading
from contextlib import suppress
from pathlib import Path
from typing import TYPE_CHECKING

from tsm_core.products.claims import CLAIM_SUFFIX, claimed_path, own_file, read_claim, release_files
from tsm_core.products.process import Owner, owner_alive

if TYPE_CHECKING:
    from tsm_core.products.records import ProductRecord
    from tsm_core.products.registry import Registry

log = logging.getLogger(__name__)

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
        for claim in _other_claims(product, registry):
            release_files(None, str(claim), str(claimed_path(claim)), product.pid)
        # the host and pid are the operator's business: logged, not stored in the error users see
        log.warning("training set %s interrupted: its process %s on %s is gone", product.id, product.pid, product.host)
        if registry.fail_product(product.id, INTERRUPTED):
            gone.append(product.id)
    return gone


def _other_claims(product: ProductRecord, registry: Registry) -> list[Path]:
    """The output claims of ``product`` beyond the one the registry records (its unmatched
    file, a split's validation file): claim files of this user's beside it that name this
    product and registry (a file planted by another user is not trusted)."""
    if not product.claim_path:
        return []
    first = Path(product.claim_path)
    home = registry.path.resolve()
    found = []
    with suppress(OSError):
        for claim in first.parent.glob(f".*{CLAIM_SUFFIX}"):
            if not own_file(claim):
                continue
            with suppress(FileNotFoundError):
                holder = read_claim(claim)
                registry_file = str(holder.get("registry") or "")
                mine = holder.get("product_id") == product.id and registry_file != ""
                if mine and claim != first and Path(registry_file).resolve() == home:
                    found.append(claim)
    return found


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
