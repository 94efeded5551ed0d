-- The hourly rate table as the allowance says (decision 0011): the allowance owns it
-- (PUT /v1/admin/rates) and announces every version as RatesChanged on allowance.policy.v1;
-- the registry keeps the entries of the latest version it has received here, to show a
-- facility what a shift will cost before it posts (GET /v1/postings/estimate). Every row
-- belongs to one version: a newer version replaces them all.
CREATE TABLE rates (
    effective_from   date    PRIMARY KEY,
    hourly_rate_won  integer NOT NULL CHECK (hourly_rate_won BETWEEN 1 AND 1000000),
    source           text    NOT NULL,
    rates_version    bigint  NOT NULL CHECK (rates_version >= 1),
    received_at      timestamptz NOT NULL
);
