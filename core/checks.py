"""System checks of the project's own settings (``manage.py check --deploy``)."""

from __future__ import annotations

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def bench_endpoints_off(app_configs, **kwargs) -> list[Warning]:
    if not settings.BENCH_ENDPOINTS:
        return []
    return [
        Warning(
            "BENCH_ENDPOINTS is True: /api/bench/ceiling/ answers without credentials.",
            hint="It exists for `make bench` only; unset BENCH_ENDPOINTS in production.",
            id="core.W001",
        )
    ]
