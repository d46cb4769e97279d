-- The definitions behind the pinned and observed digests, so a drifted tool can be shown as a
-- readable diff (the console's tools page) before an operator approves it.
ALTER TABLE tools ADD COLUMN pinned_definition TEXT;
ALTER TABLE tools ADD COLUMN observed_definition TEXT;
