"""The API process names workflows by string: importing it loads no workflow or activity code,
and not WeasyPrint (which the contract activity needs and the API does not)."""

from __future__ import annotations

import json
import subprocess
import sys


def test_importing_the_api_loads_no_workflow_activity_or_renderer() -> None:
    code = (
        "import json, sys; import api.app; api.app.create_app(); "
        "print(json.dumps(sorted(m for m in sys.modules "
        "if m.split('.')[0] in ('workflows', 'activities', 'weasyprint', 'worker'))))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=120
    )
    assert json.loads(out.stdout.strip().splitlines()[-1]) == []
