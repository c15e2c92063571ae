-- so_operation_stats: storage operations counted per backend and operation.
\set SHOW_CONTEXT never
\getenv tmpdir SO_TEST_TMPDIR
\set root 'file://' :tmpdir '/stats'
SELECT so_register_backend('stats_local', :'root', '{"base_url": "https://files.example.com"}');
SELECT so_operation_stats_reset();
SELECT so_put('stats_local', 'a.txt', 'hello') AS a \gset
SELECT so_put('stats_local', 'a.txt', 'again');
SELECT so_put('stats_local', '.so-x', 'reserved');
SELECT length(so_get(:'a')), so_exists(:'a'), so_size(so_stat('stats_local', 'a.txt'));
SELECT length(so_get(:'a', 1, 2));
SELECT count(so_sign(:'a')) FROM generate_series(1, 10);
SELECT so_sign('{"backend": "stats_local", "filename": "../x"}');
SELECT count(*) FROM so_list('stats_local');
SELECT so_copy(:'a', 'stats_local', 'b.txt') IS NOT NULL AS copied;
BEGIN;
SELECT so_delete(:'a');
COMMIT;
SELECT so_process_pending();
-- Counted at the end of each transaction; errors by SQLSTATE class.
SELECT backend, operation, calls, errors, errors_by_class, bytes_read, bytes_written, retries,
       total_time >= max_time AND max_time > 0 AS timed, mean_time = total_time / calls AS mean
  FROM so_operation_stats WHERE backend = 'stats_local' AND datname = current_database()
 ORDER BY operation;
-- Not counted while stored_object.track_operations is off (superusers only).
SET stored_object.track_operations = off;
SELECT count(so_sign(:'a')) FROM generate_series(1, 5);
RESET stored_object.track_operations;
SELECT calls FROM so_operation_stats WHERE backend = 'stats_local' AND operation = 'sign';

-- Readers: pg_read_all_stats and storage administrators; others are refused.
CREATE ROLE regress_so_stats_nobody;
CREATE ROLE regress_so_stats_reader IN ROLE pg_read_all_stats;
SET ROLE regress_so_stats_nobody;
SET stored_object.track_operations = off;
\echo :LAST_ERROR_SQLSTATE
SELECT count(*) FROM so_operation_stats;
\echo :LAST_ERROR_SQLSTATE
SELECT so_operation_stats_reset();
\echo :LAST_ERROR_SQLSTATE
SET ROLE regress_so_stats_reader;
SELECT count(*) > 0 AS sees_rows FROM so_operation_stats WHERE backend = 'stats_local';
SELECT so_operation_stats_reset();
\echo :LAST_ERROR_SQLSTATE
RESET ROLE;
SELECT so_grant_admin('regress_so_stats_nobody');
SET ROLE regress_so_stats_nobody;
SELECT count(*) > 0 AS sees_rows FROM so_operation_stats WHERE backend = 'stats_local';
SELECT so_operation_stats_reset();
SELECT count(*) FILTER (WHERE calls > 0) AS counting FROM so_operation_stats WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database());
RESET ROLE;
SELECT so_revoke_admin('regress_so_stats_nobody');
DROP ROLE regress_so_stats_nobody;
DROP ROLE regress_so_stats_reader;
SELECT so_unregister_backend('stats_local');
