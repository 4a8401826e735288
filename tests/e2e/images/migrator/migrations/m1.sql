-- m1: the app's first table, owned by the app's role (the migration runs as it).
CREATE TABLE IF NOT EXISTS items (id serial PRIMARY KEY, name text NOT NULL);
INSERT INTO items (name) SELECT 'first' WHERE NOT EXISTS (SELECT FROM items);
