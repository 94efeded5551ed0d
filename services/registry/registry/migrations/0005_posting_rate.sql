-- The hourly rate of a posting's latest budget reservation (BudgetReserved.hourly_rate_won),
-- so PostingPublished and PostingUpdated can carry the pay to the matcher, which shows it to
-- the partner (issue 18). NULL for postings opened before it was kept, and while pending.
ALTER TABLE postings ADD COLUMN hourly_rate_won integer
    CHECK (hourly_rate_won BETWEEN 1 AND 1000000);
