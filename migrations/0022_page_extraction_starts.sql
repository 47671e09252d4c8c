-- How many times the extraction of a page's answer has started since it last finished: counted
-- before it runs, so that a process killed during it (out of memory) leaves the count, and a
-- page that cannot be extracted is failed for good instead of fetched again after each restart.
ALTER TABLE pages ADD COLUMN extract_starts INTEGER NOT NULL DEFAULT 0;
