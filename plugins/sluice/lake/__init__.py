"""The lake's tables: bronze Delta tables built from landed batches."""
