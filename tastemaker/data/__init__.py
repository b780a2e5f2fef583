"""Data: schemas, CSV -> validated Parquet, dataset tables, the event append path."""
