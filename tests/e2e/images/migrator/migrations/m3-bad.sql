-- m3-bad: a migration that fails half-way. Run in one transaction (psql --single-transaction), the
-- column it adds first is gone with the failure: the database is left as m2 left it.
ALTER TABLE items ADD COLUMN broken int;
SELECT 1 / 0;
