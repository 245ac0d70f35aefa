-- 0002_config_service: API tokens, and read-model constraints the configuration document needs.

-- API tokens of the control-plane API, stored as their SHA-256 only: the token itself is shown
-- once, when it is created.
CREATE TABLE api_tokens (
    name          text        PRIMARY KEY,
    role          text        NOT NULL CHECK (role IN ('viewer', 'operator', 'admin')),
    token_sha256  text        NOT NULL UNIQUE CHECK (token_sha256 ~ '^[0-9a-f]{64}$'),
    created_by    text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    revoked_at    timestamptz
);

-- Every authentication mechanism the collectors speak (Green Book 9.2.7.3), not only three.
ALTER TABLE meters DROP CONSTRAINT meters_authentication_check;
ALTER TABLE meters ADD CONSTRAINT meters_authentication_check
    CHECK (authentication IN ('none', 'lls', 'hls-md5', 'hls-sha1', 'hls-gmac', 'hls-sha256'));

-- The read models of the active version, found by region.
CREATE INDEX meters_config_version_id ON meters (config_version_id);
