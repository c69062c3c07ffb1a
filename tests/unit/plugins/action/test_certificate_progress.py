"""Progress lines for long batches: every item is counted, few lines are printed."""

from __future__ import annotations

from ansible_collections.certops.acme.plugins.action import certificate as action
from ansible_collections.certops.acme.plugins.module_utils._acme.batch import BatchSettings, CertificateBatch


def test_counted_work_reports_each_item_in_order(tmp_path):
    seen = []
    batch = CertificateBatch(None, BatchSettings(progress=lambda *event: seen.append(event)), lambda: None, None)
    counted = batch._counted("ordering", 3, lambda item: item * 2)
    assert [counted(i) for i in (1, 2, 3)] == [2, 4, 6]
    assert seen == [("ordering", 1, 3), ("ordering", 2, 3), ("ordering", 3, 3)]


def test_counted_work_reports_failures_too():
    seen = []
    batch = CertificateBatch(None, BatchSettings(progress=lambda *event: seen.append(event)), lambda: None, None)

    def boom(item):
        raise ValueError(item)
    counted = batch._counted("issuing", 1, boom)
    try:
        counted("x")
    except ValueError:
        pass
    assert seen == [("issuing", 1, 1)]


def test_progress_line_prints_the_first_and_the_last_of_a_fast_phase(monkeypatch):
    printed = []
    monkeypatch.setattr(action.display, "display", printed.append)
    line = action.ProgressLine("Order", interval=60)
    for done in range(1, 201):
        line("ordering", done, 200)
    line("issuing", 1, 200)
    assert printed == ["certops.acme.certificate [Order]: ordering 1/200",
                       "certops.acme.certificate [Order]: ordering 200/200",
                       "certops.acme.certificate [Order]: issuing 1/200"]
