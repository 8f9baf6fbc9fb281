"""Unversioned aliases of the ``/v1`` routes: ``POST /analyze``, ``GET /jobs/{job_id}``,
``GET /jobs/{job_id}/result.csv``, ``DELETE /jobs/{job_id}``, ``POST /jobs/{job_id}/cancel``.

Each alias runs the same endpoint with the same dependencies (authentication and rate
limits included) as its ``/v1`` route. In the OpenAPI schema the aliases carry the tag
:data:`ALIAS_TAG`, a summary and description naming their canonical route, and the
extension ``x-canonical`` (the canonical path); the ``/v1`` routes are the canonical ones.
Links in answers (``status_url``, ``Location``) always give the canonical ``/v1`` path.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from fastapi import APIRouter, params
from fastapi.routing import APIRoute

#: OpenAPI tag of every alias.
ALIAS_TAG = "aliases (unversioned, same as /v1)"
#: Prefix of the canonical routes.
CANONICAL_PREFIX = "/v1"


def alias_router(
    routers: Sequence[APIRouter],
    dependencies: Sequence[params.Depends],
    prefix: str = CANONICAL_PREFIX,
) -> APIRouter:
    """A router serving the routes of ``routers`` at their own paths, as aliases of the
    same routes included under ``prefix``.

    Args:
        routers: the resource routers the app also includes under ``prefix``
            (``analyze.router``, ``jobs.router``).
        dependencies: the dependencies of the ``prefix`` router (authentication), added to
            every alias.
        prefix: the canonical version prefix, ``/v1``.

    Returns:
        A router with one alias per :class:`~fastapi.routing.APIRoute`: same endpoint,
        methods, status code, response model, responses and dependencies; name and
        operation id ``<canonical name>_alias``; ``openapi_extra`` adds ``x-canonical``.
    """
    router = APIRouter(dependencies=list(dependencies))
    for route in (r for rt in routers for r in rt.routes if isinstance(r, APIRoute)):
        methods = sorted(route.methods or ())
        canonical_path = prefix + route.path
        canonical = f"{' '.join(methods)} {canonical_path}"
        extra: dict[str, Any] = dict(route.openapi_extra or {})
        extra["x-canonical"] = canonical_path
        router.add_api_route(
            route.path,
            route.endpoint,
            methods=methods,
            status_code=route.status_code,
            response_model=route.response_model,
            response_class=route.response_class,
            responses=route.responses,
            dependencies=route.dependencies,
            name=f"{route.name}_alias",
            operation_id=f"{route.name}_alias",
            tags=[ALIAS_TAG],
            summary=f"{route.summary or route.name} (alias of {canonical})",
            description=f"Alias of the canonical `{canonical}`: the same operation, "
            f"authentication and limits. Prefer the `{prefix}` path.\n\n{route.description}",
            openapi_extra=extra,
        )
    return router
