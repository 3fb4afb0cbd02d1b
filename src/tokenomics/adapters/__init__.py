"""The outside world behind small interfaces: news, scorers, brokers, market data, calendar."""
