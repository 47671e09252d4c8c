-- How a page's capture was fetched: "http" (legation's HTTP client), or "browser" (the document
-- as headless Chromium rendered it once a JavaScript wall let it through; [pages] browser).

ALTER TABLE pages ADD COLUMN fetched_with TEXT NOT NULL DEFAULT 'http';
ALTER TABLE page_versions ADD COLUMN fetched_with TEXT NOT NULL DEFAULT 'http';
