"""``python -m stages <stage> [args]``: the same as the ``amc`` console command."""

from stages._cli import console

console()
