-- 0003_task_outcomes: what became of each task, as the IMS confirmed it (the status page's
-- collection success and failures by reason, hesctl's meter status).

-- One row per task result the uploader delivered; written in the transaction that records the
-- IMS's confirmation (`meter_progress`), so a row means "the IMS has this result".
CREATE TABLE task_outcomes (
    task_id       uuid        PRIMARY KEY,
    region_id     text        NOT NULL,
    line_id       text        NOT NULL,
    meter_id      text        NOT NULL,
    command_id    uuid,
    outcome       text        NOT NULL CHECK (outcome IN ('succeeded', 'partial', 'failed', 'expired')),
    failure_code  text,
    readings      integer     NOT NULL DEFAULT 0 CHECK (readings >= 0),
    started_at    timestamptz NOT NULL,
    finished_at   timestamptz NOT NULL,
    confirmed_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX task_outcomes_finished_at ON task_outcomes (finished_at);
CREATE INDEX task_outcomes_region_finished_at ON task_outcomes (region_id, finished_at);
CREATE INDEX task_outcomes_meter_finished_at ON task_outcomes (meter_id, finished_at DESC);
