-- The page queue took every round a scan of all links on followed hosts (and a sort of
-- them): about 0.4 s at 200,000 links, while holding the write lock, every minute. Links
-- are now queued as they are saved, for the domains listed here; a process that saves posts
-- first scans the archived links of a domain that [pages] follow names anew. An archive
-- from before starts empty here: the first such process scans once for every followed domain.
CREATE TABLE followed_domains (
    domain TEXT PRIMARY KEY,        -- as in [pages] follow: its subdomains are followed too
    since TEXT NOT NULL             -- when its archived links were queued
);

-- Nothing looks links up by host any more (the queue took the followed hosts from it):
-- 15 bytes a link, and one index fewer to update with every post saved.
DROP INDEX links_host;
