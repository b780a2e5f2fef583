"""The job-task registry: every job kind the queue carries and the function that runs it, in one table.

The runner (tastemaker.jobs.worker) knows no task; the tasks live in the layer whose work they do: imports,
training and recommenders in `jobs`, campaign deployment in `serving` (it loads models as serving will).
Neither imports the other; this module, beside the rest of the wiring, joins them.
"""

from __future__ import annotations

from functools import partial

from tastemaker.jobs import data_deletion, export, recommender_tasks, segments, tasks, training
from tastemaker.jobs.worker import Tasks, TaskSpec
from tastemaker.serving import batch, deploy
from tastemaker.store.queue import JobKind
from tastemaker.store.status import Status

TASKS: Tasks = {
    JobKind.ACTIVATE: TaskSpec(tasks.activate),
    JobKind.DELETE: TaskSpec(tasks.delete, failed_status=Status.DELETE_FAILED),
    JobKind.IMPORT: TaskSpec(tasks.import_dataset),
    JobKind.TRAIN: TaskSpec(training.train_solution_version, stopped_status=Status.CREATE_STOPPED),
    JobKind.CAMPAIGN_DEPLOY: TaskSpec(deploy.deploy_campaign, warm=deploy.warm_kernels),
    JobKind.CAMPAIGN_UPDATE: TaskSpec(deploy.update_campaign, update_record="latest_campaign_update",
                                      warm=deploy.warm_kernels),
    JobKind.RECOMMENDER_TRAIN: TaskSpec(partial(recommender_tasks.train_recommender, prepare=deploy.preload_prefix)),
    JobKind.RECOMMENDER_UPDATE: TaskSpec(partial(recommender_tasks.update_recommender, prepare=deploy.preload_prefix),
                                   update_record="latest_recommender_update"),
    JobKind.RECOMMENDER_STOP: TaskSpec(recommender_tasks.stop_recommender, failed_status=Status.ACTIVE),
    JobKind.RECOMMENDER_START: TaskSpec(partial(recommender_tasks.start_recommender, prepare=deploy.preload_prefix),
                                  failed_status=Status.INACTIVE),
    JobKind.BATCH_INFERENCE: TaskSpec(batch.run_batch_inference, stopped_status=Status.CREATE_FAILED),
    JobKind.BATCH_SEGMENT: TaskSpec(segments.run_batch_segment, stopped_status=Status.CREATE_FAILED),
    JobKind.DATASET_EXPORT: TaskSpec(export.export_dataset, stopped_status=Status.CREATE_FAILED),
    JobKind.DATA_DELETION: TaskSpec(data_deletion.delete_users, failed_status=Status.FAILED),
    JobKind.RECOMMENDER_DELETE: TaskSpec(recommender_tasks.delete_recommender, failed_status=Status.DELETE_FAILED),
}
