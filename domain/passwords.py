"""The password policy for staff accounts: long enough, not the username, not a common password.

Decision (issue 11): length over composition rules (NIST SP 800-63B §5.1.1.2) — at least 12
characters, no forced mix of classes; refused when it contains the username or is on a short
list of the most common passwords (compared case-insensitively, ignoring surrounding spaces).
"""

from __future__ import annotations

MIN_LENGTH = 12
MAX_LENGTH = 256

# The most common passwords of at least 12 characters (public breach lists) and this project's
# own demo password: enough to refuse the obvious; a real deployment may load a longer list.
COMMON_PASSWORDS = frozenset(
    {
        "123456789012",
        "1234567890123",
        "12345678901234",
        "123456789abc",
        "1q2w3e4r5t6y",
        "1qaz2wsx3edc",
        "qwertyuiop12",
        "qwertyuiop123",
        "qwerty123456",
        "qwertyuiopasdf",
        "password1234",
        "password12345",
        "password123456",
        "passwordpassword",
        "p@ssw0rd1234",
        "iloveyou1234",
        "abc123456789",
        "abcdefghijkl",
        "aaaaaaaaaaaa",
        "111111111111",
        "000000000000",
        "administrator",
        "admin1234567",
        "changeme1234",
        "letmein12345",
        "welcome12345",
        "welcome@1234",
        "woaini1314520",
        "5201314520131",
        "demo1234demo1234",
        "loanops12345",
        "loanops123456",
    }
)


def password_problem(password: str, *, username: str) -> str | None:
    """Why ``password`` is refused for ``username`` (None when it is acceptable)."""
    if len(password) < MIN_LENGTH:
        return f"must be at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"must be at most {MAX_LENGTH} characters"
    folded = password.strip().casefold()
    if username and username.casefold() in folded:
        return "must not contain the username"
    if folded in COMMON_PASSWORDS:
        return "is too common"
    if len(set(folded)) < 4:
        return "is too repetitive"
    return None
