CREATE TABLE IF NOT EXISTS products (
    id    serial PRIMARY KEY,
    name  text NOT NULL UNIQUE,
    price_cents integer NOT NULL CHECK (price_cents >= 0)
);
INSERT INTO products (name, price_cents) VALUES ('teapot', 2500), ('cup', 600)
    ON CONFLICT (name) DO NOTHING;
