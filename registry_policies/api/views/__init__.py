"""API views: parse the request, call one service, render. Access comes from `lookups`."""
