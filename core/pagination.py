from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from rest_framework import pagination
from rest_framework.exceptions import ValidationError


class PageNumberPagination(pagination.PageNumberPagination):
    """``{count, next, previous, results}`` with a client-chosen, capped page size.

    A ``page_size`` that is not a positive integer is a 400 (DRF would quietly
    use the default); one above the maximum is capped. A page past the end, or
    not a number, is DRF's 404 "Invalid page.".
    """

    page_size = 20
    page_size_query_param = "page_size"
    max_page_size = 100

    def get_page_size(self, request) -> int:
        raw = request.query_params.get(self.page_size_query_param)
        if raw is None:
            return self.page_size
        if not raw.isdecimal() or int(raw) < 1:
            raise ValidationError({self.page_size_query_param: ["Must be a positive integer."]})
        return min(int(raw), self.max_page_size)

    def get_schema_operation_parameters(self, view):
        parameters = super().get_schema_operation_parameters(view)
        for parameter in parameters:
            parameter["schema"]["minimum"] = 1
        return parameters


def page_of(view: Any, items: Any) -> list[Any]:
    """The requested page of ``items`` (a queryset or list) for a paginated view."""
    page = view.paginate_queryset(items)
    if page is None:  # no paginator: a configuration error, not a request's
        raise ImproperlyConfigured(f"{type(view).__name__} has no pagination class")
    return page
