ALTER TABLE tools DROP COLUMN observed_definition;
ALTER TABLE tools DROP COLUMN pinned_definition;
