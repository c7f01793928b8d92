"""The one exception of the scanning pipeline."""


class ScanError(Exception):
    """A scan cannot finish; `reason` is shown to users as is (names the digest or path at fault)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason
