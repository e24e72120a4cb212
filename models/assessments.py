"""Reading a stored assessment (shared by the activity that writes it and the API that shows it)."""

from pydantic import TypeAdapter

from domain.intake import CheckResult, Outcome, knock_outs
from models.shapes import AssessmentSummary
from models.tables import Assessment

CHECKS = TypeAdapter(tuple[CheckResult, ...])


def summary_of(row: Assessment) -> AssessmentSummary:
    checks = CHECKS.validate_python(row.checks)
    return AssessmentSummary(
        seq=row.seq,
        grade=row.grade,
        score=int(row.score["score"]),
        recommendation=row.recommendation,
        knock_outs=tuple(c.code for c in knock_outs(checks))
        + tuple(str(k["code"]) for k in row.score.get("knockouts", [])),
        attention=tuple(c.code for c in checks if c.outcome != Outcome.PASS),
        bureau_status=row.bureau_status,
    )
