"""Apache Spark backend: the heavy data work of a job on a Spark cluster the user already runs.

Selected by `--spark-master URL` / `TASTEMAKER_SPARK_MASTER` (`local[N]`, `spark://host:7077`, `yarn`,
`k8s://...`); pyspark is the optional extra `spark`. Without the setting nothing here is imported.

What runs on Spark: batch inference scoring (tastemaker.spark.batch). The job process stays the Spark driver:
it reads the input lines, looks users up and writes the `.out` files as the local path does, and hands each
large block of plain user lines to Spark, which scores them in partitions on the executors with the model
broadcast to them, through the same scoring code as the local path, so the output lines are identical.
"""
