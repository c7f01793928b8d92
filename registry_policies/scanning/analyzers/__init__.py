"""The analyzers a scan runs, in order. Bump ANALYZER_VERSION when what they find changes."""
from registry_policies.scanning.analyzers.apk import ApkAnalyzer
from registry_policies.scanning.analyzers.base import Analyzer
from registry_policies.scanning.analyzers.dpkg import DpkgAnalyzer
from registry_policies.scanning.analyzers.golang import GoBinaryAnalyzer
from registry_policies.scanning.analyzers.java import JavaAnalyzer
from registry_policies.scanning.analyzers.npm import NpmAnalyzer
from registry_policies.scanning.analyzers.python import PythonAnalyzer
from registry_policies.scanning.analyzers.rpm import RpmAnalyzer

ANALYZER_VERSION = "1"


def default_analyzers() -> list[Analyzer]:
    return [DpkgAnalyzer(), ApkAnalyzer(), RpmAnalyzer(), PythonAnalyzer(), NpmAnalyzer(),
            GoBinaryAnalyzer(), JavaAnalyzer()]


__all__ = ["ANALYZER_VERSION", "Analyzer", "default_analyzers"]
