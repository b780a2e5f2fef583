"""The one module that names blob keys: imported data, model artifacts, batch outputs."""

from __future__ import annotations


def dataset_batch_prefix(storage_id: str, origin: str, batch_id: str) -> str:
    """Folder of one import's (or one Put* batch's) Parquet parts."""
    return f"datasets/{storage_id}/{origin.lower()}/{batch_id}/"


def dataset_prefix(storage_id: str) -> str:
    return f"datasets/{storage_id}/"


def model_prefix(storage_id: str) -> str:
    """Folder holding a trained solution version's artifacts (.npy/.npz + model.json)."""
    return f"models/{storage_id}/"


def job_output_prefix(storage_id: str) -> str:
    return f"jobs/{storage_id}/"
