"""The task inbox: list the caller's roles' tasks, claim and unclaim them, decide them."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

import anyio
import anyio.to_thread
from fastapi import APIRouter, HTTPException, Query, status
from sqlalchemy import and_, func, or_, update
from sqlmodel import Session, col, select

from api.audit_events import record_four_eyes_refusal
from api.deps import (
    ClockDep,
    CurrentUserInfo,
    SessionDep,
    SettingsDep,
    TemporalDep,
    require,
)
from api.errors import unprocessable, unprocessable_from
from api.loan_views import own_applications, visible_to
from api.pagination import COUNT_DOC, CURSOR_DOC, decode_cursor, encode_cursor
from api.schemas import (
    MAX_OFFSET,
    DecisionIn,
    DecisionOut,
    DecisionShapeOut,
    TaskKindOut,
    TaskKindsOut,
    TaskOut,
    TaskPage,
)
from api.workflow_calls import WorkflowRefusal, update_loan
from domain.audit_actions import FOUR_EYES_REFUSALS
from domain.calendar import business_date
from domain.decision_data import shapes_schema
from domain.identifiers import DECIDE_UPDATE
from domain.lpr import LprRate
from domain.masking import scrub_pii
from domain.permissions import Action
from domain.tasks import TASK_RULES, TaskKind, TaskStatus
from loanops.policy import lpr_table
from models.audit import append_audit
from models.shapes import DecisionRequest, DecisionResult
from models.tables import Application, Task

router = APIRouter(prefix="/tasks", tags=["tasks"])


def _out(t: Task, viewer: CurrentUserInfo) -> TaskOut:
    """One task; its context with personal data masked (by key: name, id_number, phone, card)
    for a viewer who sees PII masked."""
    context = t.context
    if context is not None and not viewer.can(Action.READ_BORROWER_PII):
        context = cast(dict[str, Any], scrub_pii(context, {}))
    return TaskOut(
        id=str(t.id),
        kind=t.kind,
        application_no=t.application_no,
        candidate_role=t.candidate_role,
        assignee=t.assignee,
        status=t.status,
        priority=t.priority,
        due_at=t.due_at,
        created_at=t.created_at,
        escalated_at=t.escalated_at,
        expires_at=t.expires_at,
        decisions=list(TASK_RULES[TaskKind(t.kind)].decisions),
        application_url=f"/api/v1/applications/{t.application_no}",
        escalation_level=t.escalation_level,
        context=context,
    )


# The inbox's long-poll: the longest ``wait`` a caller may ask, and how often the database is
# looked at meanwhile (by the API, on its event loop: no thread is held while it waits).
MAX_WAIT_SECONDS = 30
INBOX_POLL_SECONDS = 0.1
WAIT_DOC = (
    "Long-poll: when the page would be empty, wait up to this many seconds (0-30) for a task "
    "to appear and answer as soon as one does (e.g. the next task of a loan: kind and "
    "application_no). 0 answers at once."
)


@router.get("", response_model=TaskPage)
async def list_tasks(
    session: SessionDep,
    user: CurrentUserInfo = require(Action.LIST_TASKS),
    task_status: TaskStatus = Query(TaskStatus.OPEN, alias="status"),
    kind: TaskKind | None = None,
    application_no: str | None = None,
    limit: int = Query(50, ge=1, le=500),
    offset: int = Query(0, ge=0, le=MAX_OFFSET),
    cursor: str | None = Query(None, description=CURSOR_DOC),
    count: bool = Query(True, description=COUNT_DOC),
    wait: float = Query(0, ge=0, le=MAX_WAIT_SECONDS, description=WAIT_DOC),
) -> TaskPage:
    """Any role: the tasks of the caller's roles (every task for those who may oversee tasks),
    most urgent first (priority, then due time); a business officer's only on their own
    applications. Pages by offset or by ``cursor`` (keyset: the next page starts after the
    last task of this one, in the order of the index ``ix_tasks_inbox``). With ``wait``, an
    empty page waits (bounded) for a task instead of the client polling."""

    def page() -> TaskPage:
        try:
            return _inbox_page(
                session, user, task_status, kind, application_no, limit, offset, cursor, count
            )
        finally:
            session.rollback()  # the next look sees what was committed meanwhile

    deadline = anyio.current_time() + wait
    while True:
        found = await anyio.to_thread.run_sync(page)
        left = deadline - anyio.current_time()
        if found.items or left <= 0:
            return found
        await anyio.sleep(min(INBOX_POLL_SECONDS, left))


def _inbox_page(
    session: Session,
    user: CurrentUserInfo,
    task_status: TaskStatus,
    kind: TaskKind | None,
    application_no: str | None,
    limit: int,
    offset: int,
    cursor: str | None,
    count: bool,
) -> TaskPage:
    where: list[Any] = [Task.status == task_status.value]
    own = own_applications(user)
    if own is not None:
        where.append(col(Task.application_no).in_(select(Application.application_no).where(own)))
    if not user.can(Action.OVERSEE_TASKS):
        where.append(col(Task.candidate_role).in_(user.roles))
    if kind is not None:
        where.append(Task.kind == kind.value)
    if application_no is not None:
        where.append(Task.application_no == application_no)
    total = (
        session.exec(select(func.count()).select_from(Task).where(*where)).one() if count else None
    )
    after: list[Any] = []
    if cursor is not None:
        p, d, c, i = decode_cursor(cursor, (int, datetime, datetime, uuid.UUID), offset)
        # After (p, d, c, i) in the order priority DESC, due_at, created_at, id.
        after.append(
            or_(
                col(Task.priority) < p,
                and_(
                    col(Task.priority) == p,
                    or_(
                        col(Task.due_at) > d,
                        and_(
                            col(Task.due_at) == d,
                            or_(
                                col(Task.created_at) > c,
                                and_(col(Task.created_at) == c, col(Task.id) > i),
                            ),
                        ),
                    ),
                ),
            )
        )
    rows = session.exec(
        select(Task)
        .where(*where, *after)
        .order_by(col(Task.priority).desc(), col(Task.due_at), col(Task.created_at), col(Task.id))
        .offset(offset)
        .limit(limit + 1)
    ).all()
    more, rows = len(rows) > limit, rows[:limit]
    last = rows[-1] if rows else None
    return TaskPage(
        items=[_out(t, user) for t in rows],
        total=total,
        limit=limit,
        offset=offset,
        next_cursor=encode_cursor([last.priority, last.due_at, last.created_at, last.id])
        if more and last is not None
        else None,
    )


def _task_for(session: Session, task_id: uuid.UUID, user: CurrentUserInfo) -> Task:
    task = session.get(Task, task_id)
    app = (
        session.exec(
            select(Application).where(Application.application_no == task.application_no)
        ).first()
        if task is not None
        else None
    )
    # A task on an application the caller may not see is answered as one that does not exist.
    if task is None or (app is not None and not visible_to(user, app)):
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail=f"task {task_id} does not exist")
    if task.candidate_role not in user.roles:
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail=f"a {task.kind} task is handled by a {task.candidate_role}",
        )
    if task.status != TaskStatus.OPEN:
        raise HTTPException(
            status.HTTP_409_CONFLICT, detail=f"task {task_id} is {task.status}, not open"
        )
    return task


def _audit_assignment(
    session: Session,
    task: Task,
    *,
    actor: str,
    change: str,
    at: datetime,
    before: str | None,
) -> None:
    append_audit(
        session,
        key=f"task/{task.id}/{change}/{uuid.uuid4().hex}",
        application_no=task.application_no,
        actor=actor,
        action=f"{task.kind}.{change}",
        occurred_at=at,
        detail={
            "task_id": str(task.id),
            "before": {"assignee": before},
            "after": {"assignee": task.assignee},
        },
    )


@router.get("/kinds", response_model=TaskKindsOut)
def task_kinds(_: CurrentUserInfo = require(Action.LIST_TASKS)) -> TaskKindsOut:
    """Any role: every kind of task, who decides it, and for each decision the JSON schema of
    the ``data`` it carries (null: none), so a client can build the decision's form. A
    decision's ``data`` with a key its schema does not name is refused (422)."""
    return TaskKindsOut(
        items=[
            TaskKindOut(
                kind=kind.value,
                candidate_role=rule.candidate_role.value,
                decisions=[
                    DecisionShapeOut(
                        decision=decision,
                        data_schema=shapes_schema(rule.data_shapes(decision)),
                    )
                    for decision in rule.decisions
                ],
            )
            for kind, rule in TASK_RULES.items()
        ]
    )


@router.post("/{task_id}/claim", response_model=TaskOut)
def claim_task(
    task_id: uuid.UUID,
    session: SessionDep,
    clock: ClockDep,
    user: CurrentUserInfo = require(Action.CLAIM_TASK),
) -> TaskOut:
    """The task's candidate role. Claiming a task another person holds is refused (409)."""
    task = _task_for(session, task_id, user)
    if task.assignee not in (None, user.username):
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"claimed by {task.assignee}")
    if task.assignee is None:
        # A conditional update: of two people claiming at the same moment, one wins and the
        # other is told who holds it (the database decides, not the last writer).
        won = session.exec(
            update(Task)
            .where(col(Task.id) == task.id, col(Task.assignee).is_(None))
            .values(assignee=user.username)
        )
        if won.rowcount != 1:
            session.rollback()
            session.refresh(task)
            if task.assignee != user.username:
                raise HTTPException(status.HTTP_409_CONFLICT, detail=f"claimed by {task.assignee}")
            return _out(task, user)
        session.refresh(task)
        _audit_assignment(
            session, task, actor=user.username, change="claimed", at=clock(), before=None
        )
        session.commit()
    return _out(task, user)


@router.post("/{task_id}/unclaim", response_model=TaskOut)
def unclaim_task(
    task_id: uuid.UUID,
    session: SessionDep,
    clock: ClockDep,
    user: CurrentUserInfo = require(Action.CLAIM_TASK),
) -> TaskOut:
    """The person holding the task."""
    task = _task_for(session, task_id, user)
    if task.assignee != user.username:
        raise HTTPException(
            status.HTTP_409_CONFLICT,
            detail="only the person holding the task can release it"
            if task.assignee
            else "the task is not claimed",
        )
    released = session.exec(
        update(Task)
        .where(col(Task.id) == task.id, col(Task.assignee) == user.username)
        .values(assignee=None)
    )
    if released.rowcount != 1:  # released (or reassigned) meanwhile
        session.rollback()
        raise HTTPException(
            status.HTTP_409_CONFLICT, detail="only the person holding the task can release it"
        )
    session.refresh(task)
    _audit_assignment(
        session, task, actor=user.username, change="unclaimed", at=clock(), before=user.username
    )
    session.commit()
    return _out(task, user)


@router.post("/{task_id}/decision", response_model=DecisionOut)
def decide_task(
    task_id: uuid.UUID,
    body: DecisionIn,
    session: SessionDep,
    temporal: TemporalDep,
    settings: SettingsDep,
    clock: ClockDep,
    user: CurrentUserInfo = require(Action.DECIDE_TASK),
) -> DecisionOut:
    """The task's candidate role. The workflow's validator has the last word: wrong task, role,
    decision or maker = checker are refused before anything is recorded. A refusal for the role
    (here or in the workflow) or for maker = checker is itself audited (``four_eyes.refused``)."""
    try:
        task = _task_for(session, task_id, user)
    except HTTPException as exc:
        if exc.status_code == status.HTTP_403_FORBIDDEN:
            refused = session.get(Task, task_id)
            record_four_eyes_refusal(
                session,
                actor=user.username,
                refusal="Forbidden",
                reason=str(exc.detail),
                at=clock(),
                application_no=refused.application_no if refused else None,
                task_id=str(task_id),
                task_kind=refused.kind if refused else None,
                decision=body.decision,
            )
        raise
    if task.assignee not in (None, user.username):
        raise HTTPException(status.HTTP_409_CONFLICT, detail=f"claimed by {task.assignee}")
    rule = TASK_RULES[TaskKind(task.kind)]
    if body.decision not in rule.decisions:
        raise unprocessable(
            "decision", f"must be one of {', '.join(rule.decisions)} for {task.kind}"
        )
    try:
        rule.check_data(task.kind, body.decision, body.data)
    except ValueError as exc:
        raise unprocessable_from(str(exc)) from None
    try:
        result: DecisionResult = update_loan(
            temporal,
            task.application_no,
            DECIDE_UPDATE,
            DecisionRequest(
                task_id=str(task.id),
                decision=body.decision,
                user=user.username,
                roles=user.roles,
                comment=body.comment,
                data=body.data,
                lpr_in_force=_lpr_in_force(session, clock(), settings.business_timezone)
                if task.kind == TaskKind.PRODUCT_MATCHING
                else None,
            ),
            DecisionResult,
            workflow=task.workflow_id,
        )
    except WorkflowRefusal as exc:
        if exc.refusal in FOUR_EYES_REFUSALS:
            # The attempt is refused and changes nothing, but the auditor sees it.
            record_four_eyes_refusal(
                session,
                actor=user.username,
                refusal=exc.refusal,
                reason=exc.reason,
                at=clock(),
                application_no=task.application_no,
                task_id=str(task.id),
                task_kind=task.kind,
                decision=body.decision,
            )
        raise
    return DecisionOut(task_id=result.task_id, stage=result.stage)


def _lpr_in_force(session: Session, now: datetime, tz: str) -> LprRate | None:
    """The one-year LPR in force today (the offer date), for pricing product terms; None when
    the table has none for today (the workflow then refuses the terms, naming why)."""
    try:
        return lpr_table(session.get_bind()).in_force(business_date(now, tz))  # type: ignore[arg-type]
    except LookupError:
        return None
