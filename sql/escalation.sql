-- No escalation through the search_path. A role that owns a schema plants
-- look-alikes of the operators and functions the extension's own queries
-- use, puts its schema first on the search_path, and has a superuser (and
-- itself) call so_put, so_delete, the so_manage trigger, so_orphans, so_gc
-- and so_process_pending. Every planted object raises an error naming the
-- role it ran as: none may run, so every statement below succeeds.
\set SHOW_CONTEXT never
\getenv tmpdir SO_TEST_TMPDIR
\set root 'file://' :tmpdir '/escalation'
SELECT so_register_backend('esc', :'root', '{"base_url": "https://files.example.com/esc"}');

CREATE ROLE regress_so_evil;
CREATE SCHEMA evil AUTHORIZATION regress_so_evil;
SELECT so_grant('esc', 'all', 'regress_so_evil');
SELECT so_grant_admin('regress_so_evil');
GRANT CREATE ON SCHEMA public TO regress_so_evil;

SET ROLE regress_so_evil;
-- One trap per signature: the operators of the types the extension's
-- queries compare, and same-named overloads of the catalog and extension
-- functions they call.
CREATE FUNCTION evil.trap() RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'planted code ran as %', current_user;
END
$$;
DO $plant$
DECLARE
    o record;
    f record;
    n int := 0;
BEGIN
    FOR o IN
        SELECT op.oprname, op.oprleft::regtype AS l, op.oprright::regtype AS r, op.oprresult::regtype AS res
          FROM pg_catalog.pg_operator AS op
         WHERE op.oprname IN ('=', '<>', '<', '>', '<=', '>=', '@>', '<@', '&&', '||', '+', '-', '?', '&')
           AND op.oprleft <> 0 AND op.oprright <> 0
           AND op.oprleft::regtype::text NOT LIKE 'any%' AND op.oprright::regtype::text NOT LIKE 'any%'
           AND op.oprleft::regtype::text IN ('smallint', 'integer', 'bigint', 'oid', 'text', 'name', 'boolean',
                 'timestamp with time zone', 'interval', 'jsonb', 'xid', 'tid', 'aclitem', 'aclitem[]',
                 'text[]', 'stored_object', 'stored_object[]', 'regclass', 'regrole', 'regtype', '"char"',
                 'double precision')
    LOOP
        n := n + 1;
        EXECUTE format('CREATE FUNCTION evil.op_%s(%s, %s) RETURNS %s LANGUAGE plpgsql AS '
                       '$f$ BEGIN PERFORM evil.trap(); RETURN NULL; END $f$', n, o.l, o.r, o.res);
        EXECUTE format('CREATE OPERATOR evil.%s (LEFTARG = %s, RIGHTARG = %s, FUNCTION = evil.op_%s)',
                       o.oprname, o.l, o.r, n);
    END LOOP;
    FOR f IN
        SELECT p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid) AS args,
               pg_catalog.pg_get_function_result(p.oid) AS res
          FROM pg_catalog.pg_proc AS p
         WHERE p.prokind = 'f' AND NOT p.proretset
           AND pg_catalog.pg_get_function_result(p.oid) NOT IN ('trigger', 'internal', 'void')
           AND pg_catalog.pg_get_function_result(p.oid) NOT LIKE 'any%'
           AND pg_catalog.pg_get_function_identity_arguments(p.oid) NOT LIKE '%any%'
           AND pg_catalog.pg_get_function_identity_arguments(p.oid) NOT LIKE '%internal%'
           AND pg_catalog.pg_get_function_identity_arguments(p.oid) NOT LIKE '%cstring%'
           AND pg_catalog.pg_get_function_result(p.oid) <> 'cstring'
           AND (p.pronamespace = 'pg_catalog'::regnamespace AND p.proname IN (
                    'now', 'clock_timestamp', 'make_interval', 'date_part', 'lower', 'upper', 'split_part',
                    'quote_literal', 'quote_ident', 'format', 'pg_get_userbyid', 'current_setting', 'set_config',
                    'pg_xact_status', 'pg_current_xact_id', 'txid_current', 'pg_advisory_xact_lock',
                    'jsonb_typeof', 'jsonb_build_object', 'length', 'left', 'substr', 'concat', 'md5',
                    'has_table_privilege', 'has_column_privilege', 'pg_has_role', 'to_jsonb', 'jsonb_object_agg')
                OR p.oid IN (SELECT d.objid FROM pg_catalog.pg_depend AS d
                              WHERE d.refobjid = (SELECT oid FROM pg_catalog.pg_extension
                                                   WHERE extname = 'stored_object')
                                AND d.classid = 'pg_proc'::regclass AND d.deptype = 'e'))
    LOOP
        BEGIN
            EXECUTE format('CREATE FUNCTION evil.%I(%s) RETURNS %s LANGUAGE plpgsql AS '
                           '$f$ BEGIN PERFORM evil.trap(); RETURN NULL; END $f$', f.proname, f.args, f.res);
            n := n + 1;
        EXCEPTION WHEN duplicate_function OR invalid_function_definition THEN
            NULL;  -- an overload already planted, or a signature plpgsql cannot take
        END;
    END LOOP;
    RAISE NOTICE 'planted: % operators and functions', CASE WHEN n > 200 THEN 'more than 200' ELSE n::text END;
END
$plant$;
-- The traps work: a query of the role's own, on this search_path, springs one.
SET search_path = evil, pg_catalog, public;
SELECT 1::bigint = 1::bigint;
SELECT now();
RESET search_path;
CREATE TABLE public.evil_docs (id int PRIMARY KEY, f stored_object);
RESET ROLE;
SELECT so_manage_column('evil_docs', 'f');

-- The victim: a superuser calling the extension with the planted schema
-- first. (Operators of its own statements are written qualified.)
SET search_path = evil, pg_catalog, public;
BEGIN;
INSERT INTO public.evil_docs VALUES (1, public.so_put('esc', 'victim/a.txt', 'a'));
INSERT INTO public.evil_docs VALUES (2, public.so_put('esc', 'victim/b.txt', 'b'));
UPDATE public.evil_docs SET f = public.so_put('esc', 'victim/b.txt', 'b2', overwrite => true)
 WHERE id OPERATOR(pg_catalog.=) 2;
COMMIT;
BEGIN;
SELECT public.so_delete(public.so_put('esc', 'victim/c.txt', 'c'));
DELETE FROM public.evil_docs WHERE id OPERATOR(pg_catalog.=) 1;
COMMIT;
SELECT public.so_wait_for_worker('1 minute') AS settled;
SELECT * FROM public.so_process_pending();
SELECT public.so_put('esc', 'victim/orphan.txt', 'nobody') IS NOT NULL AS stored;
SELECT public.so_filename(o) FROM public.so_orphans('esc', '', '0 seconds') AS o;
SELECT public.so_filename(object), action FROM public.so_gc('esc', '0 seconds', dry_run => false);
SELECT public.so_sign(f) IS NOT NULL AS signed, public.so_exists(f) AS present, public.so_get(f) AS content
  FROM public.evil_docs;
RESET search_path;

-- The same as the planting role itself (a storage administrator here).
SET ROLE regress_so_evil;
SET search_path = evil, pg_catalog, public;
BEGIN;
INSERT INTO public.evil_docs VALUES (3, public.so_put('esc', 'evil/c.txt', 'c'));
DELETE FROM public.evil_docs WHERE id OPERATOR(pg_catalog.=) 2;
COMMIT;
SELECT public.so_wait_for_worker('1 minute') AS settled;
SELECT * FROM public.so_process_pending();
SELECT public.so_filename(o) FROM public.so_orphans('esc', '', '0 seconds') AS o;
SELECT public.so_get(f) AS content FROM public.evil_docs;
RESET search_path;
RESET ROLE;

SELECT so_exists('{"backend":"esc","filename":"victim/a.txt"}') AS a_present,
       so_exists('{"backend":"esc","filename":"victim/b.txt"}') AS b_present,
       so_exists('{"backend":"esc","filename":"victim/c.txt"}') AS c_present,
       so_exists('{"backend":"esc","filename":"evil/c.txt"}') AS evil_c_present;

DROP TABLE evil_docs;
SELECT so_wait_for_worker('1 minute') AS settled;
SELECT so_revoke_admin('regress_so_evil');
REVOKE CREATE ON SCHEMA public FROM regress_so_evil;
SET client_min_messages = warning;
DROP SCHEMA evil CASCADE;
RESET client_min_messages;
SELECT so_unregister_backend('esc');
DROP ROLE regress_so_evil;
