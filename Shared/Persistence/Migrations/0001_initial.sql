-- 0001_initial: the store of record (DESIGN.md §4).
--
-- Conventions: identifiers from the configuration document (regions, lines, meters, templates,
-- schedules) are text; generated ids are bigint identities or uuids; every timestamp is
-- timestamptz. Tables that outlive a configuration version (secrets, commands, ledger,
-- progress, audit) refer to meters by id WITHOUT a foreign key, because the read models are
-- deleted and rebuilt whenever a version is activated.
--
-- Never edit this file after it has been applied anywhere: add 0002_….sql instead.

-- MARK: - Configuration versions

CREATE TABLE config_versions (
    id            bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    parent_id     bigint      REFERENCES config_versions (id),
    status        text        NOT NULL DEFAULT 'staged'
                              CHECK (status IN ('staged', 'active', 'superseded')),
    document      jsonb       NOT NULL,
    sha256        text        NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    comment       text,
    created_by    text        NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    activated_at  timestamptz,
    -- A version that was ever active knows when it was activated.
    CONSTRAINT config_versions_activated_at CHECK (status = 'staged' OR activated_at IS NOT NULL)
);

-- Exactly one active version: at most one by this partial unique index ...
CREATE UNIQUE INDEX config_versions_one_active ON config_versions ((true)) WHERE status = 'active';
CREATE INDEX config_versions_sha256 ON config_versions (sha256);
CREATE INDEX config_versions_created_at ON config_versions (created_at DESC);

-- A version is an immutable snapshot: only its status and activation time may change.
CREATE FUNCTION config_versions_immutable() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.document IS DISTINCT FROM OLD.document
        OR NEW.sha256 IS DISTINCT FROM OLD.sha256
        OR NEW.parent_id IS DISTINCT FROM OLD.parent_id
        OR NEW.created_by IS DISTINCT FROM OLD.created_by
        OR NEW.created_at IS DISTINCT FROM OLD.created_at THEN
        RAISE EXCEPTION 'config version % is immutable; stage a new version instead', OLD.id
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER config_versions_immutable
    BEFORE UPDATE ON config_versions
    FOR EACH ROW EXECUTE FUNCTION config_versions_immutable();

-- ... and at least one: once a version is active, a transaction may only replace it, never
-- leave none active. Checked at commit, so an activation can first supersede the old version
-- (the unique index above is checked immediately) and then activate the new one.
CREATE FUNCTION config_versions_keep_one_active() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM config_versions WHERE status = 'active') THEN
        RAISE EXCEPTION 'no configuration version would be active; activate another version in the same transaction'
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$;

CREATE CONSTRAINT TRIGGER config_versions_keep_one_active
    AFTER UPDATE OF status OR DELETE ON config_versions
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW WHEN (OLD.status = 'active')
    EXECUTE FUNCTION config_versions_keep_one_active();

-- MARK: - Read models of the active version
-- Rebuilt (delete + insert) in the transaction that activates a version. Foreign keys are
-- deferred so the rebuild can insert in any order. `spec` holds the element as written in the
-- document; the columns next to it are what queries filter and join on.

CREATE TABLE regions (
    id                 text   PRIMARY KEY,
    config_version_id  bigint NOT NULL REFERENCES config_versions (id),
    spec               jsonb  NOT NULL DEFAULT '{}'
);

CREATE TABLE lines (
    id                 text    PRIMARY KEY,
    region_id          text    NOT NULL REFERENCES regions (id) ON DELETE CASCADE
                               DEFERRABLE INITIALLY DEFERRED,
    kind               text    NOT NULL CHECK (kind IN ('tcp', 'udp', 'serial', 'gateway-udp', 'optical')),
    address            text    NOT NULL,  -- host:port, or a device path for serial and optical lines
    max_concurrency    integer NOT NULL DEFAULT 1 CHECK (max_concurrency > 0),
    config_version_id  bigint  NOT NULL REFERENCES config_versions (id),
    spec               jsonb   NOT NULL DEFAULT '{}'
);
CREATE INDEX lines_region_id ON lines (region_id);

CREATE TABLE templates (
    id                 text   PRIMARY KEY,
    config_version_id  bigint NOT NULL REFERENCES config_versions (id),
    spec               jsonb  NOT NULL DEFAULT '{}'
);

CREATE TABLE schedules (
    id                 text     PRIMARY KEY,
    cron               text     NOT NULL,
    time_zone          text     NOT NULL DEFAULT 'UTC',
    collection_window  interval,
    jitter             interval NOT NULL DEFAULT '0 seconds' CHECK (jitter >= '0 seconds'),
    config_version_id  bigint   NOT NULL REFERENCES config_versions (id),
    spec               jsonb    NOT NULL DEFAULT '{}'
);

CREATE TABLE template_schedules (
    template_id  text NOT NULL REFERENCES templates (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    schedule_id  text NOT NULL REFERENCES schedules (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    PRIMARY KEY (template_id, schedule_id)
);
CREATE INDEX template_schedules_schedule_id ON template_schedules (schedule_id);

CREATE TABLE meters (
    id                    text    PRIMARY KEY,
    serial_number         text    NOT NULL,
    line_id               text    NOT NULL REFERENCES lines (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    template_id           text    REFERENCES templates (id) DEFERRABLE INITIALLY DEFERRED,
    protocol              text    NOT NULL CHECK (protocol IN ('dlms-hdlc', 'dlms-wrapper', 'iec62056-21')),
    authentication        text    NOT NULL DEFAULT 'none' CHECK (authentication IN ('none', 'lls', 'hls-gmac')),
    hdlc_address          integer CHECK (hdlc_address BETWEEN 0 AND 16383),  -- IEC 62056-46 §6.4.2.2
    manufacturer_profile  text,
    config_version_id     bigint  NOT NULL REFERENCES config_versions (id),
    spec                  jsonb   NOT NULL DEFAULT '{}'
);
CREATE INDEX meters_line_id ON meters (line_id);
CREATE INDEX meters_template_id ON meters (template_id);
CREATE INDEX meters_serial_number ON meters (serial_number);
-- Two meters on one multi-drop line cannot answer to the same physical address.
CREATE UNIQUE INDEX meters_line_hdlc_address ON meters (line_id, hdlc_address) WHERE hdlc_address IS NOT NULL;

-- MARK: - Secrets

-- DLMS keys and passwords, AES-GCM encrypted with a master key (HES_MASTER_KEY_FILE).
-- `ciphertext` is nonce || ciphertext || tag; `key_id` names the master key, for rotation.
CREATE TABLE meter_secrets (
    meter_id    text        NOT NULL,
    key_kind    text        NOT NULL CHECK (key_kind IN (
                                'lls-password', 'hls-secret', 'global-unicast-key',
                                'global-broadcast-key', 'authentication-key', 'master-key')),
    ciphertext  bytea       NOT NULL CHECK (octet_length(ciphertext) > 28),  -- 12 nonce + 16 tag + data
    key_id      text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (meter_id, key_kind)
);
CREATE INDEX meter_secrets_key_id ON meter_secrets (key_id);

-- MARK: - Commands

-- accepted → dispatched → running → succeeded | failed | expired | cancelled (DESIGN.md §7).
CREATE TABLE commands (
    id                 uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    request_key        text        UNIQUE,  -- the IMS's idempotency key: a retried POST finds its command
    kind               text        NOT NULL CHECK (kind IN (
                                       'read-profile', 'read-objects', 'time-sync', 'disconnect', 'reconnect')),
    meter_id           text        NOT NULL,
    params             jsonb       NOT NULL DEFAULT '{}',
    state              text        NOT NULL DEFAULT 'accepted' CHECK (state IN (
                                       'accepted', 'dispatched', 'running',
                                       'succeeded', 'failed', 'expired', 'cancelled')),
    requires_approval  boolean     NOT NULL DEFAULT false,
    requested_by       text        NOT NULL,
    approved_by        text,
    approved_at        timestamptz,
    deadline           timestamptz,
    attempts           integer     NOT NULL DEFAULT 0 CHECK (attempts >= 0),
    result             jsonb,
    error              text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    dispatched_at      timestamptz,
    started_at         timestamptz,
    finished_at        timestamptz,
    -- A guarded command leaves `accepted` only after approval (or when it ends unexecuted).
    CONSTRAINT commands_approval CHECK (
        NOT requires_approval OR approved_by IS NOT NULL OR state IN ('accepted', 'expired', 'cancelled')),
    CONSTRAINT commands_finished_at CHECK (
        (state IN ('succeeded', 'failed', 'expired', 'cancelled')) = (finished_at IS NOT NULL))
);
-- The scheduler's and the start-up repair's work queue.
CREATE INDEX commands_open ON commands (state, created_at) WHERE state IN ('accepted', 'dispatched', 'running');
CREATE INDEX commands_meter_id ON commands (meter_id, created_at DESC);
-- The per-hour disconnect limit counts recent disconnects and reconnects.
CREATE INDEX commands_switching ON commands (created_at) WHERE kind IN ('disconnect', 'reconnect');

-- A finished command stays finished: at most one execution per command id (invariant 6).
CREATE FUNCTION commands_terminal_is_final() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF OLD.state IN ('succeeded', 'failed', 'expired', 'cancelled') AND NEW.state IS DISTINCT FROM OLD.state THEN
        RAISE EXCEPTION 'command % is already %, it cannot become %', OLD.id, OLD.state, NEW.state
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$;

CREATE TRIGGER commands_terminal_is_final
    BEFORE UPDATE OF state ON commands
    FOR EACH ROW EXECUTE FUNCTION commands_terminal_is_final();

-- MARK: - Scheduler ledger

-- Every task the scheduler published, so a restart neither skips nor re-emits a slot.
CREATE TABLE dispatched_tasks (
    task_id        uuid        PRIMARY KEY,
    kind           text        NOT NULL CHECK (kind IN ('scheduled', 'command', 'gap-recovery')),
    region_id      text        NOT NULL,
    line_id        text        NOT NULL,
    meter_id       text        NOT NULL,
    schedule_id    text,
    slot           timestamptz NOT NULL,  -- the schedule slot (or request time) the task serves
    command_id     uuid        REFERENCES commands (id),
    profile_obis   text,                  -- gap recovery: the profile and range to re-read
    range_start    timestamptz,
    range_end      timestamptz,
    topic          text        NOT NULL,
    dispatched_at  timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT dispatched_tasks_kind_fields CHECK (
        CASE kind
            WHEN 'scheduled' THEN schedule_id IS NOT NULL
            WHEN 'command' THEN command_id IS NOT NULL
            ELSE profile_obis IS NOT NULL AND range_start IS NOT NULL AND range_end IS NOT NULL
                 AND range_start < range_end
        END)
);
-- One task per meter, schedule and slot; one task per command.
CREATE UNIQUE INDEX dispatched_tasks_slot ON dispatched_tasks (schedule_id, meter_id, slot) WHERE kind = 'scheduled';
CREATE UNIQUE INDEX dispatched_tasks_command ON dispatched_tasks (command_id) WHERE command_id IS NOT NULL;
CREATE INDEX dispatched_tasks_schedule_slot ON dispatched_tasks (schedule_id, slot DESC);
CREATE INDEX dispatched_tasks_dispatched_at ON dispatched_tasks (dispatched_at);

-- MARK: - Uploader progress

-- The capture time up to which the IMS confirmed a meter's profile; gaps are found from it.
CREATE TABLE meter_progress (
    meter_id         text        NOT NULL,
    profile_obis     text        NOT NULL,
    confirmed_until  timestamptz NOT NULL,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (meter_id, profile_obis)
);
CREATE INDEX meter_progress_confirmed_until ON meter_progress (confirmed_until);

-- MARK: - Audit log

-- Append-only record of every configuration change and command.
CREATE TABLE audit_log (
    id       bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at       timestamptz NOT NULL DEFAULT now(),
    actor    text        NOT NULL,
    action   text        NOT NULL,
    subject  text        NOT NULL,
    details  jsonb       NOT NULL DEFAULT '{}'
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_subject ON audit_log (subject, at);
CREATE INDEX audit_log_actor ON audit_log (actor, at);

CREATE FUNCTION audit_log_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only'
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_log_append_only
    BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();
