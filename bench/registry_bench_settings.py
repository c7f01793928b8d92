"""Settings for one variant in bench/registry_bench.py: the product's settings plus persistent
SQLite connections (CONN_MAX_AGE), to show what opening a SQLite connection per request costs."""
from registry_policies.settings import *  # noqa: F403

DATABASES["default"]["CONN_MAX_AGE"] = 600  # noqa: F405
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True  # noqa: F405
