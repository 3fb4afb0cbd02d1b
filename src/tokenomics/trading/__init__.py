"""The live chain over the store: news, signals, sizing, the order path, exits, the account, the loop,
reconcile, rebalance and explain. Calls core for every rule and adapters for every outside effect."""
