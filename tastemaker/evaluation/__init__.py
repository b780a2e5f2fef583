"""Offline evaluation: Personalize's splits and metric definitions, used by training jobs and bench/."""

from tastemaker.evaluation.evaluate import evaluate_leave_last_out, evaluate_solution, recommend_for_split
from tastemaker.evaluation.metrics import (
    coverage,
    hit_rate_at_k,
    mean_reciprocal_rank,
    ndcg_at_k,
    personalize_metrics,
    precision_at_k,
    segment_metrics,
    top_k,
)
from tastemaker.evaluation.splits import (
    SegmentSplit,
    Split,
    leave_last_out_split,
    personalize_split,
    segmentation_split,
)

__all__ = [
    "SegmentSplit",
    "Split",
    "coverage",
    "evaluate_leave_last_out",
    "evaluate_solution",
    "hit_rate_at_k",
    "leave_last_out_split",
    "mean_reciprocal_rank",
    "ndcg_at_k",
    "personalize_metrics",
    "personalize_split",
    "precision_at_k",
    "recommend_for_split",
    "segment_metrics",
    "segmentation_split",
    "top_k",
]
