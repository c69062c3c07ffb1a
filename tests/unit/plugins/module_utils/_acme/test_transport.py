import email.utils
import time

from ansible_collections.certops.acme.plugins.module_utils._acme.errors import AcmeProblem
from ansible_collections.certops.acme.plugins.module_utils._acme.ca.transport import parse_retry_after


def test_retry_after_in_seconds():
    assert parse_retry_after("7") == 7.0


def test_retry_after_as_http_date():
    now = time.time()
    value = email.utils.formatdate(now + 30, usegmt=True)
    assert 28 <= parse_retry_after(value, now=now) <= 31


def test_garbage_retry_after_is_ignored():
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_problem_without_type_keeps_the_cas_text():
    problem = AcmeProblem(400, "https://ca/new-order", "plain text from a private CA")
    assert "plain text from a private CA" in str(problem) and problem.code == ""


def test_problem_names_code_detail_and_subproblems():
    problem = AcmeProblem(400, "https://ca/new-order", {
        "type": "urn:ietf:params:acme:error:rejectedIdentifier", "detail": "policy forbids",
        "subproblems": [{"identifier": {"type": "dns", "value": "bad.example"}, "detail": "blocked"}]},
        retry_after=30)
    text = str(problem)
    assert problem.code == "rejectedIdentifier"
    assert "policy forbids" in text and "bad.example: blocked" in text and "retry after 30" in text
