"""Human-task activities: open, escalate and close the task rows behind the inbox."""

from __future__ import annotations

import uuid

from sqlalchemy import Engine
from temporalio import activity

from activities.records import append_audit, enqueue_notice
from domain.lifecycle import Role, TaskStatus
from loanops.db import session_scope
from models.shapes import CloseTaskInput, EscalateTaskInput, OpenTaskInput
from models.tables import Task


class TaskActivities:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @activity.defn
    def open_task(self, inp: OpenTaskInput) -> None:
        """Insert the task row; a retry finds it by its stable id and does nothing."""
        with session_scope(self.engine) as s:
            if s.get(Task, uuid.UUID(inp.task_id)) is not None:
                return
            s.add(
                Task(
                    id=uuid.UUID(inp.task_id),
                    application_no=inp.application_no,
                    kind=inp.kind,
                    candidate_role=inp.candidate_role,
                    maker=inp.maker,
                    priority=inp.priority,
                    due_at=inp.due_at,
                    expires_at=inp.expires_at,
                    created_at=inp.created_at,
                )
            )
            append_audit(
                s,
                key=f"task/{inp.task_id}/opened",
                application_no=inp.application_no,
                actor="system",
                action=f"{inp.kind}.opened",
                occurred_at=inp.created_at,
                detail={"task_id": inp.task_id, "candidate_role": inp.candidate_role},
            )

    @activity.defn
    def escalate_task(self, inp: EscalateTaskInput) -> None:
        """Raise the priority, tell the department manager, keep the task open."""
        with session_scope(self.engine) as s:
            task = s.get(Task, uuid.UUID(inp.task_id))
            if task is None or task.status != TaskStatus.OPEN:
                return
            key = f"task/{inp.task_id}/escalated/{inp.level}"
            if not append_audit(
                s,
                key=key,
                application_no=inp.application_no,
                actor="system",
                action=f"{inp.kind}.escalated",
                occurred_at=inp.escalated_at,
                detail={"task_id": inp.task_id, "level": inp.level, "priority": inp.priority},
            ):
                return
            task.priority = inp.priority
            task.escalated_at = inp.escalated_at
            task.due_at = inp.next_due_at
            enqueue_notice(
                s,
                key=key,
                application_no=inp.application_no,
                channel="inbox",
                recipient=Role.DEPARTMENT_MANAGER.value,
                template="task_escalated",
                payload={"task_id": inp.task_id, "kind": inp.kind, "level": inp.level},
                created_at=inp.escalated_at,
            )

    @activity.defn
    def close_task(self, inp: CloseTaskInput) -> None:
        """Record the decision (or the cancellation / expiry) and its audit event, once."""
        with session_scope(self.engine) as s:
            task = s.get(Task, uuid.UUID(inp.task_id))
            if task is None or task.status != TaskStatus.OPEN:
                return
            task.status = inp.status
            task.closed_at = inp.closed_at
            task.decision = inp.decision
            task.decided_by = inp.decided_by
            task.comment = inp.comment
            task.data = inp.data
            action = f"{inp.kind}.{inp.decision}" if inp.decision else f"{inp.kind}.{inp.status}"
            append_audit(
                s,
                key=f"task/{inp.task_id}/closed",
                application_no=inp.application_no,
                actor=inp.decided_by or "system",
                action=action,
                occurred_at=inp.closed_at,
                detail={"task_id": inp.task_id, "comment": inp.comment, "data": inp.data},
            )
