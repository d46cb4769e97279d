ALTER TABLE tools DROP COLUMN observed_digest;
ALTER TABLE tools DROP COLUMN pinned_digest;
