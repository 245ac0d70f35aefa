-- ims-sim's own store, in its own database: what a central IMS holds of what the head-end sent.
-- Never edit this file after it has been applied anywhere: add 0002_….sql instead.

-- Every request by its idempotency key, with the reply it got: a retried request gets the
-- same reply (replayed) and stores nothing twice.
CREATE TABLE ims_requests (
    request_id   text        PRIMARY KEY,
    kind         text        NOT NULL CHECK (kind IN ('readings', 'results')),
    received_at  timestamptz NOT NULL DEFAULT now(),
    reply        text
);

CREATE TABLE ims_batches (
    batch_id       text        PRIMARY KEY,
    task_id        text        NOT NULL,
    region         text        NOT NULL,
    meter_id       text        NOT NULL,
    collected_at   timestamptz NOT NULL,
    reading_count  integer     NOT NULL,
    received_at    timestamptz NOT NULL DEFAULT now()
);

-- One row per reading, by its natural key (DESIGN.md §3, invariant 2).
CREATE TABLE ims_readings (
    meter_id      text        NOT NULL,
    obis          text        NOT NULL,
    attribute     integer     NOT NULL,
    capture_time  timestamptz NOT NULL,
    class_id      integer     NOT NULL,
    value_type    text        NOT NULL,
    value         text        NOT NULL,
    unit          text,
    status        integer,
    batch_id      text        NOT NULL,
    PRIMARY KEY (meter_id, obis, attribute, capture_time)
);

CREATE TABLE ims_results (
    task_id        text        PRIMARY KEY,
    command_id     text,
    region         text        NOT NULL,
    meter_id       text        NOT NULL,
    outcome        text        NOT NULL,
    failure_code   text,
    reading_count  integer     NOT NULL,
    finished_at    timestamptz NOT NULL,
    received_at    timestamptz NOT NULL DEFAULT now()
);

-- What the store cannot count from its rows: duplicates it absorbed and items it rejected.
CREATE TABLE ims_counters (
    name   text   PRIMARY KEY,
    value  bigint NOT NULL DEFAULT 0
);
INSERT INTO ims_counters (name) VALUES
    ('requests'), ('replayed_requests'), ('duplicate_readings'), ('duplicate_results'), ('rejected_items');
