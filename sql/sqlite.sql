-- salespipe tables for SQLite (the embedded quick start).
-- Timestamps are ISO text without zone, read in the pipeline's timeZone.
CREATE TABLE IF NOT EXISTS product_sales (
  transaction_id   INTEGER PRIMARY KEY AUTOINCREMENT,
  product_name     TEXT NOT NULL,
  product_category TEXT NOT NULL,
  brand            TEXT NOT NULL,
  quantity_sold    INTEGER NOT NULL,
  price_per_unit   TEXT NOT NULL,
  transaction_date TEXT NOT NULL,
  customer_id      INTEGER NULL,
  product_id       INTEGER NULL
);

CREATE TABLE IF NOT EXISTS inventory (
  product_name      TEXT NOT NULL,
  brand             TEXT NOT NULL,
  stock_level       INTEGER NOT NULL,
  reorder_threshold INTEGER NOT NULL DEFAULT 10,
  updated_at        TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now')),
  PRIMARY KEY (product_name, brand)
);

CREATE TABLE IF NOT EXISTS customer_data (
  customer_id      INTEGER NOT NULL PRIMARY KEY,
  customer_name    TEXT NOT NULL,
  customer_segment TEXT NOT NULL,
  region           TEXT NULL,
  updated_at       TEXT NOT NULL DEFAULT (strftime('%Y-%m-%d %H:%M:%f', 'now'))
);
