"""``python -m loanops``: the same as the ``loanops`` command."""

from loanops.cli import main

main()
