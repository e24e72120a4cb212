"""Audit actions the inspection report reads (``loanops.inspection``), named once.

Task decisions, escalations and expiries are audited as ``<task kind>.<decision or status>``
(activities/tasks.py); the classification override as ``loan.classification_overridden``
(loanops/classification.py). The actions below are written by the API.
"""

from __future__ import annotations

from typing import Final

# A decision the workflow refused as a four-eyes (maker-checker) or role violation, recorded by
# the API with the refusal type (MakerChecker / Forbidden) and its reason; also the funding
# pool's maker-checker refusal (the requester authorizing their own movement).
FOUR_EYES_REFUSED: Final = "four_eyes.refused"
# The refusal types of the workflows' validators that are recorded as such.
FOUR_EYES_REFUSALS: Final = frozenset({"MakerChecker", "Forbidden"})

# A successful login (the actor is the user).
LOGGED_IN: Final = "auth.login"
# A wrong username or password at login (the actor is the username tried).
LOGIN_FAILED: Final = "auth.login_failed"
# A disabled account tried to log in, or used a token it was issued before it was disabled.
DISABLED_USER_ATTEMPT: Final = "auth.disabled_user_attempt"

# The seam for issue 11 §3: every reveal of a borrower's PII in full is audited with this action
# (actor: the staff member; detail: what was revealed, never the value itself), written by
# api.audit_events.record_pii_reveal; the inspection report counts it per user.
PII_REVEALED: Final = "pii.revealed"

# A payment the loan refused because it no longer takes payments (settling or SETTLED): the
# money is not the loan's and goes back to the payer; its bank reference is released (issue 12
# §2). Detail: the reference, the amount, the reason.
PAYMENT_REFUSED: Final = "payment.refused"

CLASSIFICATION_OVERRIDDEN: Final = "loan.classification_overridden"
