"""The Photo-z Server's ``processes/``: runs of the Training Set Maker on a published redshift
catalog, submitted through the core's service layer and built by the app's runner; their
status, and stopping them."""

from __future__ import annotations

from concurrent.futures import Future
from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.concurrency import run_in_threadpool

from tsm_core import plugins
from tsm_core.errors import TooManyRuns, TSMError
from tsm_web import trust
from tsm_web.auth import Caller, max_active
from tsm_web.pzserver.access import caller, readable, readable_process
from tsm_web.pzserver.drf import PzError, bad, body_of, paginate, scrub, validated
from tsm_web.pzserver.params import FIELD_OF_KEY, ParamError, parse_used_config, run_config
from tsm_web.pzserver.releases import PIPELINE_ID, PIPELINE_NAME, release_by_id, releases
from tsm_web.pzserver.schemas import ProcessCreate, process_out
from tsm_web.pzserver.state import settings

router = APIRouter()


def submit_training_set(request: Request, config: dict[str, Any], who: Caller) -> tuple[int, Future]:
    """The core's submission (checked, planned, registered as ``who``'s, within the
    operator's bounds and the per-user queue limit) run in the background by the app's
    runner; returns the training set's ID and its future. Raises a
    :class:`~tsm_core.errors.TSMError` naming the bad key before anything is registered."""
    registry = request.app.state.registry
    plan, product_id = trust.submit(config, request.app.state.settings, who.name, max_active(request, who), registry)
    return product_id, request.app.state.runner.submit(plan, product_id, registry)


@router.get("/processes/", summary="The caller's processes, newest first")
def list_processes(request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    pz = settings(request)
    return paginate(request, [process_out(pz, who, p) for p in pz.store().processes(who.visible_to)])


@router.post("/processes/", status_code=201, summary="Run the Training Set Maker on a published redshift catalog")
async def create_process(request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    pz = settings(request)
    body = validated(ProcessCreate, await body_of(request))
    if body.pipeline != PIPELINE_ID:
        raise bad("pipeline", f"unknown pipeline; this server runs {PIPELINE_NAME} (id {PIPELINE_ID})")
    name = body.display_name
    release = release_by_id(body.release)
    if release is None:
        choices = ", ".join(f"{r['id']} ({r['name']})" for r in releases())
        raise bad("release", f"choose a release: {choices}")
    if len(body.inputs) != 1:
        raise bad("inputs", "give exactly one redshift catalog")
    try:
        source = readable(pz, who, body.inputs[0])
    except PzError:
        raise bad("inputs", f'Invalid pk "{body.inputs[0]}" - object does not exist.') from None
    if source.product_type != "redshift_catalog" or source.catalog_id is None:
        raise bad("inputs", f"product {source.id} is not a published redshift catalog")
    try:
        used_config = parse_used_config(body.used_config)
        config = run_config(
            name, body.description or "", plugins.object_catalog(release["name"]), source.catalog_id, used_config
        )
    except ParamError as exc:
        raise PzError(400, exc.body) from None
    try:
        ts_id, future = await run_in_threadpool(submit_training_set, request, config, who)
    except TooManyRuns as exc:
        raise PzError(429, {"detail": exc.message}) from None
    except TSMError as exc:
        field_name = FIELD_OF_KEY.get(exc.key, FIELD_OF_KEY.get(exc.key.split(".")[0], "non_field_errors"))
        message = str(exc).removeprefix(f"{exc.key}: ") if exc.key else str(exc)
        raise bad(field_name, scrub(message)) from None
    store = pz.store()
    with pz.lock:
        product = store.training_set_product(
            ts_id,
            display_name=name,
            description=config["description"],
            release=release["name"],
            owner=who.name,
            status=3,
        )
        process = store.create_process(
            product.id, ts_id, name, release["name"], used_config.model_dump(mode="json"), [source.id], who.name
        )
        pz.futures[ts_id] = future
    future.add_done_callback(lambda _: pz.futures.pop(ts_id, None))
    return process_out(pz, who, process)


@router.get("/processes/{process_id}/", summary="One process and its status")
def get_process(request: Request, process_id: int, who: Caller = Depends(caller)) -> dict[str, Any]:
    pz = settings(request)
    return process_out(pz, who, readable_process(pz, who, process_id))


@router.get(
    "/processes/{process_id}/stop/",
    summary="Stop a process (a queued run is cancelled; a running one is not published)",
)
def stop_process(request: Request, process_id: int, who: Caller = Depends(caller)) -> dict[str, Any]:
    pz = settings(request)
    process = readable_process(pz, who, process_id)
    store = pz.store()
    from tsm_core.products.lifecycle import cancel_product

    try:
        ended = pz.registry().product(process.training_set_id).status not in ("queued", "running")
    except TSMError:
        ended = True  # its training set is gone
    if not ended:  # a finished process stays as it ended (stopping it changes nothing)
        store.request_stop(process.id)
        try:  # the core's cancel: a queued run never starts, a running one stops between partitions
            cancel_product(pz.registry(), process.training_set_id)
        except TSMError:
            pass  # it ended meanwhile: nothing to stop
    return process_out(pz, who, store.process(process.id) or process)
