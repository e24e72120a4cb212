"""The sandbox credit bureau as its own process over loopback HTTP, through the real adapter:
reports from the data file, "no record", idempotency, latency, injected timeouts and 5xx."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from decimal import Decimal

import httpx
import pytest
from temporalio.contrib.pydantic import pydantic_data_converter

from adapters.bureau import (
    BureauBadAnswer,
    BureauRequestRefused,
    BureauUnavailable,
    CreditBureau,
    HttpCreditBureau,
)
from domain.bureau import BureauReport
from sandbox.bureau import RECORDS_FILE
from tests.conftest import free_port
from tests.sandbox.conftest import LATENCY_MS
from tests.sandbox.helpers import SandboxBureau

DEMO_ID = "110105198805120026"
RECORDS = json.loads(RECORDS_FILE.read_text(encoding="utf-8"))["records"]


def rid() -> str:
    return f"test-{uuid.uuid4()}"


def enquiries_now(bureau: SandboxBureau, id_number: str) -> int:
    return int(RECORDS[id_number]["enquiries_6m"]) + bureau.enquiries().get(id_number, 0)


@pytest.mark.parametrize("id_number", sorted(RECORDS))
def test_known_identity_gets_the_figures_of_the_data_file(
    bureau: SandboxBureau, id_number: str
) -> None:
    record = RECORDS[id_number]
    with HttpCreditBureau(bureau.url) as client:
        before = enquiries_now(bureau, id_number)
        report = client.report(id_number, record["name"], rid())
    assert report is not None
    assert report.overdue_count_24m == record["overdue_count_24m"]
    assert report.overdue_amount == Decimal(record["overdue_amount"])
    assert report.max_days_past_due_24m == record["max_days_past_due_24m"]
    assert report.months_since_last_delinquency == record["months_since_last_delinquency"]
    assert report.other_platform_loans == record["other_platform_loans"]
    assert [(o.lender_type, o.balance, o.monthly_payment) for o in report.open_loans] == [
        (o["lender_type"], Decimal(o["balance"]), Decimal(o["monthly_payment"]))
        for o in record["open_loans"]
    ]
    assert report.total_monthly_payments == sum(
        (Decimal(o["monthly_payment"]) for o in record["open_loans"]), Decimal("0.00")
    )
    assert report.enquiries_6m == before + 1  # this enquiry is on the report
    assert report.report_id and report.reported_at.tzinfo is not None


def test_demo_borrower_is_a_clean_record(bureau: SandboxBureau) -> None:
    with HttpCreditBureau(bureau.url) as client:
        report = client.report(DEMO_ID, "张三丰", rid())
    assert report is not None
    assert report.overdue_count_24m == 0 and report.overdue_amount == Decimal("0.00")
    assert report.months_since_last_delinquency is None
    assert report.total_monthly_payments == Decimal("2670.00")


def test_unknown_identity_is_no_record(bureau: SandboxBureau) -> None:
    with HttpCreditBureau(bureau.url) as client:
        assert client.report("110101199003070011", "赵无名", rid()) is None


def test_same_request_id_twice_is_one_enquiry(bureau: SandboxBureau) -> None:
    request_id = rid()
    with HttpCreditBureau(bureau.url) as client:
        before = bureau.enquiries().get(DEMO_ID, 0)
        first = client.report(DEMO_ID, "张三丰", request_id)
        again = client.report(DEMO_ID, "张三丰", request_id)
        assert first is not None and again == first  # same report id, time and figures
        assert bureau.enquiries().get(DEMO_ID, 0) == before + 1
        later = client.report(DEMO_ID, "张三丰", rid())  # a new enquiry counts
    assert later is not None and later.report_id != first.report_id
    assert later.enquiries_6m == first.enquiries_6m + 1


def test_request_id_reused_for_another_identity_is_refused(bureau: SandboxBureau) -> None:
    request_id = rid()
    with HttpCreditBureau(bureau.url) as client:
        client.report(DEMO_ID, "张三丰", request_id)
        with pytest.raises(BureauRequestRefused) as refused:
            client.report("440305198807150015", "李建国", request_id)
    assert refused.value.status_code == 409
    assert not refused.value.retryable


def test_injected_timeout_is_unavailable_within_the_adapter_timeout(
    bureau: SandboxBureau,
) -> None:
    bureau.set_faults("timeout", count=1, hang_seconds=60)
    request_id = rid()
    before = bureau.enquiries().get(DEMO_ID, 0)
    with HttpCreditBureau(bureau.url, timeout=1.0) as client:
        started = time.monotonic()
        with pytest.raises(BureauUnavailable) as down:
            client.report(DEMO_ID, "张三丰", request_id)
        elapsed = time.monotonic() - started
        assert down.value.retryable
        assert elapsed >= 1.0  # it waited for its own timeout…
        assert elapsed < 30  # …and not for the bureau's 60 s hang (loose: a busy machine)
        # The bureau processed the lost answer: the retry with the same request_id gets that
        # report and the enquiry is counted once.
        retried = client.report(DEMO_ID, "张三丰", request_id)
    assert retried is not None
    assert bureau.enquiries().get(DEMO_ID, 0) == before + 1
    assert bureau.faults()["injected"] == 1


def test_two_503s_then_the_report(bureau: SandboxBureau) -> None:
    bureau.set_faults("error_503", count=2)
    request_id = rid()  # the caller's retries reuse it
    with HttpCreditBureau(bureau.url) as client:
        for _ in range(2):
            with pytest.raises(BureauUnavailable, match="HTTP 503"):
                client.report(DEMO_ID, "张三丰", request_id)
        report = client.report(DEMO_ID, "张三丰", request_id)
    assert report is not None and report.overdue_count_24m == 0
    assert bureau.faults()["injected"] == 2


def test_a_500_is_unavailable_then_recovers(bureau: SandboxBureau) -> None:
    bureau.set_faults("error_500", count=1)
    with HttpCreditBureau(bureau.url) as client:
        with pytest.raises(BureauUnavailable, match="HTTP 500"):
            client.report(DEMO_ID, "张三丰", rid())
        assert client.report(DEMO_ID, "张三丰", rid()) is not None


def test_probability_faults_last_until_reset(bureau: SandboxBureau) -> None:
    bureau.set_faults("error_503", probability=1.0)
    with HttpCreditBureau(bureau.url) as client:
        for _ in range(3):
            with pytest.raises(BureauUnavailable):
                client.report(DEMO_ID, "张三丰", rid())
        bureau.set_faults("none")
        assert client.report(DEMO_ID, "张三丰", rid()) is not None


def test_fault_request_with_count_and_probability_is_refused(bureau: SandboxBureau) -> None:
    r = httpx.post(
        f"{bureau.url}/v1/admin/faults",
        json={"mode": "error_500", "count": 1, "probability": 0.5},
        timeout=10,
    )
    assert r.status_code == 422


def test_answers_take_at_least_the_configured_latency(bureau: SandboxBureau) -> None:
    low_seconds = LATENCY_MS[0] / 1000
    with HttpCreditBureau(bureau.url) as client:
        for _ in range(5):
            started = time.monotonic()
            client.report(DEMO_ID, "张三丰", rid())
            assert time.monotonic() - started >= low_seconds  # only the lower bound: no flakes


def test_connection_refused_is_unavailable() -> None:
    client = HttpCreditBureau(f"http://127.0.0.1:{free_port()}", timeout=2)
    with client, pytest.raises(BureauUnavailable, match="cannot reach"):
        client.report(DEMO_ID, "张三丰", rid())


def test_wrong_url_and_bad_identity_are_refused_not_no_record(bureau: SandboxBureau) -> None:
    # A misconfigured URL must not make every borrower look like a thin file.
    wrong_url = HttpCreditBureau(f"{bureau.url}/nowhere")
    with wrong_url, pytest.raises(BureauRequestRefused) as wrong:
        wrong_url.report(DEMO_ID, "张三丰", rid())
    assert wrong.value.status_code == 404
    client = HttpCreditBureau(bureau.url)
    with client, pytest.raises(BureauRequestRefused) as bad:
        client.report("12345", "张三丰", rid())
    assert bad.value.status_code == 422


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"report": {}}',
        b'{"found": true, "report": {"report_id": "x"}}',
        # the total does not add up
        b'{"found": true, "report": {"report_id": "x", "reported_at": "2026-11-29T04:00:00Z",'
        b' "overdue_count_24m": 0, "overdue_amount": "0.00", "max_days_past_due_24m": 0,'
        b' "months_since_last_delinquency": null, "enquiries_6m": 1, "open_loans": [],'
        b' "other_platform_loans": 0, "total_monthly_payments": "100.00"}}',
    ],
)
def test_malformed_answer_is_a_bad_answer(body: bytes) -> None:
    # The adapter's parsing alone: a transport that answers 200 with a broken body.
    transport = httpx.MockTransport(lambda request: httpx.Response(200, content=body))
    client = HttpCreditBureau("http://bureau.invalid", transport=transport)
    with client, pytest.raises(BureauBadAnswer) as bad:
        client.report(DEMO_ID, "张三丰", rid())
    assert not bad.value.retryable


def test_report_round_trips_through_the_temporal_data_converter(bureau: SandboxBureau) -> None:
    client: CreditBureau
    with HttpCreditBureau(bureau.url) as client:
        report = client.report("310104199203086022", "王晓燕", rid())
    assert report is not None

    async def round_trip() -> BureauReport:
        payloads = await pydantic_data_converter.encode([report])
        [back] = await pydantic_data_converter.decode(payloads, [BureauReport])
        assert isinstance(back, BureauReport)
        return back

    assert asyncio.run(round_trip()) == report
