-- Tool-definition pinning: the approved digest and the one last seen at the backend.
ALTER TABLE tools ADD COLUMN pinned_digest TEXT;
ALTER TABLE tools ADD COLUMN observed_digest TEXT;
