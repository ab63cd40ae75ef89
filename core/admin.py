"""The admin's side of the one error shape.

Admin saves, deletes and actions go through the services, which refuse what
breaks a business rule by raising (a 409 transition, a validation error). Left
alone, that is an HTTP 500 in the admin. ``ServiceErrorsAdmin`` turns any error
the API knows (``config.exceptions.error_answer``) into an error message on
the page the operator came from (a save or delete rolls back whole). The
admin's own refusals (no permission, no such object) keep its 403/404 pages,
and anything else is a bug and still raises.
"""

from __future__ import annotations

from django.contrib import admin, messages
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect

from config.exceptions import error_answer


class ServiceErrorsAdmin(admin.ModelAdmin):
    def changeform_view(self, request, *args, **kwargs):
        return self._refusals_as_messages(request, super().changeform_view, *args, **kwargs)

    def delete_view(self, request, *args, **kwargs):
        return self._refusals_as_messages(request, super().delete_view, *args, **kwargs)

    def changelist_view(self, request, *args, **kwargs):  # where actions run
        return self._refusals_as_messages(request, super().changelist_view, *args, **kwargs)

    def _refusals_as_messages(self, request: HttpRequest, view, *args, **kwargs) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)  # each view runs in its own transaction
        except Exception as exc:
            answer = error_answer(exc)
            if answer is None or answer.status in (401, 403, 404) or answer.status >= 500:
                raise  # a bug, an outage, or the admin's own refusal (its own pages)
            self.message_user(request, f"Refused: {answer.detail}", messages.ERROR)
            return HttpResponseRedirect(request.get_full_path())
