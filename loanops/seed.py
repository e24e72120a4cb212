"""Demo users, one per role (and two more operations specialists for four-eyes steps), and the
demo funding pool with its opening balance."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from sqlalchemy import Engine
from sqlmodel import Session, select

from domain.lifecycle import Role
from loanops.db import session_scope
from loanops.security import hash_password
from models.tables import User

DEMO_USERS: tuple[tuple[str, str, Role], ...] = (
    ("officer", "王业务 (business officer)", Role.BUSINESS_OFFICER),
    ("ops", "李运营 (operations specialist)", Role.OPERATIONS_SPECIALIST),
    ("ops2", "赵运营 (operations specialist)", Role.OPERATIONS_SPECIALIST),
    # The payout's checker: neither the intake reviewer (ops) nor the maker (ops2).
    ("ops3", "钱运营 (operations specialist)", Role.OPERATIONS_SPECIALIST),
    ("risk", "陈风控 (risk manager)", Role.RISK_MANAGER),
    ("product", "刘产品 (product manager)", Role.PRODUCT_MANAGER),
    ("cs", "周客服 (customer service)", Role.CUSTOMER_SERVICE),
    ("manager", "孙经理 (department manager)", Role.DEPARTMENT_MANAGER),
    ("auditor", "吴审计 (auditor)", Role.AUDITOR),
)


def seed_demo_users(
    engine: Engine, *, password: str, password_hash: str | None = None
) -> list[str]:
    """Create the demo users that do not exist yet; returns the usernames created.
    ``password_hash`` (of ``password``) saves the argon2 work when it is already known."""
    created: list[str] = []
    hashed = password_hash or hash_password(password)
    with session_scope(engine) as s:
        existing = set(s.exec(select(User.username)).all())
        for username, full_name, role in DEMO_USERS:
            if username in existing:
                continue
            s.add(
                User(
                    username=username, full_name=full_name, roles=[role.value], password_hash=hashed
                )
            )
            created.append(username)
    return created


DEMO_POOL_OPENING_BALANCE = Decimal("5000000.00")


def seed_demo_pool(
    engine: Engine, *, account_no: str, amount: Decimal = DEMO_POOL_OPENING_BALANCE
) -> bool:
    """Open the funding pool with the demo opening balance (¥5,000,000) unless it has one;
    True when it was opened now."""
    from models.funding import open_with_balance

    with Session(engine, expire_on_commit=False) as s:
        return open_with_balance(
            s, account_no=account_no, amount=amount, actor="system", at=datetime.now(UTC)
        )
