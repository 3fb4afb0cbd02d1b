"""One module per subcommand: parse options, call trading/ or research/, print."""


def symbol_list(*values: list[str] | str | None) -> list[str]:
    """The one spelling of symbols: `--symbol/-s`, repeatable, each value also a comma-separated list
    (`-s AAPL -s MSFT` = `-s AAPL,MSFT`); upper-cased, in order (repeats kept: a caller may refuse them)."""
    out: list[str] = []
    for value in values:
        for item in [value] if isinstance(value, str) else value or []:
            for s in item.split(","):
                s = s.strip().upper()
                if s:
                    out.append(s)
    return out
