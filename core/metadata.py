"""What ``OPTIONS`` answers on every route."""

from __future__ import annotations

from rest_framework.metadata import SimpleMetadata


class Metadata(SimpleMetadata):
    """The route's name, description, and the media types it renders and parses.

    DRF's default adds ``actions`` by instantiating ``view.get_serializer()``,
    which these views do not use (each action validates with its own input
    serializer), so it failed with a 500. The request and response shapes of
    every route are in the OpenAPI document, ``/api/schema/``.
    """

    def determine_metadata(self, request, view):
        return {
            "name": view.get_view_name(),
            "description": view.get_view_description(),
            "renders": [renderer.media_type for renderer in view.renderer_classes],
            "parses": [parser.media_type for parser in view.parser_classes],
            "schema": "/api/schema/",
        }
