"""The benchmark's metrics on the paper's Table 1 scales, one module per metric.

clip_models.py embeds images and texts; clip_score.py (CLIP score, CLIP-S), pickscore.py
(PickScore and preference) and fid.py with fid_features.py score them; report.py runs
them all over a generation manifest and report_render.py writes the tables and JSON.
"""
