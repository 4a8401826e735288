-- m2: expand: a nullable column the old release (m1) never reads, backfilled.
ALTER TABLE items ADD COLUMN IF NOT EXISTS note text;
UPDATE items SET note = 'backfilled by m2' WHERE note IS NULL;
