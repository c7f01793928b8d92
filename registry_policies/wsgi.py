"""WSGI entry point (gunicorn gthread serves it; see `manage.py serve`)."""
import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "registry_policies.settings")

application = get_wsgi_application()
