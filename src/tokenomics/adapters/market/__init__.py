"""Market data for the live modes: latest prices (exits, sizing) and bars."""
