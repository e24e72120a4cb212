"""Who may do what: one matrix of actions × principals, read by every API dependency and every
workflow validator. Nothing else in the code names the roles allowed to act.

Principals are the staff roles of ``domain.lifecycle.Role`` plus two that are not staff: the
borrower (who signs through a signing link) and ``PUBLIC`` (no credentials at all). Decisions on
a task are further limited by the task's own candidate role (``domain.tasks.TASK_RULES``): the
matrix says who may decide tasks at all, the task says which one of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from domain.lifecycle import Role

BORROWER = "borrower"
PUBLIC = "public"


class Action(StrEnum):
    AUTHENTICATE = "authenticate"
    READ_SELF = "read_self"
    HEALTH = "health"
    SUBMIT_APPLICATION = "submit_application"
    LIST_LOANS = "list_loans"
    READ_LOAN = "read_loan"
    # The application as the reviewers see it: data, checks, bureau summary, score.
    READ_APPLICATION = "read_application"
    READ_TIMELINE = "read_timeline"
    READ_CONTRACT = "read_contract"
    QUOTE_SCHEDULE = "quote_schedule"
    QUOTE_PAYOFF = "quote_payoff"
    POST_PAYMENT = "post_payment"
    WITHDRAW = "withdraw"
    LIST_TASKS = "list_tasks"
    # Sees every open task, not only those of the caller's roles.
    OVERSEE_TASKS = "oversee_tasks"
    CLAIM_TASK = "claim_task"
    DECIDE_TASK = "decide_task"
    # Sees borrowers' names and identifiers unmasked.
    READ_BORROWER_PII = "read_borrower_pii"
    # Documents of an application (ID card, income proof...): attach one, list them, fetch one.
    UPLOAD_DOCUMENT = "upload_document"
    LIST_DOCUMENTS = "list_documents"
    DOWNLOAD_DOCUMENT = "download_document"
    # The borrower's side of the signing link.
    READ_SIGNING = "read_signing"
    SIGN_CONTRACT = "sign_contract"
    # The funding pool: the liquidity report, its movements, and manual top-ups / withdrawals
    # (requested by the department manager, authorized by a second person).
    READ_LIQUIDITY = "read_liquidity"
    LIST_FUNDING_MOVEMENTS = "list_funding_movements"
    REQUEST_FUNDING_MOVEMENT = "request_funding_movement"
    AUTHORIZE_FUNDING_MOVEMENT = "authorize_funding_movement"


_STAFF = frozenset(r.value for r in Role)
_DECIDERS = frozenset(
    {
        Role.BUSINESS_OFFICER.value,
        Role.OPERATIONS_SPECIALIST.value,
        Role.RISK_MANAGER.value,
        Role.PRODUCT_MANAGER.value,
        Role.CUSTOMER_SERVICE.value,
        Role.DEPARTMENT_MANAGER.value,
    }
)

MATRIX: dict[Action, frozenset[str]] = {
    Action.AUTHENTICATE: frozenset({PUBLIC}),
    Action.HEALTH: frozenset({PUBLIC}),
    Action.READ_SELF: _STAFF,
    Action.SUBMIT_APPLICATION: frozenset({Role.BUSINESS_OFFICER.value}),
    Action.LIST_LOANS: _STAFF,
    Action.READ_LOAN: _STAFF,
    Action.READ_APPLICATION: _STAFF,
    Action.READ_TIMELINE: _STAFF,
    Action.READ_CONTRACT: _STAFF,
    Action.QUOTE_SCHEDULE: _STAFF,
    Action.QUOTE_PAYOFF: _STAFF,
    Action.POST_PAYMENT: frozenset({Role.OPERATIONS_SPECIALIST.value}),
    Action.WITHDRAW: frozenset({Role.BUSINESS_OFFICER.value, Role.DEPARTMENT_MANAGER.value}),
    Action.LIST_TASKS: _STAFF,
    Action.OVERSEE_TASKS: frozenset({Role.DEPARTMENT_MANAGER.value, Role.AUDITOR.value}),
    Action.CLAIM_TASK: _DECIDERS,
    Action.DECIDE_TASK: _DECIDERS,
    Action.READ_BORROWER_PII: _STAFF - {Role.CUSTOMER_SERVICE.value},
    # The officer who collects the papers attaches them.
    Action.UPLOAD_DOCUMENT: frozenset({Role.BUSINESS_OFFICER.value}),
    # Everyone who sees the application sees which papers it has (no contents).
    Action.LIST_DOCUMENTS: _STAFF,
    # The contents (ID card images, bank statements) only for those who collect, review or
    # oversee them: not customer service (answers borrowers, no need for ID images) nor the
    # product manager (matches terms on the reviewed application).
    Action.DOWNLOAD_DOCUMENT: frozenset(
        {
            Role.BUSINESS_OFFICER.value,
            Role.OPERATIONS_SPECIALIST.value,
            Role.RISK_MANAGER.value,
            Role.DEPARTMENT_MANAGER.value,
            Role.AUDITOR.value,
        }
    ),
    Action.READ_SIGNING: frozenset({BORROWER}),
    Action.SIGN_CONTRACT: frozenset({BORROWER}),
    # Liquidity (seed §4): the manager plans funds, operations pays out, risk watches it.
    Action.READ_LIQUIDITY: frozenset(
        {
            Role.DEPARTMENT_MANAGER.value,
            Role.OPERATIONS_SPECIALIST.value,
            Role.RISK_MANAGER.value,
        }
    ),
    Action.LIST_FUNDING_MOVEMENTS: frozenset(
        {
            Role.DEPARTMENT_MANAGER.value,
            Role.OPERATIONS_SPECIALIST.value,
            Role.RISK_MANAGER.value,
            Role.AUDITOR.value,
        }
    ),
    Action.REQUEST_FUNDING_MOVEMENT: frozenset({Role.DEPARTMENT_MANAGER.value}),
    # The checker: another department manager, or the risk manager (liquidity risk is theirs);
    # never the requester (models.funding.authorize_movement).
    Action.AUTHORIZE_FUNDING_MOVEMENT: frozenset(
        {Role.DEPARTMENT_MANAGER.value, Role.RISK_MANAGER.value}
    ),
}


def allowed_principals(action: Action) -> frozenset[str]:
    return MATRIX[action]


def is_allowed(principals: Iterable[str], action: Action) -> bool:
    """True when any of ``principals`` (a user's roles, or BORROWER / PUBLIC) may do ``action``."""
    allowed = MATRIX[action]
    return PUBLIC in allowed or any(p in allowed for p in principals)


def refusal(action: Action) -> str:
    """The sentence a 403 carries: which principals may do it."""
    return f"{action.value} requires one of: {', '.join(sorted(MATRIX[action]))}"
