"""Contract PDF rendering: full render-and-write against layout alone, measured in one run.

    .venv/bin/python bench/contract_pdf.py [rounds]

The baseline is WeasyPrint's layout (``HTML.render()``) of the same contract; the ratio says how
much of a contract's cost is writing the PDF (mostly subsetting the CJK font). With Debian's
libharfbuzz-subset0 installed (scripts/bootstrap.sh does) WeasyPrint subsets with HarfBuzz; without
it, it falls back to fontTools, which is about ten times slower here.
"""

from __future__ import annotations

import logging
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from weasyprint import HTML

from activities.rendering import TEMPLATES_DIR, render_contract_html, render_contract_pdf
from tests.test_rendering import sample_contract


def main() -> None:
    logging.disable(logging.WARNING)
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 5
    ctx = sample_contract()
    html = render_contract_html(ctx)
    render_contract_pdf(ctx)  # warm-up: font discovery, template compilation
    layout, full = [], []
    for _ in range(rounds):
        start = time.perf_counter()
        HTML(string=html, base_url=str(TEMPLATES_DIR)).render()
        layout.append(time.perf_counter() - start)
        start = time.perf_counter()
        render_contract_pdf(ctx)
        full.append(time.perf_counter() - start)
    base, total = statistics.median(layout), statistics.median(full)
    print(f"layout only (baseline)   median {base * 1000:7.1f} ms over {rounds} rounds")
    print(f"render + write PDF       median {total * 1000:7.1f} ms")
    print(f"ratio full / layout      {total / base:7.2f}x")


if __name__ == "__main__":
    main()
