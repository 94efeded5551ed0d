-- Which versions of the rate table were announced as RatesChanged (allowance.policy.v1): the
-- registry shows a facility what a shift will cost from that event, so every version in
-- force is sent once, in the transaction that adopts it (decision 0011, as for the caps).
-- A table adopted before this migration (the seed of an existing installation) is
-- announced at the next start.
CREATE TABLE rates_announcements (
    policy_version  bigint PRIMARY KEY REFERENCES policy_versions (id),
    announced_at    timestamptz NOT NULL
);
