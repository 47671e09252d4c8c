-- Account mode: whether the account has joined the channel. Telegram pushes live updates
-- only to members; a channel the account has not joined is archived by its polls alone.
-- 1 member, 0 not a member, NULL unknown (web preview, or not yet read through the account).

ALTER TABLE channels ADD COLUMN account_member INTEGER;
