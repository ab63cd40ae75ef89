from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from rest_framework import pagination


class PageNumberPagination(pagination.PageNumberPagination):
    """``{count, next, previous, results}`` with a client-chosen, capped page size."""

    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100


def page_of(view: Any, items: Any) -> list[Any]:
    """The requested page of ``items`` (a queryset or list) for a paginated view."""
    page = view.paginate_queryset(items)
    if page is None:  # no paginator: a configuration error, not a request's
        raise ImproperlyConfigured(f"{type(view).__name__} has no pagination class")
    return page
