-- The session behind pg15.txt: pgoutput (protocol 1) on PostgreSQL 15.
-- The same workload as ../../wal2json/testdata/workload.sql where pgoutput
-- allows it. To redo it, in a scratch database:
--   psql -v ON_ERROR_STOP=1 -f workload.sql
--   (wait for the WAL flush when synchronous_commit is off), then
--   psql -Atc "SELECT lsn || ' ' || encode(data, 'hex') FROM
--     pg_logical_slot_peek_binary_changes('pgo', NULL, NULL, 'proto_version', '1',
--     'publication_names', 'pg2kinesis', 'messages', 'true')" > pg15.txt
--   SELECT pg_drop_replication_slot('pgo'); DROP PUBLICATION pg2kinesis;
-- and run go test -update.
SET TimeZone = 'UTC';
CREATE SCHEMA "Sales Dept";
CREATE TYPE mood AS ENUM ('happy', 'sad');
CREATE TYPE "Odd ""Type""" AS ENUM ('x');
CREATE TYPE "Sales Dept"."Status" AS ENUM ('open', 'closed');
CREATE DOMAIN posint AS integer CHECK (VALUE > 0);
CREATE TABLE orders (code varchar(32) PRIMARY KEY, n integer, total numeric(12,2));
CREATE TABLE kinds (id bigserial PRIMARY KEY, u uuid, t text, b boolean, j json, jb jsonb, raw bytea,
  ia integer[], ta text[], ts timestamptz, f8 double precision, f4 real, num numeric, i2 smallint, o oid,
  m mood, d posint, iv interval, c char(3), money money, bits bit varying(8), pt point);
CREATE TABLE composite (a integer, b text, v text, PRIMARY KEY (a, b));
CREATE TABLE full_ident (id integer PRIMARY KEY, name text, note text);
ALTER TABLE full_ident REPLICA IDENTITY FULL;
CREATE TABLE nokey (x integer, y text);
CREATE TABLE nokey_full (x integer, y text);
ALTER TABLE nokey_full REPLICA IDENTITY FULL;
CREATE TABLE toasty (id integer PRIMARY KEY, big text, small text);
CREATE TABLE toast_full (id integer PRIMARY KEY, big text, small text);
ALTER TABLE toast_full REPLICA IDENTITY FULL;
CREATE TABLE "Sales Dept"."Order ""Items""" ("Order Id" integer PRIMARY KEY, "Qty" integer, "odd,name" text,
  "Status" "Sales Dept"."Status", w "Odd ""Type""", wa "Odd ""Type"""[]);
CREATE TABLE "Ünïcode" ("ключ" integer PRIMARY KEY, "Mixed Case" text, "tab	col" text);
CREATE TABLE nocols ();
CREATE TABLE t1 (id serial PRIMARY KEY);
CREATE TABLE t2 (id serial PRIMARY KEY);
CREATE TABLE parted (id integer PRIMARY KEY, k text) PARTITION BY RANGE (id);
CREATE TABLE parted_1 PARTITION OF parted FOR VALUES FROM (0) TO (100);
CREATE TABLE uidx (id integer NOT NULL, k text NOT NULL, v text);
CREATE UNIQUE INDEX uidx_k ON uidx (k);
ALTER TABLE uidx REPLICA IDENTITY USING INDEX uidx_k;
CREATE TABLE nothing_ident (id integer PRIMARY KEY, v text);
ALTER TABLE nothing_ident REPLICA IDENTITY NOTHING;
CREATE TABLE grows (id integer PRIMARY KEY, a text);
CREATE PUBLICATION pg2kinesis FOR ALL TABLES;
SELECT 'slot' FROM pg_create_logical_replication_slot('pgo', 'pgoutput');

-- a typical row
INSERT INTO orders VALUES ('A-7', 3, 12.50);
-- many types, four rows in one transaction
BEGIN;
INSERT INTO kinds (u, t, b, j, jb, raw, ia, ta, ts, f8, f4, num, i2, o, m, d, iv, c, money, bits, pt)
VALUES ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', E'quote " backslash \\ newline \n tab \t ctl \x01 Zoë 😀 € \u2028',
  true, '{"k": [1, 2]}', '{"k": [1, 2], "s": "x\"y"}', E'\\xdeadbeef00', '{1,2,NULL}', '{"a b","c\"d",NULL}',
  '2025-06-30 12:00:00.5+02', 'NaN', '-Infinity', 'NaN', -32768, 4294967295, 'sad', 5, '1 day 02:03:04', 'ab',
  12.34, B'101', '(1.5,2)');
INSERT INTO kinds (t, f8, f4, num) VALUES ('', 1e300, 1.5e-7, 0.00);
INSERT INTO kinds (f8, num) VALUES ('Infinity', 'Infinity');
INSERT INTO kinds (f8, num) VALUES (-1.25e-300, '-Infinity');
COMMIT;
-- composite key: update of a non-key column, of a key column, delete
INSERT INTO composite VALUES (1, 'a', 'v1');
UPDATE composite SET v = 'v2' WHERE a = 1;
UPDATE composite SET b = 'b' WHERE a = 1;
DELETE FROM composite WHERE a = 1;
-- REPLICA IDENTITY FULL: the identity is the whole old row
INSERT INTO full_ident VALUES (1, 'one', NULL);
UPDATE full_ident SET name = 'uno' WHERE id = 1;
DELETE FROM full_ident WHERE id = 1;
-- no key: inserts flow; Postgres itself refuses updates and deletes of a
-- table without a replica identity in a publication that publishes them
INSERT INTO nokey VALUES (1, 'x');
-- REPLICA IDENTITY NOTHING: the same, though the table has a primary key
INSERT INTO nothing_ident VALUES (1, 'n');
INSERT INTO nokey_full VALUES (1, 'x');
UPDATE nokey_full SET y = 'z';
DELETE FROM nokey_full;
-- TOAST: an unchanged TOASTed column is left out of "columns"
INSERT INTO toasty SELECT 1, (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 200) i), 's1';
UPDATE toasty SET small = 's2' WHERE id = 1;
UPDATE toasty SET id = 2 WHERE id = 1;
DELETE FROM toasty;
INSERT INTO toast_full SELECT 1, (SELECT string_agg(md5(i::text), '') FROM generate_series(1, 200) i), 's1';
UPDATE toast_full SET small = 's2';
-- identifiers and types that need quoting
INSERT INTO "Sales Dept"."Order ""Items""" VALUES (7, 2, 'n', 'open', 'x', '{x}');
UPDATE "Sales Dept"."Order ""Items""" SET "Qty" = 3;
DELETE FROM "Sales Dept"."Order ""Items""";
INSERT INTO "Ünïcode" VALUES (1, '', E'\\u0041 /');
INSERT INTO nocols DEFAULT VALUES;
-- truncate: one message for all the tables, with its options
INSERT INTO t1 DEFAULT VALUES;
TRUNCATE t1, t2;
TRUNCATE t1 RESTART IDENTITY CASCADE;
-- logical messages
SELECT 'msg' FROM pg_logical_emit_message(true, 'pg2kinesis-case', 'text-key');
SELECT 'msg' FROM pg_logical_emit_message(false, 'nontx', E'line\nwith "quotes" and é');
-- a partition, and REPLICA IDENTITY USING INDEX
INSERT INTO parted VALUES (1, 'p');
INSERT INTO uidx VALUES (1, 'k1', 'v');
UPDATE uidx SET v = 'w';
UPDATE uidx SET k = 'k2';
DELETE FROM uidx;
-- a savepoint rolled back
BEGIN;
INSERT INTO orders VALUES ('B-1', 1, 1);
SAVEPOINT sp;
INSERT INTO orders VALUES ('B-2', 2, 2);
ROLLBACK TO sp;
UPDATE orders SET n = 4 WHERE code = 'B-1';
COMMIT;
-- a column added mid-stream: the Relation message is sent again
INSERT INTO grows VALUES (1, 'a');
ALTER TABLE grows ADD COLUMN b integer DEFAULT 7;
INSERT INTO grows VALUES (2, 'b', 8);
UPDATE grows SET a = 'c' WHERE id = 1;
