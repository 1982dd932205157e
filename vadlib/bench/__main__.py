"""``python -m vadlib.bench NAME``."""

from vadlib.bench import main

raise SystemExit(main())
