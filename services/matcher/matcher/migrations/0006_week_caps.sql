-- The weekly hour cap per year, as the allowance's cap table says: the allowance owns the
-- table (PUT /v1/admin/caps) and announces every version as CapsChanged on
-- allowance.policy.v1; the matcher keeps the weekly hours of the latest version it has
-- received here and enforces them (matcher.domain.policy.WeekCaps). Every row belongs to
-- one version: a newer version replaces them all.
CREATE TABLE week_caps (
    year          integer PRIMARY KEY CHECK (year BETWEEN 2000 AND 9998),
    hours_max     integer NOT NULL CHECK (hours_max BETWEEN 1 AND 168),
    source        text    NOT NULL,
    caps_version  bigint  NOT NULL CHECK (caps_version >= 1),
    received_at   timestamptz NOT NULL
);
