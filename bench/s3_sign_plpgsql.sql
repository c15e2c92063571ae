-- Peer for bench/s3_sign.sh: an S3 SigV4 presigner in PL/pgSQL on
-- pgcrypto's hmac() and digest(), written the way users write one today
-- (the recipe that circulates in blog posts and answers): the key is
-- URI-encoded byte by byte, the signing key is derived from the secret for
-- every URL (four HMACs), then the canonical request is hashed and the
-- string to sign is HMACed. Path-style URLs, GET, only the host header
-- signed, UNSIGNED-PAYLOAD. bench/s3_sign.sh checks once that its URLs
-- equal so_sign's for the same time and expiry, so it is a fair peer.
--
-- Needs: CREATE EXTENSION pgcrypto.

-- RFC 3986 encoding as SigV4 wants it: every byte but A-Z a-z 0-9 - _ . ~
-- (and '/' in a path) as %XX with uppercase hex.
CREATE OR REPLACE FUNCTION s3_uri_encode(value text, keep_slash boolean DEFAULT true)
RETURNS text LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    bytes bytea := convert_to(value, 'UTF8');
    result text := '';
    b integer;
BEGIN
    FOR i IN 0 .. length(bytes) - 1 LOOP
        b := get_byte(bytes, i);
        IF (b BETWEEN 48 AND 57) OR (b BETWEEN 65 AND 90) OR (b BETWEEN 97 AND 122)
           OR b IN (45, 46, 95, 126) OR (b = 47 AND keep_slash) THEN
            result := result || chr(b);
        ELSE
            result := result || '%' || upper(lpad(to_hex(b), 2, '0'));
        END IF;
    END LOOP;
    RETURN result;
END
$$;

-- A presigned GET URL for bucket/key on endpoint (scheme://host[:port]),
-- valid for expires_in seconds from signed_at.
CREATE OR REPLACE FUNCTION s3_presign_get(endpoint text, bucket text, key text,
                                          access_key text, secret_key text,
                                          region text DEFAULT 'us-east-1',
                                          expires_in integer DEFAULT 3600,
                                          signed_at timestamptz DEFAULT now())
RETURNS text LANGUAGE plpgsql STABLE STRICT PARALLEL SAFE AS $$
DECLARE
    host text := regexp_replace(endpoint, '^[a-z]+://', '');
    amz_date text := to_char(signed_at AT TIME ZONE 'UTC', 'YYYYMMDD"T"HH24MISS"Z"');
    short_date text := left(amz_date, 8);
    scope text := short_date || '/' || region || '/s3/aws4_request';
    path text := '/' || bucket || '/' || s3_uri_encode(key, true);
    query text;
    canonical_request text;
    string_to_sign text;
    signing_key bytea;
BEGIN
    query := 'X-Amz-Algorithm=AWS4-HMAC-SHA256'
          || '&X-Amz-Credential=' || s3_uri_encode(access_key || '/' || scope, false)
          || '&X-Amz-Date=' || amz_date
          || '&X-Amz-Expires=' || expires_in
          || '&X-Amz-SignedHeaders=host';
    canonical_request := 'GET' || E'\n' || path || E'\n' || query || E'\n'
                      || 'host:' || host || E'\n' || E'\n' || 'host' || E'\n' || 'UNSIGNED-PAYLOAD';
    string_to_sign := 'AWS4-HMAC-SHA256' || E'\n' || amz_date || E'\n' || scope || E'\n'
                   || encode(digest(canonical_request, 'sha256'), 'hex');
    signing_key := hmac(convert_to(short_date, 'UTF8'), convert_to('AWS4' || secret_key, 'UTF8'), 'sha256');
    signing_key := hmac(convert_to(region, 'UTF8'), signing_key, 'sha256');
    signing_key := hmac(convert_to('s3', 'UTF8'), signing_key, 'sha256');
    signing_key := hmac(convert_to('aws4_request', 'UTF8'), signing_key, 'sha256');
    RETURN endpoint || path || '?' || query || '&X-Amz-Signature='
        || encode(hmac(convert_to(string_to_sign, 'UTF8'), signing_key, 'sha256'), 'hex');
END
$$;
