"""History and models: bars, ML training and prediction, backtests (replays through the live tick),
risk reports and the backtest HTML report."""
