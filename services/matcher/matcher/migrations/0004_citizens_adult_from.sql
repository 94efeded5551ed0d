-- No birth date is kept (docs/decisions/0013): a citizen's row holds `adult_from`, the
-- first day they are of the minimum age (19, `AGE_MIN_YEARS`'s value when this ran; a
-- 29 February birthday counts on 1 March in common years, as `eligibility.adult_from`).
ALTER TABLE citizens ADD COLUMN adult_from date;
UPDATE citizens SET adult_from = CASE
    WHEN extract(month FROM birth_date) = 2 AND extract(day FROM birth_date) = 29
        THEN make_date(extract(year FROM birth_date)::int + 19, 2, 28) + 1
    ELSE make_date(extract(year FROM birth_date)::int + 19,
                   extract(month FROM birth_date)::int, extract(day FROM birth_date)::int)
    END;
ALTER TABLE citizens ALTER COLUMN adult_from SET NOT NULL;
ALTER TABLE citizens DROP COLUMN birth_date;
