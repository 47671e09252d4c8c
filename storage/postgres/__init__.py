"""The archive on PostgreSQL (psycopg 3): connecting with a URL whose password is never shown, and
the migrations of migrations/postgresql; imports only storage's records and errors."""
