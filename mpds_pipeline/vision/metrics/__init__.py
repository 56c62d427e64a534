"""The benchmark's metrics on the paper's Table 1 scales, one module per metric.

clip_models.py embeds images and texts; clip_score.py (CLIP score, CLIP-S), pickscore.py
(PickScore and preference) and fid.py with fid_features.py score them; report.py runs
them all over a generation manifest and report_render.py writes the tables and JSON.
"""

# defs/assets/generation.py imports these three from the package; it is being shortened
# by another change, after which it can import them from report.py / fid.py and these go.
from .fid import ResizeMethod
from .report import BenchmarkReportSettings, benchmark_report

__all__ = ["BenchmarkReportSettings", "ResizeMethod", "benchmark_report"]
