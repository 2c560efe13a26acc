#!/bin/sh
# Runs once, when the compose postgres service initialises its volume.
set -eu
# Our CDC settings (wal_level=logical, slots, senders, ...) apply from the server's next start,
# which the image's entrypoint does right after the init scripts.
echo "include '/etc/postgresql/lakehouse.conf'" >> "$PGDATA/postgresql.conf"
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
ALTER ROLE "$POSTGRES_USER" WITH REPLICATION;
SQL
