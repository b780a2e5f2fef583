"""The one module that names blob keys: imported data, model artifacts, batch outputs."""

from __future__ import annotations


def dataset_batch_prefix(storage_id: str, origin: str, batch_id: str) -> str:
    """Folder of one import's (or one Put* batch's) Parquet parts."""
    return f"datasets/{storage_id}/{origin.lower()}/{batch_id}/"


def dataset_part_key(batch_prefix: str, number: int) -> str:
    """The `number`-th Parquet part of a batch written by a job itself (a data deletion job's rewritten parts)."""
    return f"{batch_prefix}{number:05d}.parquet"


def dataset_prefix(storage_id: str) -> str:
    return f"datasets/{storage_id}/"


def model_prefix(storage_id: str) -> str:
    """Folder holding a trained solution version's artifacts (.npy/.npz + model.json)."""
    return f"models/{storage_id}/"


def model_attempt_prefix(storage_id: str, job_id: int, lease: int) -> str:
    """The artifacts of one claim of a training job, inside the version's folder: a writer that lost its lease
    never touches the folder of the claim that won (the version's model_prefix names the winner)."""
    return f"{model_prefix(storage_id)}j{job_id}.{lease}/"


def training_checkpoint_prefix(storage_id: str) -> str:
    """A solution version's training checkpoints, inside its folder (so deleting the version removes them):
    written while it trains, read by a later claim to resume, removed when the version finishes."""
    return f"{model_prefix(storage_id)}checkpoints/"


def job_output_prefix(storage_id: str) -> str:
    return f"jobs/{storage_id}/"
