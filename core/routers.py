"""Routers for the URL shapes DRF's ``SimpleRouter`` does not cover."""

from __future__ import annotations

from rest_framework.routers import DynamicRoute, Route, SimpleRouter


class SingletonRouter(SimpleRouter):
    """A resource that exists once per caller (``profile/``): no list, no id.

    ``{prefix}/`` maps GET to ``retrieve``, PUT to ``update``, PATCH to
    ``partial_update`` and DELETE to ``destroy`` (those the viewset has), and
    each ``@action(detail=False)`` sits below it at ``{prefix}/{url_path}/``.
    """

    routes = [
        Route(
            url=r"^{prefix}{trailing_slash}$",
            mapping={
                "get": "retrieve",
                "put": "update",
                "patch": "partial_update",
                "delete": "destroy",
            },
            name="{basename}",
            detail=False,
            initkwargs={"suffix": "Instance"},
        ),
        DynamicRoute(
            url=r"^{prefix}/{url_path}{trailing_slash}$",
            name="{basename}-{url_name}",
            detail=False,
            initkwargs={},
        ),
    ]
