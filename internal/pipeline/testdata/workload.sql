-- The golden workload: every case FORMATS.md names. Each transaction starts
-- with a transactional logical message naming its case, so the golden test
-- can label the records. Schema first, outside any case.
CREATE TABLE text_key (k text PRIMARY KEY, v int);
CREATE TABLE composite (a int, b text, v text, PRIMARY KEY (a, b));
CREATE TABLE uuid_key (id uuid PRIMARY KEY, note text);
CREATE TABLE nokey (v text, n int);
CREATE SCHEMA "Sales Dept";
CREATE TABLE "Sales Dept"."Order" ("Order Id" int PRIMARY KEY, "Total" numeric(12,2));
CREATE TABLE orders (code varchar(32) PRIMARY KEY, n int, total numeric(12,2));
CREATE TABLE docs (id int PRIMARY KEY, n int, body text);
ALTER TABLE docs ALTER COLUMN body SET STORAGE EXTERNAL;
CREATE TABLE types (id bigint PRIMARY KEY, b boolean, f float8, j jsonb, ts timestamptz, arr int[], nul text, bin bytea);
CREATE TABLE full_ident (id int PRIMARY KEY, v text);
ALTER TABLE full_ident REPLICA IDENTITY FULL;
CREATE TABLE t1 (id int PRIMARY KEY);
CREATE TABLE t2 (id int PRIMARY KEY);

BEGIN; SELECT pg_logical_emit_message(true, 'pg2kinesis-case', 'text-key');
INSERT INTO text_key VALUES ('hello world, again', 1), ('plain-key_1', 2), ('it''s "quoted"', 3);
COMMIT;

BEGIN; SELECT pg_logical_emit_message(true, 'pg2kinesis-case', 'composite-key');
INSERT INTO composite VALUES (1, 'a', 'x'), (2, 'b,c', 'y');
UPDATE composite SET v = 'z' WHERE a = 1;
DELETE FROM composite WHERE a = 2;
COMMIT;

BEGIN; SELECT pg_logical_emit_message(true, 'pg2kinesis-case', 'uuid-key');
INSERT INTO uuid_key VALUES ('6f1c1b4e-3b8a-4c1e-9a63-0c2b8f4d9e11', 'Zoë — naïve café 😀');
COMMIT;

BEGIN; SELECT pg_logical_emit_message(true, 'pg2kinesis-case', 'no-primary-key');
INSERT INTO nokey VALUES ('no key', NULL);
COMMIT;

BEGIN; SELECT pg_logical_emit_message(true, 'pg2kinesis-case', 'quoted-identifiers');
INSERT INTO "Sales Dept"."Order" VALUES (7, 99.95);
UPDATE "Sales Dept"."Order" SET "Total" = 100 WHERE "Order Id" = 7;
DELETE FROM "Sales Dept"."Order" WHERE "Order Id" = 7;
COMMIT;

BEGIN; SELECT pg_logical_emit_message(true, 'pg2kinesis-case', 'insert-update-delete');
INSERT INTO orders VALUES ('A-7', 3, 12.50);
UPDATE orders SET n = 4 WHERE code = 'A-7';
DELETE FROM orders WHERE code = 'A-7';
COMMIT;

BEGIN; SELECT pg_logical_emit_message(true, 'pg2kinesis-case', 'key-changing-update');
INSERT INTO orders VALUES ('B-1', 1, 0.00);
UPDATE orders SET code = 'B-2' WHERE code = 'B-1';
COMMIT;

BEGIN; SELECT pg_logical_emit_message(true, 'pg2kinesis-case', 'types-and-null');
INSERT INTO types VALUES (9007199254740993, true, 'NaN', '{"k": [1, 2], "s": "x\"y"}', '2025-06-30 12:00:00+00', '{1,2,3}', NULL, '\xdeadbeef');
COMMIT;

BEGIN; SELECT pg_logical_emit_message(true, 'pg2kinesis-case', 'unchanged-toast-insert');
INSERT INTO docs SELECT 1, 1, string_agg(md5(i::text), '') FROM generate_series(1, 80) i;
COMMIT;

BEGIN; SELECT pg_logical_emit_message(true, 'pg2kinesis-case', 'unchanged-toast-update');
UPDATE docs SET n = 2 WHERE id = 1;
COMMIT;

BEGIN; SELECT pg_logical_emit_message(true, 'pg2kinesis-case', 'replica-identity-full');
INSERT INTO full_ident VALUES (1, 'before');
UPDATE full_ident SET v = 'after' WHERE id = 1;
DELETE FROM full_ident WHERE id = 1;
COMMIT;

BEGIN; SELECT pg_logical_emit_message(true, 'pg2kinesis-case', 'truncate');
INSERT INTO t1 VALUES (1);
TRUNCATE t1, t2 RESTART IDENTITY CASCADE;
COMMIT;
