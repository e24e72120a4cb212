"""Human-task activities: open, escalate and close the task rows behind the inbox."""

from __future__ import annotations

import uuid

from sqlalchemy import Engine
from temporalio import activity

from activities.records import append_audit, enqueue_notice
from domain.lifecycle import Role
from domain.tasks import TaskStatus
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
                    kind=inp.kind.value,
                    candidate_role=inp.candidate_role.value,
                    maker=inp.excluded[0] if inp.excluded else None,
                    excluded=list(inp.excluded),
                    context=inp.context,
                    priority=inp.priority,
                    due_at=inp.due_at,
                    expires_at=inp.expires_at,
                    policy_version=inp.policy_version,
                    created_at=inp.created_at,
                    workflow_id=inp.workflow_id,
                )
            )
            append_audit(
                s,
                key=f"task/{inp.task_id}/opened",
                application_no=inp.application_no,
                actor="system",
                action=f"{inp.kind.value}.opened",
                occurred_at=inp.created_at,
                detail={
                    "task_id": inp.task_id,
                    "candidate_role": inp.candidate_role.value,
                    "policy_version": inp.policy_version,
                },
            )

    @activity.defn
    def escalate_task(self, inp: EscalateTaskInput) -> None:
        """Raise the priority, tell the department manager, keep the task open; at the last
        level the task may pass to another role (``handed_to``)."""
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
                action=f"{inp.kind.value}.handed_over"
                if inp.handed_to
                else f"{inp.kind.value}.escalated",
                occurred_at=inp.escalated_at,
                detail={
                    "task_id": inp.task_id,
                    "level": inp.level,
                    "priority": inp.priority,
                    "handed_to": inp.handed_to.value if inp.handed_to else None,
                },
            ):
                return
            if inp.handed_to is not None:
                task.candidate_role = inp.handed_to.value
                task.assignee = None
            task.escalation_level = inp.level
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
                payload={
                    "task_id": inp.task_id,
                    "kind": inp.kind.value,
                    "level": inp.level,
                    "handed_to": inp.handed_to.value if inp.handed_to else None,
                },
                created_at=inp.escalated_at,
            )

    @activity.defn
    def close_task(self, inp: CloseTaskInput) -> None:
        """Record the decision (or the cancellation / expiry) and its audit event, once."""
        with session_scope(self.engine) as s:
            task = s.get(Task, uuid.UUID(inp.task_id))
            if task is None or task.status != TaskStatus.OPEN:
                return
            before = {"status": task.status, "assignee": task.assignee}
            task.status = inp.status.value
            task.closed_at = inp.closed_at
            task.decision = inp.decision
            task.decided_by = inp.decided_by
            task.comment = inp.comment
            task.data = inp.data
            action = (
                f"{inp.kind.value}.{inp.decision}"
                if inp.decision
                else f"{inp.kind.value}.{inp.status.value}"
            )
            append_audit(
                s,
                key=f"task/{inp.task_id}/closed",
                application_no=inp.application_no,
                actor=inp.decided_by or "system",
                action=action,
                occurred_at=inp.closed_at,
                detail={
                    "task_id": inp.task_id,
                    "comment": inp.comment,
                    "data": inp.data,
                    "policy_version": inp.policy_version,
                    "before": before,
                    "after": {"status": task.status, "decision": task.decision},
                },
            )
