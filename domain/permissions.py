"""Who may do what: one matrix of actions × principals, read by every API dependency and every
workflow validator. Nothing else in the code names the roles allowed to act.

Principals are the staff roles of ``domain.lifecycle.Role`` plus three that are not staff: the
borrower (who signs through a signing link), the SMS gateway (its delivery receipts, signed with
a shared secret) and ``PUBLIC`` (no credentials at all). Decisions on
a task are further limited by the task's own candidate role (``domain.tasks.TASK_RULES``): the
matrix says who may decide tasks at all, the task says which one of them.
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from domain.lifecycle import Role

BORROWER = "borrower"
SMS_GATEWAY = "sms_gateway"
# The bank's payment-order callbacks, signed with the shared secret (adapters.bank).
BANK = "bank"
PUBLIC = "public"
# The principals that are not staff (they do not log in).
NOT_STAFF = frozenset({BORROWER, SMS_GATEWAY, BANK, PUBLIC})


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
    # The settlement certificate (结清证明) of a settled loan.
    READ_SETTLEMENT_CERTIFICATE = "read_settlement_certificate"
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
    # The five-category classification of a loan: its history, and the risk manager's override.
    READ_CLASSIFICATION = "read_classification"
    CLASSIFY_LOAN = "classify_loan"
    # The managers' reports: the portfolio (aggregates, no borrower data) and the overdue
    # worklist (loan by loan, borrower names masked).
    READ_PORTFOLIO_REPORT = "read_portfolio_report"
    READ_OVERDUE_REPORT = "read_overdue_report"
    # The borrower's side of the signing link.
    READ_SIGNING = "read_signing"
    REQUEST_SIGNING_CODE = "request_signing_code"
    SIGN_CONTRACT = "sign_contract"
    # The notices of a loan (to staff and to the borrower) and how each was delivered.
    READ_NOTICES = "read_notices"
    # The SMS gateway's delivery receipt.
    RECORD_SMS_RECEIPT = "record_sms_receipt"

    # The product catalog: read it; add products and versions.
    READ_PRODUCTS = "read_products"
    MANAGE_PRODUCTS = "manage_products"
    # The lender's authorized signatory countersigns (seals) a contract the borrower signed.
    SEAL_CONTRACT = "seal_contract"
    # The funding pool: the liquidity report, its movements, and manual top-ups / withdrawals
    # (requested by the department manager, authorized by a second person).
    READ_LIQUIDITY = "read_liquidity"
    LIST_FUNDING_MOVEMENTS = "list_funding_movements"
    REQUEST_FUNDING_MOVEMENT = "request_funding_movement"
    AUTHORIZE_FUNDING_MOVEMENT = "authorize_funding_movement"
    # The bank tells us a payment order changed (payout-v1).
    RECORD_BANK_CALLBACK = "record_bank_callback"
    # The Temporal Web UI's remote codec (api/routes/codec.py): decrypt workflow histories'
    # payloads (loan internals, borrower PII), and encrypt what staff send from the UI.
    DECODE_TEMPORAL_PAYLOADS = "decode_temporal_payloads"
    ENCODE_TEMPORAL_PAYLOADS = "encode_temporal_payloads"
    # A bounced payment's reversal (the maker; a second operations specialist checks it).
    REQUEST_PAYMENT_REVERSAL = "request_payment_reversal"
    # The archive manifest of a settled loan.
    READ_ARCHIVE = "read_archive"
    # Aftercare: a loan's post-loan reviews (with the refreshed bureau report they showed) and
    # its risk flags (raised by follow-up calls).
    READ_POST_LOAN_REVIEWS = "read_post_loan_reviews"
    READ_RISK_FLAGS = "read_risk_flags"
    # The auditor's inspection report: four-eyes refusals, SLA breaches, PII reveals,
    # overrides, failed logins, disabled users' attempts.
    READ_INSPECTION_REPORT = "read_inspection_report"
    # A loan's collections log: every step of the ladder and every contact with the borrower.
    READ_COLLECTIONS = "read_collections"
    # The daily reconciliations of the bank's ledger with the records, and their differences.
    READ_RECONCILIATION = "read_reconciliation"
    # A refresh token for a new access token (authenticated by the refresh token itself).
    REFRESH_TOKEN = "refresh_token"
    # End one's own login (its refresh and access tokens).
    LOGOUT = "logout"
    # Staff accounts: read them; add, disable, enable, change roles, reset passwords.
    LIST_USERS = "list_users"
    MANAGE_USERS = "manage_users"
    # Assign an application to a business officer besides its submitter (e.g. for collection).
    ASSIGN_OFFICER = "assign_officer"
    # Readiness (/readyz): the database, Temporal and a worker all answer (public, like /healthz).
    READINESS = "readiness"


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
    # The contract names the borrower in full (name and identity number): those who prepare,
    # review, disburse or oversee it, not customer service (sees PII masked) nor the product
    # manager (matches terms on the reviewed application).
    Action.READ_CONTRACT: frozenset(
        {
            Role.BUSINESS_OFFICER.value,
            Role.OPERATIONS_SPECIALIST.value,
            Role.RISK_MANAGER.value,
            Role.DEPARTMENT_MANAGER.value,
            Role.AUDITOR.value,
        }
    ),
    # Need to know: operations settles the loan, the business officer and customer service
    # hand the certificate to the borrower, the manager and the auditor oversee; risk and
    # product have no part in a settled loan's papers.
    Action.READ_SETTLEMENT_CERTIFICATE: frozenset(
        {
            Role.OPERATIONS_SPECIALIST.value,
            Role.BUSINESS_OFFICER.value,
            Role.CUSTOMER_SERVICE.value,
            Role.DEPARTMENT_MANAGER.value,
            Role.AUDITOR.value,
        }
    ),
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
    # Need-to-know for classification and reports (issue 10): the department manager oversees
    # the book; the risk manager classifies loans and watches risk (seed §2, §3.6); operations
    # monitor repayments and warn on overdue (seed §3.6); the business officer collects overdue
    # amounts (seed §3.6); the auditor inspects (seed §8) the classification and the aggregate
    # portfolio, not the collection worklist. Customer service gets its calls as tasks, the
    # product manager sees the portfolio by product (seed §2: tracks products' results).
    Action.READ_CLASSIFICATION: frozenset(
        {
            Role.DEPARTMENT_MANAGER.value,
            Role.RISK_MANAGER.value,
            Role.OPERATIONS_SPECIALIST.value,
            Role.BUSINESS_OFFICER.value,
            Role.AUDITOR.value,
        }
    ),
    Action.CLASSIFY_LOAN: frozenset({Role.RISK_MANAGER.value}),
    Action.READ_PORTFOLIO_REPORT: frozenset(
        {
            Role.DEPARTMENT_MANAGER.value,
            Role.RISK_MANAGER.value,
            Role.OPERATIONS_SPECIALIST.value,
            Role.PRODUCT_MANAGER.value,
            Role.AUDITOR.value,
        }
    ),
    # (issue 11: the auditor reads everything, the collection worklist included.)
    Action.READ_OVERDUE_REPORT: frozenset(
        {
            Role.DEPARTMENT_MANAGER.value,
            Role.RISK_MANAGER.value,
            Role.OPERATIONS_SPECIALIST.value,
            Role.BUSINESS_OFFICER.value,
            Role.AUDITOR.value,
        }
    ),
    Action.READ_SIGNING: frozenset({BORROWER}),
    Action.REQUEST_SIGNING_CODE: frozenset({BORROWER}),
    Action.SIGN_CONTRACT: frozenset({BORROWER}),
    # Who answers for what was said to the borrower and when: the officer who deals with them,
    # operations (servicing, reminders), customer service (answers their calls), the manager,
    # and the auditor (collection conduct: contact hours). Not the product or risk manager.
    Action.READ_NOTICES: frozenset(
        {
            Role.BUSINESS_OFFICER.value,
            Role.OPERATIONS_SPECIALIST.value,
            Role.CUSTOMER_SERVICE.value,
            Role.DEPARTMENT_MANAGER.value,
            Role.AUDITOR.value,
        }
    ),
    Action.RECORD_SMS_RECEIPT: frozenset({SMS_GATEWAY}),
    Action.READ_PRODUCTS: _STAFF,
    Action.MANAGE_PRODUCTS: frozenset({Role.PRODUCT_MANAGER.value}),
    # Exactly one staff role: the lender_seal task's candidate (``sole_role``).
    Action.SEAL_CONTRACT: frozenset({Role.DEPARTMENT_MANAGER.value}),
    # Liquidity (seed §4): the manager plans funds, operations pays out, risk watches it; the
    # auditor reads everything (issue 11).
    Action.READ_LIQUIDITY: frozenset(
        {
            Role.DEPARTMENT_MANAGER.value,
            Role.OPERATIONS_SPECIALIST.value,
            Role.RISK_MANAGER.value,
            Role.AUDITOR.value,
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
    Action.RECORD_BANK_CALLBACK: frozenset({BANK}),
    # A decoded history shows every input and result of a loan, PII included: those who
    # investigate a loan's internals (operations repairs stuck loans, risk reviews decisions,
    # the manager oversees, the auditor inspects); not the business officer, customer service
    # or the product manager, who read loans through the API's need-to-know views.
    Action.DECODE_TEMPORAL_PAYLOADS: frozenset(
        {
            Role.DEPARTMENT_MANAGER.value,
            Role.AUDITOR.value,
            Role.OPERATIONS_SPECIALIST.value,
            Role.RISK_MANAGER.value,
        }
    ),
    # Encoding lets the UI send a signal or start a workflow with encrypted input: an
    # operational change, for those who operate loans (the auditor changes nothing, risk reads).
    Action.ENCODE_TEMPORAL_PAYLOADS: frozenset(
        {Role.DEPARTMENT_MANAGER.value, Role.OPERATIONS_SPECIALIST.value}
    ),
    # Operations post payments, so they take a bounced one back out (seed §3.6).
    Action.REQUEST_PAYMENT_REVERSAL: frozenset({Role.OPERATIONS_SPECIALIST.value}),
    # Operations archive the settled loan (seed §3.7); the manager and the auditor oversee.
    Action.READ_ARCHIVE: frozenset(
        {
            Role.OPERATIONS_SPECIALIST.value,
            Role.DEPARTMENT_MANAGER.value,
            Role.AUDITOR.value,
        }
    ),
    # Reviews hold the borrower's refreshed credit report: the risk manager who reviews, the
    # manager and the auditor who oversee (seed §3.6, §8); need-to-know, no one else.
    Action.READ_POST_LOAN_REVIEWS: frozenset(
        {Role.RISK_MANAGER.value, Role.DEPARTMENT_MANAGER.value, Role.AUDITOR.value}
    ),
    # Flags are what follow-up calls found: the risk manager acts on them, the manager and the
    # auditor oversee, and customer service (who raises them) sees every flag of the loan, any
    # colleague's: the next caller must know what the earlier calls found. They carry no
    # identity data.
    Action.READ_RISK_FLAGS: frozenset(
        {
            Role.RISK_MANAGER.value,
            Role.DEPARTMENT_MANAGER.value,
            Role.AUDITOR.value,
            Role.CUSTOMER_SERVICE.value,
        }
    ),
    # Internal supervision (seed §8): the auditor inspects, the department manager answers for
    # the department's conduct. It names staff (who tried what), never borrowers' data.
    Action.READ_INSPECTION_REPORT: frozenset({Role.AUDITOR.value, Role.DEPARTMENT_MANAGER.value}),
    # Those who collect (officer, customer service), monitor repayments (operations), decide
    # on write-off (risk, manager), and the auditor (collection conduct). Not the product manager.
    Action.READ_COLLECTIONS: frozenset(
        {
            Role.BUSINESS_OFFICER.value,
            Role.CUSTOMER_SERVICE.value,
            Role.OPERATIONS_SPECIALIST.value,
            Role.RISK_MANAGER.value,
            Role.DEPARTMENT_MANAGER.value,
            Role.AUDITOR.value,
        }
    ),
    # Reconciliation (issue 9 §6): operations settles the differences, the manager gets the
    # escalated ones, the auditor inspects that money and records agree.
    Action.READ_RECONCILIATION: frozenset(
        {
            Role.OPERATIONS_SPECIALIST.value,
            Role.DEPARTMENT_MANAGER.value,
            Role.AUDITOR.value,
        }
    ),
    Action.REFRESH_TOKEN: frozenset({PUBLIC}),
    Action.LOGOUT: _STAFF,
    # The department manager administers accounts (seed §8: permission management); the
    # auditor inspects who has which roles, and changes nothing.
    Action.LIST_USERS: frozenset({Role.DEPARTMENT_MANAGER.value, Role.AUDITOR.value}),
    Action.MANAGE_USERS: frozenset({Role.DEPARTMENT_MANAGER.value}),
    Action.ASSIGN_OFFICER: frozenset({Role.DEPARTMENT_MANAGER.value}),
    Action.READINESS: frozenset({PUBLIC}),
}


def allowed_principals(action: Action) -> frozenset[str]:
    return MATRIX[action]


def is_allowed(principals: Iterable[str], action: Action) -> bool:
    """True when any of ``principals`` (a user's roles, or BORROWER / SMS_GATEWAY / PUBLIC) may
    do ``action``."""
    allowed = MATRIX[action]
    return PUBLIC in allowed or any(p in allowed for p in principals)


def sole_role(action: Action) -> Role:
    """The one staff role the matrix gives ``action`` (for a task whose candidate is set by the
    matrix, such as the lender's seal); ValueError unless exactly one staff role is named."""
    roles = [Role(p) for p in MATRIX[action] if p in _STAFF]
    if len(roles) != 1:
        raise ValueError(f"{action.value} must be given to exactly one staff role")
    return roles[0]


def refusal(action: Action) -> str:
    """The sentence a 403 carries: which principals may do it."""
    return f"{action.value} requires one of: {', '.join(sorted(MATRIX[action]))}"


# ---- object rules (need to know) -------------------------------------------------------------

# Roles that see only their own applications and loans: those they submitted or are assigned.
# A user with any other role as well sees what that role sees.
OWN_OBJECTS_ONLY = frozenset({Role.BUSINESS_OFFICER.value})


def sees_only_own(roles: Iterable[str]) -> bool:
    """True when every one of ``roles`` is limited to its own objects (a business officer)."""
    held = set(roles)
    return bool(held) and held <= OWN_OBJECTS_ONLY


def may_see_application(
    roles: Iterable[str], username: str, *, submitted_by: str, assigned_officer: str | None
) -> bool:
    """The need-to-know rule on one application, its loan, documents, tasks and notices: a
    business officer only on those they submitted or are assigned to; other staff roles on all
    (what they may do with them is the matrix's)."""
    if not sees_only_own(roles):
        return True
    return username in (submitted_by, assigned_officer)
