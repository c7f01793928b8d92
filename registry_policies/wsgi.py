"""WSGI entry point (gunicorn gthread serves it; see `manage.py serve`). Registry protocol requests
skip the middleware only pages use (see `core/protocol_handler.py`)."""
import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry_policies.settings")
django.setup(set_prefix=False)

from registry_policies.core.protocol_handler import build_application  # noqa: E402

application = build_application()
