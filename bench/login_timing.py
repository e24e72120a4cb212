"""Login timing: a known username with a wrong password against an unknown username, through
the real login route, measured in one run and reported as a RATIO (never a timed test).

    .venv/bin/python bench/login_timing.py [rounds]

Before issue 11 a known username answered in ~333 ms (an argon2 verification) and an unknown one
in ~2 ms (ratio ~150): anyone could list the staff's usernames. Now an unknown username is
verified against a dummy argon2 hash of the same parameters, so the ratio is ~1. Rounds alternate
the two kinds, each on its own username so the lockout (5 failures) never interferes; the
medians are compared. Exits 1 when the ratio leaves [0.67, 1.5].
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from fastapi.testclient import TestClient
from sqlmodel import Session

from api.app import create_app
from loanops.db import make_engine
from loanops.migrate import upgrade
from loanops.security import hash_password
from loanops.settings import Settings
from models.tables import User


def main(rounds: int) -> int:
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{Path(tmp) / 'bench.db'}"
        upgrade(url)
        engine = make_engine(url)
        password_hash = hash_password("the real password, long")
        with Session(engine) as s:
            for i in range(rounds):
                s.add(
                    User(
                        username=f"staff{i}",
                        full_name="bench",
                        roles=["auditor"],
                        password_hash=password_hash,
                    )
                )
            s.commit()
        settings = Settings(
            environment="test",
            database_url=url,
            temporal_address="127.0.0.1:9",
            key_dir=Path(tmp) / "keys",
            # The verification is measured, not the per-address throttle (one client here).
            login_max_failures_per_address=0,
        )
        known: list[float] = []
        unknown: list[float] = []
        with TestClient(create_app(settings, engine=engine)) as http:

            def timed(username: str) -> float:
                start = time.perf_counter()
                r = http.post(
                    "/api/v1/auth/token", data={"username": username, "password": "wrong guess"}
                )
                elapsed = time.perf_counter() - start
                assert r.status_code == 401, r.text
                return elapsed

            timed("warm-up")  # the dummy hash is made once, on first use
            for i in range(rounds):
                known.append(timed(f"staff{i}"))
                unknown.append(timed(f"nobody{i}"))
        engine.dispose()
    k, u = statistics.median(known), statistics.median(unknown)
    ratio = k / u
    print(f"known username, wrong password : median {k * 1000:7.1f} ms over {rounds}")
    print(f"unknown username               : median {u * 1000:7.1f} ms over {rounds}")
    print(f"ratio known / unknown          : {ratio:.2f}  (1.00 = indistinguishable)")
    return 0 if 0.67 <= ratio <= 1.5 else 1


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 20))
