"""The sandbox credit bureau: an HTTP service answering credit reports for the demo identities in
``sandbox/data/bureau_records.json`` and "no record" for everyone else.

Run it as its own process (``loanops dev`` does)::

    python -m sandbox.bureau --port 8091 [--latency-min-ms 50 --latency-max-ms 250 --seed 0]

It behaves like the real thing where the system can tell the difference:

- latency: every report request waits a random time between the bounds (seeded, reproducible);
- idempotency: the same ``request_id`` returns the same answer and counts one enquiry (reusing a
  ``request_id`` for another identity is refused with 409);
- enquiries: each new enquiry adds to the identity's ``enquiries_6m`` (in memory, per process);
- faults, injected over ``POST /v1/admin/faults``: ``timeout`` (the request is processed but
  the answer is withheld for ``hang_seconds``), ``error_500``, ``error_503`` (nothing is
  processed), for the next ``count`` report requests or with a ``probability`` until reset.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from fastapi import FastAPI, HTTPException
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, model_validator

RECORDS_FILE = Path(__file__).resolve().parent / "data" / "bureau_records.json"
DEFAULT_PORT = 8091

FaultMode = Literal["none", "timeout", "error_500", "error_503"]


class ReportRequest(BaseModel):
    id_number: str = Field(pattern=r"^\d{17}[\dX]$")
    name: str = Field(min_length=1, max_length=64)
    purpose: Literal["loan_application"]
    request_id: str = Field(min_length=1, max_length=128)


class FaultRequest(BaseModel):
    mode: FaultMode
    count: int | None = Field(default=None, ge=1)
    probability: float | None = Field(default=None, ge=0, le=1)
    hang_seconds: float = Field(default=30.0, gt=0, le=600)

    @model_validator(mode="after")
    def _one_trigger(self) -> FaultRequest:
        if self.count is not None and self.probability is not None:
            raise ValueError("give count or probability, not both")
        return self


@dataclass
class Faults:
    """The injected fault: ``count`` requests left, else each with ``probability``."""

    mode: FaultMode = "none"
    remaining: int | None = None
    probability: float | None = None
    hang_seconds: float = 30.0
    injected: int = 0  # faults injected since the last change

    def draw(self, rng: random.Random) -> FaultMode:
        """The fault for the next report request ("none" when it should be answered)."""
        if self.mode == "none":
            return "none"
        if self.remaining is not None:
            if self.remaining <= 0:
                return "none"
            self.remaining -= 1
        elif self.probability is not None and rng.random() >= self.probability:
            return "none"
        self.injected += 1
        return self.mode

    def view(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "remaining": self.remaining,
            "probability": self.probability,
            "hang_seconds": self.hang_seconds,
            "injected": self.injected,
        }


@dataclass
class _Answer:
    id_number: str
    body: dict[str, Any]


@dataclass
class BureauState:
    records: dict[str, dict[str, Any]]
    latency_ms: tuple[float, float]
    rng: random.Random
    faults: Faults = field(default_factory=Faults)
    enquiries: dict[str, int] = field(default_factory=dict)  # recorded by this process
    answers: dict[str, _Answer] = field(default_factory=dict)  # by request_id

    def answer(self, req: ReportRequest) -> dict[str, Any]:
        """The answer for a new enquiry: records it and builds the report (or "no record")."""
        self.enquiries[req.id_number] = self.enquiries.get(req.id_number, 0) + 1
        record = self.records.get(req.id_number)
        if record is None:
            return {"found": False, "request_id": req.request_id}
        loans = record["open_loans"]
        total = sum((_cents(loan["monthly_payment"]) for loan in loans), 0)
        return {
            "found": True,
            "request_id": req.request_id,
            "report": {
                "report_id": f"BR{uuid.UUID(int=self.rng.getrandbits(128)).hex[:20].upper()}",
                "reported_at": datetime.now(UTC).isoformat(),
                "overdue_count_24m": record["overdue_count_24m"],
                "overdue_amount": record["overdue_amount"],
                "max_days_past_due_24m": record["max_days_past_due_24m"],
                "months_since_last_delinquency": record["months_since_last_delinquency"],
                "enquiries_6m": record["enquiries_6m"] + self.enquiries[req.id_number],
                "open_loans": [
                    {
                        "lender_type": loan["lender_type"],
                        "balance": loan["balance"],
                        "monthly_payment": loan["monthly_payment"],
                    }
                    for loan in loans
                ],
                "other_platform_loans": record["other_platform_loans"],
                "total_monthly_payments": f"{total // 100}.{total % 100:02d}",
            },
        }


def _cents(amount: str) -> int:
    yuan, _, fen = amount.partition(".")
    return int(yuan) * 100 + int((fen + "00")[:2])


def load_records(path: Path = RECORDS_FILE) -> dict[str, dict[str, Any]]:
    records: dict[str, dict[str, Any]] = json.loads(path.read_text(encoding="utf-8"))["records"]
    return records


def create_app(
    *,
    records_file: Path = RECORDS_FILE,
    latency_ms: tuple[float, float] = (50, 250),
    seed: int | None = 0,
) -> FastAPI:
    low, high = latency_ms
    if not 0 <= low <= high:
        raise ValueError(f"latency bounds must satisfy 0 <= min <= max, got {low}..{high}")
    state = BureauState(
        records=load_records(records_file), latency_ms=(low, high), rng=random.Random(seed)
    )
    app = FastAPI(title="Sandbox credit bureau", docs_url="/docs")
    app.state.bureau = state

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.post("/v1/reports")
    async def report(req: ReportRequest) -> JSONResponse:
        await asyncio.sleep(state.rng.uniform(*state.latency_ms) / 1000)
        fault = state.faults.draw(state.rng)
        if fault == "error_500":
            return JSONResponse({"error": "internal error (injected)"}, status_code=500)
        if fault == "error_503":
            return JSONResponse(
                {"error": "service unavailable (injected)"},
                status_code=503,
                headers={"Retry-After": "1"},
            )
        done = state.answers.get(req.request_id)
        if done is None:
            done = _Answer(req.id_number, state.answer(req))
            state.answers[req.request_id] = done
        elif done.id_number != req.id_number:
            raise HTTPException(409, "request_id was already used for another identity")
        if fault == "timeout":  # processed, but the answer comes too late for the caller
            await asyncio.sleep(state.faults.hang_seconds)
        return JSONResponse(done.body)

    @app.post("/v1/admin/faults")
    async def set_faults(req: FaultRequest) -> dict[str, Any]:
        if req.mode == "none":
            state.faults = Faults()
        else:
            state.faults = Faults(
                mode=req.mode,
                remaining=req.count,
                probability=req.probability if req.count is None else None,
                hang_seconds=req.hang_seconds,
            )
        return state.faults.view()

    @app.get("/v1/admin/faults")
    async def get_faults() -> dict[str, Any]:
        return state.faults.view()

    @app.get("/v1/admin/enquiries")
    async def enquiries() -> dict[str, int]:
        """Enquiries recorded by this process, by ID number (on top of the data file's)."""
        return dict(state.enquiries)

    return app


def main(argv: list[str] | None = None) -> None:
    import uvicorn

    parser = argparse.ArgumentParser(prog="python -m sandbox.bureau", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--latency-min-ms", type=float, default=50)
    parser.add_argument("--latency-max-ms", type=float, default=250)
    parser.add_argument("--seed", type=int, default=0, help="latency, faults and report ids")
    parser.add_argument("--records", type=Path, default=RECORDS_FILE)
    args = parser.parse_args(argv)
    try:
        app = create_app(
            records_file=args.records,
            latency_ms=(args.latency_min_ms, args.latency_max_ms),
            seed=args.seed,
        )
    except ValueError as exc:
        parser.error(str(exc))
    # A hanging (timeout-fault) request must not hold up Ctrl-C for its whole hang.
    uvicorn.run(app, host=args.host, port=args.port, timeout_graceful_shutdown=1)


if __name__ == "__main__":
    main()
