"""Serializers: parse and validate input, render output. No business rules here."""
