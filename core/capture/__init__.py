"""The DMS capture format both sides stand on: what DMS (or cdc_tail, standing in for it)
writes to S3, and what a lakehouse job reads. The S3 target's settings and file names
(`target`), the tables' columns and types (`schema`), the files' columns, types, writer and
reader (`files`), the capture's record (`record`), and a capture read as a job reads it
(`reader`); on disk or s3:// alike. Replication writes it and the lake reads it; neither
reaches into the other."""

SCHEMA = "public"  # the source schema, and the first folder of every file's key
