"""The lakehouse on one machine: a capture applied to Delta Lake tables, reconciled with the
source. Nothing here needs the source to build tables: a capture folder describes itself."""
