class InvalidVersion(ValueError):
    """A version string that is not valid in its ecosystem's scheme."""
