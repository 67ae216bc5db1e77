#!/bin/sh
# Run by the postgres image on its first start (/docker-entrypoint-initdb.d): create the
# schema's owner and the service role from deploy/postgres-roles.sql.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
    -v db="$POSTGRES_DB" \
    -v owner=nscl_owner -v owner_password="$NSCL_OWNER_PASSWORD" \
    -v app=nscl_app -v app_password="$NSCL_APP_PASSWORD" \
    -f /nscl/postgres-roles.sql
