"""Demo users, one per role (and a second operations specialist for four-eyes steps)."""

from __future__ import annotations

from sqlalchemy import Engine
from sqlmodel import select

from domain.lifecycle import Role
from loanops.db import session_scope
from loanops.security import hash_password
from models.tables import User

DEMO_USERS: tuple[tuple[str, str, Role], ...] = (
    ("officer", "王业务 (business officer)", Role.BUSINESS_OFFICER),
    ("ops", "李运营 (operations specialist)", Role.OPERATIONS_SPECIALIST),
    ("ops2", "赵运营 (operations specialist)", Role.OPERATIONS_SPECIALIST),
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
