-- Issue 17 item 1: the finance console's month shows each citizen's shifts as
-- "시설명 · 근무 제목" beside the ids, and the statements exports carry the titles. The
-- title comes with the facility in PostingSubmitted/PostingUpdated (the latest terms win,
-- so a retitled posting shows its new title). NULL: the posting's place was stored before
-- this migration and no update has come since (shown as (미상)).
ALTER TABLE posting_places ADD COLUMN title text;
