"""The /v2/ views, one module per resource."""
