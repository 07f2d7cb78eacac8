-- The session behind pg15-streaming.txt: pgoutput protocol 2 with
-- streaming on PostgreSQL 15, decoded with logical_decoding_work_mem at
-- its minimum (64kB) so that the large transactions below are streamed
-- before they commit. To redo it, in a scratch database:
--   psql -v ON_ERROR_STOP=1 -f streaming.sql
--   PGOPTIONS='-c logical_decoding_work_mem=64kB' psql -Atc "SELECT lsn || ' ' || encode(data, 'hex')
--     FROM pg_logical_slot_peek_binary_changes('pgs', NULL, NULL, 'proto_version', '2',
--     'publication_names', 'pg2kinesis', 'streaming', 'on')" > pg15-streaming.txt
--   SELECT pg_drop_replication_slot('pgs'); DROP PUBLICATION pg2kinesis;
-- and run go test -update.
CREATE TABLE big (id integer PRIMARY KEY, pad text);
CREATE PUBLICATION pg2kinesis FOR ALL TABLES;
SELECT 'slot' FROM pg_create_logical_replication_slot('pgs', 'pgoutput');
-- committed: streamed, then committed
INSERT INTO big SELECT i, repeat('x', 100) FROM generate_series(1, 600) i;
-- aborted after streaming: publishes nothing
BEGIN;
INSERT INTO big SELECT i, repeat('a', 100) FROM generate_series(1001, 1600) i;
ROLLBACK;
-- a subtransaction rolled back inside a streamed transaction
BEGIN;
INSERT INTO big SELECT i, repeat('k', 100) FROM generate_series(2001, 2300) i;
SAVEPOINT s1;
INSERT INTO big SELECT i, repeat('r', 100) FROM generate_series(2501, 3100) i;
ROLLBACK TO s1;
INSERT INTO big VALUES (3501, 'after');
ALTER TABLE big ADD COLUMN extra integer;
INSERT INTO big SELECT i, repeat('z', 100), i FROM generate_series(3502, 3800) i;
COMMIT;
-- a small transaction after them
INSERT INTO big VALUES (4001, 'small');
