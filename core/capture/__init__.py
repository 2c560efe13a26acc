"""The DMS capture format both sides stand on: what DMS (or cdc_tail, standing in for it)
writes to S3, and what a lakehouse job reads. The S3 target's settings and file names
(`target`), the types DMS gives columns (`dms_types`), the files' columns, types, writer and
reader (`files`), the capture's record (`record`), and a capture read as a job reads it
(`reader`); on disk or s3:// alike. Replication writes it and the lake reads it; neither
reaches into the other."""
