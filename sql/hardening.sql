-- Inputs and files meant to hurt: every message stays one bounded line of
-- valid UTF-8, headers carry no injected lines, special files never block,
-- and the hash operator class keeps its contract.
\set SHOW_CONTEXT never
\getenv tmpdir SO_TEST_TMPDIR
\getenv endpoint S3_ENDPOINT
\set root 'file://' :tmpdir '/hardening'
SELECT so_register_backend('hard', :'root', '{"base_url": "https://files.example.com/h"}');
SELECT so_register_backend('hard_s3', 's3://test-bucket/hardening',
  jsonb_build_object('endpoint', :'endpoint', 'allow_http', true,
                     'access_key_id', 'test-access-key', 'secret_access_key', 'test-secret-key'));

-- A message quoting a long input is cut at a character boundary, never
-- inside one (é is two bytes: an odd cut would end in half of it).
CREATE FUNCTION error_of(query text) RETURNS TABLE (sqlstate text, message text, bytes int, valid_utf8 boolean)
LANGUAGE plpgsql AS $$
DECLARE
    m text;
    s text;
BEGIN
    EXECUTE query;
    RETURN QUERY SELECT NULL::text, 'no error'::text, 0, true;
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS m = MESSAGE_TEXT, s = RETURNED_SQLSTATE;
    RETURN QUERY SELECT s, m, octet_length(m),
        convert_from(convert_to(m, 'UTF8'), 'UTF8') = m AND strpos(m, E'\n') = 0;
END
$$;
SELECT sqlstate, bytes < 400 AS bounded, valid_utf8, right(message, 12) AS message_end
  FROM error_of($q$SELECT ('{"backend":"b","filename":"f","x' || repeat('é', 100) || '":1}')::stored_object$q$);
SELECT sqlstate, bytes < 400 AS bounded, valid_utf8, right(message, 40) AS message_end
  FROM error_of($q$SELECT so_put('hard', 'dir/' || repeat('é', 150) || '/x', 'x')$q$);
SELECT sqlstate, bytes < 400 AS bounded, valid_utf8
  FROM error_of($q$SELECT so_stat('hard', repeat('ü', 700))$q$);

-- No header injection through what a URL asks the store to answer with.
SELECT so_sign(so_put('hard_s3', 'h/inject.txt', 'x'), download_type => E'x\r\nSet-Cookie: y=2');
\echo :LAST_ERROR_SQLSTATE
SELECT so_sign('{"backend":"hard_s3","filename":"h/inject.txt"}', download_type => 'text/plain; charset=utf-8')
       LIKE '%response-content-type=text%2Fplain%3B%20charset%3Dutf-8%' AS plain_type_signed;
SELECT so_sign('{"backend":"hard_s3","filename":"h/inject.txt"}', download_as => E'a\nb.txt');
\echo :LAST_ERROR_SQLSTATE

-- A base_url without a host is refused.
SELECT so_alter_backend('hard', options => '{"base_url": "http://"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_alter_backend('hard', options => '{"base_url": "https:///path"}');
\echo :LAST_ERROR_SQLSTATE

-- A URL carrying a parameter twice does not verify: web servers and
-- frameworks read the first, we would read the last.
SELECT so_put('hard', 'dup.txt', 'x') IS NOT NULL AS stored;
SELECT so_sign('{"backend":"hard","filename":"dup.txt"}') AS url \gset
SELECT so_verify_url(:'url') AS verifies;
SELECT so_verify_url(:'url' || '&expires=9999999999') AS with_second_expires;
SELECT so_verify_url(:'url' || '&signature=' || split_part(:'url', 'signature=', 2)) AS with_second_signature;
SELECT so_verify_url(replace(:'url', '?', '?expires=1&')) AS with_first_expires;

-- Local signed URLs live at most max_expires_in (default 7 days).
SELECT so_sign('{"backend":"hard","filename":"dup.txt"}', '8 days');
\echo :LAST_ERROR_SQLSTATE
SELECT so_alter_backend('hard', options => '{"max_expires_in": 60}');
SELECT so_sign('{"backend":"hard","filename":"dup.txt"}', '61 seconds');
\echo :LAST_ERROR_SQLSTATE
SELECT so_sign('{"backend":"hard","filename":"dup.txt"}', '60 seconds') IS NOT NULL AS signed;

-- A FIFO in a backend's directory neither blocks so_get/so_stat/so_exists
-- in open() nor is read as an object.
\set fifo :tmpdir '/hardening/a-fifo'
SELECT format('mkfifo %s', :'fifo') AS mkfifo \gset
COPY (SELECT 1) TO PROGRAM :'mkfifo';
SET statement_timeout = '20s';
SELECT so_get('{"backend":"hard","filename":"a-fifo"}');
\echo :LAST_ERROR_SQLSTATE
SELECT so_stat('hard', 'a-fifo');
\echo :LAST_ERROR_SQLSTATE
SELECT so_exists('{"backend":"hard","filename":"a-fifo"}') AS fifo_exists;
RESET statement_timeout;
SELECT format('rm -f %s', :'fifo') AS rmfifo \gset
COPY (SELECT 1) TO PROGRAM :'rmfifo';

-- The hash operator class contract: the 32-bit hash is the low half of the
-- 64-bit one with seed 0, for objects with and without versions.
SELECT bool_and(so_hash(v) = (so_hash_extended(v, 0)::bit(64) << 32)::bit(32)::int) AS low_bits_match,
       count(DISTINCT so_hash(v)) AS distinct_hashes
  FROM (VALUES ('{"backend":"b","filename":"a"}'::stored_object),
               ('{"backend":"b","filename":"b"}'),
               ('{"backend":"b","filename":"a","version_id":"v1"}'),
               ('{"backend":"other","filename":"ünï/😀"}')) AS t(v);

DROP FUNCTION error_of(text);
SELECT so_unregister_backend('hard');
SELECT so_unregister_backend('hard_s3');
