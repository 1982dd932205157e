"""vadlib — a reproducible research toolkit for video anomaly detection and recognition.

The package is small on purpose: ``data`` (datasets and readers), ``features`` (CLIP
backbone, extractor, feature store), ``models`` (one module per method), ``metrics``,
``scoring`` (smoothing, normalisation, fusion), ``report`` (figures, tables, page).
"""

from vadlib.errors import VadlibError, DataError, ConfigError

__all__ = ["VadlibError", "DataError", "ConfigError", "__version__"]
__version__ = "0.1.0"
