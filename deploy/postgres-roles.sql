-- The database's two roles, created once by a PostgreSQL superuser:
--   psql -v ON_ERROR_STOP=1 -v db=nscl -v owner=nscl_owner -v owner_password=... \
--        -v app=nscl_app -v app_password=... -f deploy/postgres-roles.sql
-- The owner owns the schema and runs `nscl db upgrade` (NSCL_MIGRATION_DATABASE_URL). The
-- service role (NSCL_DATABASE_URL) owns nothing and is not a superuser, so it cannot switch
-- off the triggers that keep the audit trail append-only; `nscl db upgrade` grants it what
-- the API and the worker need.
CREATE ROLE :"owner" LOGIN PASSWORD :'owner_password'
    NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
CREATE ROLE :"app" LOGIN PASSWORD :'app_password'
    NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS;
ALTER DATABASE :"db" OWNER TO :"owner";
REVOKE ALL ON DATABASE :"db" FROM PUBLIC;
GRANT CONNECT, TEMPORARY ON DATABASE :"db" TO :"app";
\connect :"db"
ALTER SCHEMA public OWNER TO :"owner";
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
