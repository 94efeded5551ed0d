-- Which versions of the cap table were announced as CapsChanged (allowance.policy.v1): the
-- matcher enforces the weekly hour cap from that event, so every version in force must be
-- sent once, in the transaction that adopts it. A table adopted before this migration (the
-- seed of an existing installation) is announced at the next start.
CREATE TABLE caps_announcements (
    policy_version  bigint PRIMARY KEY REFERENCES policy_versions (id),
    announced_at    timestamptz NOT NULL
);
