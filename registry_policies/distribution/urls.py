"""The registry protocol (/v2/) and its token endpoint (/auth/token)."""
from django.urls import path

urlpatterns: list = []
