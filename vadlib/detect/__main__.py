"""``python -m vadlib.detect`` = ``vadlib detect``."""

from vadlib.detect.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
