"""``python -m vadlib.bench NAME``."""

from vadlib.bench import main
from vadlib.errors import cli_errors

raise SystemExit(cli_errors(main)())
