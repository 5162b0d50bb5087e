-- salespipe tables for MariaDB / MySQL.
-- transaction_date is a DATETIME without zone: salespipe reads it in the
-- pipeline's timeZone (default UTC).
CREATE TABLE IF NOT EXISTS product_sales (
  transaction_id   BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
  product_name     VARCHAR(200) NOT NULL,
  product_category VARCHAR(100) NOT NULL,
  brand            VARCHAR(100) NOT NULL,
  quantity_sold    INT NOT NULL,
  price_per_unit   DECIMAL(12,2) NOT NULL,
  transaction_date DATETIME(3) NOT NULL,
  customer_id      BIGINT NULL,
  product_id       BIGINT NULL,
  KEY product_sales_date (transaction_date)
);

CREATE TABLE IF NOT EXISTS inventory (
  product_name     VARCHAR(200) NOT NULL,
  brand            VARCHAR(100) NOT NULL,
  stock_level      INT NOT NULL,
  reorder_threshold INT NOT NULL DEFAULT 10,
  updated_at       DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3),
  PRIMARY KEY (product_name, brand)
);

CREATE TABLE IF NOT EXISTS customer_data (
  customer_id      BIGINT NOT NULL PRIMARY KEY,
  customer_name    VARCHAR(200) NOT NULL,
  customer_segment VARCHAR(50) NOT NULL,
  region           VARCHAR(50) NULL,
  updated_at       DATETIME(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3) ON UPDATE CURRENT_TIMESTAMP(3)
);
