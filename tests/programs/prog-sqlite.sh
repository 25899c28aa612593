#!/bin/bash
# sqlite3 under walloc: a database of 100k generated rows, indexes, and
# aggregate, join, group-by, window and sort queries.
set -euo pipefail
# Not under `meson test --setup valgrind`: memcheck would trace every system
# program these scripts start (slow, and full of reports about ld.so and
# the tools themselves). 77: meson's "skipped".
case ${LD_PRELOAD:-} in *vgpreload*) echo "skipped: not run under valgrind"; exit 77 ;; esac
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
. "$here/common.sh"
walloc_test_init "$@"

SQLITE=/usr/bin/sqlite3
require_program "$SQLITE" sqlite3

cat >"$DATA/create.sql" <<'SQL'
PRAGMA journal_mode = WAL;
PRAGMA cache_size = -65536;
CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT NOT NULL, city TEXT, score INTEGER);
CREATE TABLE orders (id INTEGER PRIMARY KEY, customer INTEGER NOT NULL, amount INTEGER, note TEXT);
BEGIN;
WITH RECURSIVE seq(n, x) AS (
  SELECT 1, 12345
  UNION ALL
  SELECT n + 1, (x * 1103515245 + 12345) % 2147483648 FROM seq WHERE n < 10000
)
INSERT INTO customers SELECT n, 'customer-' || printf('%05d', (x / 7) % 100000),
  'city-' || (x % 97), x % 1000 FROM seq;
WITH RECURSIVE seq(n, x) AS (
  SELECT 1, 987654
  UNION ALL
  SELECT n + 1, (x * 1103515245 + 12345) % 2147483648 FROM seq WHERE n < 100000
)
INSERT INTO orders SELECT n, 1 + x % 10000, (x / 13) % 50000,
  substr(hex(x) || hex(x * 3) || hex(n), 1, 4 + x % 40) FROM seq;
COMMIT;
CREATE INDEX orders_customer ON orders(customer);
CREATE INDEX orders_amount ON orders(amount, note);
CREATE INDEX customers_city ON customers(city, score);
SELECT 'customers', count(*) FROM customers;
SELECT 'orders', count(*), sum(amount), min(note), max(note) FROM orders;
SQL

cat >"$DATA/query.sql" <<'SQL'
PRAGMA cache_size = -65536;
.headers on
SELECT city, count(*) AS n, sum(score) AS s, avg(score) AS a FROM customers GROUP BY city ORDER BY n DESC, city LIMIT 20;
SELECT c.city, count(o.id) AS orders, sum(o.amount) AS total, max(o.amount) AS biggest
  FROM customers c JOIN orders o ON o.customer = c.id
  GROUP BY c.city ORDER BY total DESC, c.city LIMIT 25;
SELECT c.id, c.name, t.total FROM customers c
  JOIN (SELECT customer, sum(amount) AS total FROM orders GROUP BY customer) t ON t.customer = c.id
  ORDER BY t.total DESC, c.id LIMIT 15;
SELECT customer, amount, rank() OVER (PARTITION BY customer % 50 ORDER BY amount DESC, id) AS r
  FROM orders WHERE id % 97 = 0 ORDER BY customer, amount, r LIMIT 40;
SELECT count(DISTINCT note), count(DISTINCT customer), count(DISTINCT amount / 100) FROM orders;
SELECT group_concat(note, ',') FROM (SELECT note FROM orders WHERE amount BETWEEN 1000 AND 1100 ORDER BY note, id);
SELECT length(group_concat(note || name, '')) FROM orders JOIN customers ON customers.id = orders.customer;
SELECT note, amount FROM orders ORDER BY note DESC, amount LIMIT 20;
SELECT upper(name) AS u, count(*) FROM customers GROUP BY u HAVING count(*) > 1 ORDER BY 2 DESC, u LIMIT 10;
SELECT sum(amount) FROM orders WHERE customer IN (SELECT id FROM customers WHERE city = 'city-42');
SELECT o.id, c.name FROM orders o LEFT JOIN customers c ON c.id = o.customer + 9990 WHERE o.id <= 20 ORDER BY o.id;
SQL

cat >"$DATA/modify.sql" <<'SQL'
BEGIN;
UPDATE orders SET note = note || '-' || amount WHERE id % 3 = 0;
DELETE FROM orders WHERE amount < 5000;
INSERT INTO orders (customer, amount, note) SELECT customer, amount + 1, 'copy:' || note FROM orders WHERE id % 5 = 0;
COMMIT;
CREATE TEMP TABLE big AS SELECT a.id AS x, b.id AS y FROM customers a, customers b WHERE a.id <= 300 AND b.id <= 300;
SELECT count(*), sum(x * y) FROM big;
SELECT count(*), sum(amount), sum(length(note)) FROM orders;
VACUUM;
PRAGMA integrity_check;
SQL

workload() {
  step create "$SQLITE" -batch test.db ".read $DATA/create.sql"
  step query "$SQLITE" -batch -readonly test.db ".read $DATA/query.sql"
  step modify "$SQLITE" -batch test.db ".read $DATA/modify.sql"
  step dump sh -c "\"$SQLITE\" -batch test.db .dump | sha256sum"
  step memory "$SQLITE" -batch :memory: \
    "WITH RECURSIVE s(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM s WHERE n < 200000)
     SELECT count(*), sum(length(v)), min(v), max(v) FROM (SELECT printf('%08x', (n * 2654435761) % 4294967296) || zeroblob(n % 100) AS v FROM s ORDER BY v);"
}

assert_walloc_serves "$SQLITE" :memory: 'SELECT 1;'
run_and_compare
