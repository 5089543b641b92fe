"""The Photo-z Server's ``users/``: every user for the admin token, else the caller alone."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request

from tsm_web.auth import Caller
from tsm_web.pzserver.access import caller
from tsm_web.pzserver.drf import paginate

router = APIRouter()


@router.get("/users/", summary="Users: all of them for the admin token, else the caller")
def list_users(request: Request, who: Caller = Depends(caller)) -> dict[str, Any]:
    users = [u for u in request.app.state.users.all() if who.is_admin or u.name == who.name]
    return paginate(
        request,
        [
            {"id": u.id, "username": u.name, "first_name": "", "last_name": u.name, "date_joined": u.created_at}
            for u in users
        ],
    )
