"""Input shapes the serializers check before any service runs."""

from __future__ import annotations

import uuid

import pytest

from documents.serializers import StatusReportInputSerializer


@pytest.mark.parametrize(
    ("report", "field"),
    [
        ({"status": "processed"}, "chunk_count"),
        ({"status": "failed", "error": "  "}, "error"),
        ({"status": "failed"}, "error"),
        ({"status": "pending"}, "status"),
    ],
)
def test_report_requires_the_fields_of_its_status(report, field):
    serializer = StatusReportInputSerializer(data={"lease_id": str(uuid.uuid4()), **report})

    assert not serializer.is_valid()
    assert set(serializer.errors) == {field}


@pytest.mark.parametrize(
    "report",
    [
        {"status": "processing"},
        {"status": "processed", "chunk_count": 0},
        {"status": "failed", "error": "Embedding failed."},
    ],
)
def test_complete_reports_are_valid(report):
    assert StatusReportInputSerializer(data={"lease_id": str(uuid.uuid4()), **report}).is_valid()
