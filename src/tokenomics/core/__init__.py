"""The domain, pure and I/O-free: no file, network, database or SDK access in this package."""
