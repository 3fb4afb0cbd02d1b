"""Settings: defaults < YAML file < .env < TOKENOMICS_* environment < command line.

Every parameter lives here with its default; config/settings.yaml mirrors it with comments.
Secrets (API keys) are read from the environment or .env only, never from the YAML.
"""

from __future__ import annotations

import os
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict, SettingsError

from tokenomics.core.errors import ConfigError

Mode = Literal["sim", "paper", "live"]
DEFAULT_CONFIG_PATH = Path("config/settings.yaml")


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True, allow_inf_nan=False)


class UniverseSettings(Section):
    equities: list[str] = Field(default_factory=lambda: ["AAPL", "MSFT", "NVDA", "TSLA", "AMZN", "JPM"])
    crypto: list[str] = Field(default_factory=lambda: ["BTC/USD", "ETH/USD"])

    @field_validator("equities", "crypto")
    @classmethod
    def _upper(cls, v: list[str]) -> list[str]:
        return [s.strip().upper() for s in v if s.strip()]

    @field_validator("crypto")
    @classmethod
    def _pair(cls, v: list[str]) -> list[str]:
        bad = [s for s in v if "/" not in s]
        if bad:
            raise ValueError(f"crypto symbols are pairs like BTC/USD, got {bad}")
        return v

    @model_validator(mode="after")
    def _not_empty(self) -> "UniverseSettings":
        if not self.equities and not self.crypto:
            raise ValueError("the universe is empty: list at least one symbol under equities or crypto")
        return self

    @property
    def symbols(self) -> list[str]:
        return self.equities + self.crypto

    def asset_class(self, symbol: str) -> str:
        return "crypto" if "/" in symbol or symbol in self.crypto else "equity"


class StoreSettings(Section):
    path: Path = Path("data/tokenomics.db")
    busy_timeout_ms: int = Field(5000, ge=0)
    min_free_mb: int = Field(100, ge=0)


class LogSettings(Section):
    dir: Path = Path("logs")
    level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    output: Literal["files", "stdout"] = "files"  # stdout: every log as JSON lines on stdout only (containers)


class NewsSettings(Section):
    provider: Literal["sim", "file", "alpaca"] = "sim"
    poll_seconds: float = Field(30, gt=0)
    symbols: list[str] = Field(default_factory=list)  # empty: the universe
    file: Path | None = None  # JSON lines of articles, for provider "file"
    alpaca_url: str | None = None  # override of Alpaca's data API base URL (tests, proxies)
    include_content: bool = False
    page_size: int = Field(50, ge=1, le=50)
    max_pages: int = Field(10, ge=1)
    lookback_minutes: float = Field(60, gt=0)
    max_requests_per_minute: int = Field(180, ge=1, le=200)
    timeout_seconds: float = Field(15, gt=0)
    dedup_minutes: float = Field(30, ge=0)  # syndicated copies (every provider); 0: off
    overlap_minutes: float = Field(5, ge=0, le=1440)  # alpaca: re-ask this far before the cursor (indexing lag)
    retries: int = Field(3, ge=0, le=10)  # alpaca: retries of a 429 (after Retry-After), 5xx or reset connection
    max_future_seconds: float = Field(300, ge=0)  # clock skew allowed; a later created_at is rejected
    max_headline_chars: int = Field(500, ge=20)  # longer headlines are truncated with a marker
    max_summary_chars: int = Field(5000, ge=20)  # longer summaries too


class SentimentSettings(Section):
    provider: Literal["offline", "offline-transformer", "gemini"] = "offline"
    model_dir: Path | None = None  # None: the shipped trained_models/sentiment-offline
    transformer_dir: Path | None = None  # offline-transformer; None: the shipped trained_models/sentiment-minilm
    transformer_weight: float | None = Field(None, ge=0, le=1)  # MiniLM's share of the blend; None: the card's (0.8)
    min_conviction: int = Field(70, ge=0, le=100)
    model: str = "gemini-2.5-flash-lite"
    base_url: str | None = None  # override of the Gemini API base URL (tests, proxies)
    api_version: str = "v1beta"  # the Gemini REST version the request goes to (pinned; the SDK's default moves)
    prompt_version: str = "v2"
    max_output_tokens: int = Field(400, ge=50, le=8192)  # per answer; bounds the cost of each request
    max_attempts: int = Field(3, ge=1, le=20)  # runs an article may fail in before it is marked failed
    stop_after_failed_requests: int = Field(3, ge=1, le=100)  # per run, when the failures span 2 articles
    daily_token_budget: int = Field(2_000_000, ge=0)
    daily_cost_budget_usd: float = Field(1.0, ge=0)
    input_usd_per_mtok: float = Field(0.10, ge=0)
    output_usd_per_mtok: float = Field(0.40, ge=0)
    timeout_seconds: float = Field(30, gt=0)
    retries: int = Field(2, ge=0, le=10)
    backoff_seconds: float = Field(1.0, ge=0)
    max_backoff_seconds: float = Field(20, ge=0)
    # the LLM's documented knowledge cut-off (gemini-2.5-flash-lite: January 2025); a sentiment backtest
    # whose window starts before it says so: the model may know how the story ended
    training_cutoff: date | None = date(2025, 1, 31)


class SignalSettings(Section):
    max_age_minutes: float = Field(240, gt=0)


class SizingSettings(Section):
    method: Literal["fixed", "kelly", "vol-target", "adaptive"] = "fixed"
    min_usd: float = Field(500, gt=0)
    max_usd: float = Field(1000, gt=0)
    kelly_fraction: float = Field(0.5, gt=0, le=1)
    kelly_prior_trades: float = Field(20, ge=0)
    kelly_prior_win_rate: float = Field(0.55, gt=0, lt=1)
    kelly_prior_payoff: float = Field(1.0, gt=0)
    kelly_lookback_trades: int = Field(100, ge=1)
    vol_estimator: Literal["realized", "atr"] = "realized"
    vol_lookback_bars: int = Field(200, ge=15)
    adaptive_lookback_trades: int = Field(50, ge=1)

    @model_validator(mode="after")
    def _range(self) -> "SizingSettings":
        if self.min_usd > self.max_usd:
            raise ValueError(f"min_usd ({self.min_usd}) must not exceed max_usd ({self.max_usd})")
        return self


class RiskSettings(Section):
    max_open_positions: int = Field(10, ge=1)
    max_position_pct: float = Field(10.0, gt=0, le=100)
    min_order_usd: float = Field(1.0, ge=0)
    daily_loss_limit_pct: float = Field(3.0, gt=0, le=100)
    monthly_loss_limit_pct: float = Field(10.0, gt=0, le=100)
    timezone: str = "America/New_York"
    long_only: bool = True
    max_leverage: float = Field(1.0, gt=0, le=10)
    max_drawdown_pct: float = Field(20.0, gt=0, le=100)
    max_asset_class_pct: dict[str, float] = Field(default_factory=lambda: {"equity": 100.0, "crypto": 50.0})
    stop_loss_cooldown_hours: float = Field(24, ge=0)
    target_volatility_pct: float = Field(15.0, gt=0, le=500)
    var_confidence: float = Field(0.95, gt=0.5, lt=1)
    risk_free_rate: float = Field(0.0, ge=-0.1, le=1)
    metrics_window: int = Field(100, ge=2)

    @field_validator("timezone")
    @classmethod
    def _tz(cls, v: str) -> str:
        from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError("not a time zone of the IANA database, e.g. America/New_York or UTC") from None
        return v

    @field_validator("max_asset_class_pct")
    @classmethod
    def _classes(cls, v: dict[str, float]) -> dict[str, float]:
        bad = {k: x for k, x in v.items() if k not in ("equity", "crypto") or not 0 < x <= 1000}
        if bad:
            raise ValueError(f"asset classes are equity and crypto, caps in percent of equity > 0, got {bad}")
        return v


class ExitSettings(Section):
    stop_loss_pct: float = Field(2.5, gt=0, lt=100)
    take_profit_pct: float = Field(6.0, gt=0)
    max_hold_days: int = Field(65, ge=1)
    exit_on_bearish: bool = True
    bearish_min_conviction: int = Field(70, ge=0, le=100)


class TradingSettings(Section):
    paper: bool = True
    market_hours_only: bool = True
    lock_timeout_seconds: float = Field(10, ge=0)


class BrokerSettings(Section):
    provider: Literal["paper", "alpaca", "ccxt"] = "paper"
    slippage_bps: float = Field(5, ge=0, le=1000)
    fee_bps: float = Field(10, ge=0, le=1000)
    trading_url: str | None = None  # override of Alpaca's trading API base URL (tests, proxies)
    data_url: str | None = None  # override of Alpaca's market data API base URL
    timeout_seconds: float = Field(15, gt=0)
    bracket: bool = True  # equities on Alpaca: send stop-loss and take-profit with the entry
    exchange: str = "binance"  # ccxt exchange id
    exchange_url: str | None = None  # override of the ccxt exchange's API base URL
    # paper mode with provider paper (the store's book at live prices): where crypto is priced; equities
    # always come from Alpaca market data. ccxt: broker.exchange's public ticker (no keys)
    crypto_prices: Literal["alpaca", "ccxt"] = "alpaca"
    max_price_age_seconds: float = Field(300, gt=0)  # paper at live prices: no fill at an older last trade


class SimSettings(Section):
    seed: int = 7
    tick_seconds: float = Field(0.25, ge=0)
    start: datetime = datetime(2026, 1, 5, 15, 0, tzinfo=timezone.utc)
    step_minutes: int = Field(60, ge=1, le=1440)
    history_steps: int = Field(500, ge=0)
    news_per_tick: float = Field(1.5, ge=0, le=50)
    move_probability: float = Field(0.7, ge=0, le=1)
    news_impact_pct: float = Field(3.0, ge=0, le=50)
    equity_vol_pct: float = Field(30.0, ge=0, le=500)
    crypto_vol_pct: float = Field(60.0, ge=0, le=500)
    start_prices: dict[str, float] = Field(
        default_factory=lambda: {
            "AAPL": 230.0, "MSFT": 420.0, "NVDA": 135.0, "TSLA": 250.0, "AMZN": 200.0,
            "JPM": 240.0, "BTC/USD": 95000.0, "ETH/USD": 3300.0,
        }
    )

    @field_validator("start")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        return v.replace(tzinfo=timezone.utc) if v.tzinfo is None else v.astimezone(timezone.utc)


class BarsSettings(Section):
    source: Literal["sim", "file", "ccxt", "alpaca"] = "sim"
    timeframe: str = "1h"  # file, ccxt and alpaca bars; sim bars use the sim step
    symbols: list[str] = Field(default_factory=list)  # empty: the universe
    exchange: str = "binance"  # ccxt exchange id
    since: datetime = datetime(2024, 1, 1, tzinfo=timezone.utc)  # first bar of a first ccxt/alpaca fetch
    page_limit: int = Field(1000, ge=1, le=5000)
    rate_limit_ms: int | None = Field(None, ge=0)  # None: the exchange's own rate limit

    @field_validator("timeframe")
    @classmethod
    def _tf(cls, v: str) -> str:
        from tokenomics.core.bars import canonical_timeframe

        return canonical_timeframe(v)  # 60m and 1h: one timeframe

    @field_validator("since")
    @classmethod
    def _aware(cls, v: datetime) -> datetime:
        return v.replace(tzinfo=timezone.utc) if v.tzinfo is None else v.astimezone(timezone.utc)


class MLSettings(Section):
    models_dir: Path = Path("trained_models")
    model: str = "sim-example"  # the model `signal --source model` uses
    classifier: str = "sklearn.ensemble.RandomForestClassifier"
    params: dict[str, Any] = Field(default_factory=lambda: {
        "n_estimators": 100, "max_depth": 6, "min_samples_leaf": 50, "max_samples": 0.25, "random_state": 0,
        "n_jobs": -1})
    horizon: int = Field(5, ge=1)  # label: forward return over this many bars
    threshold_pct: float = Field(0.0, ge=0)  # label 1 when that return exceeds this, %
    cv: Literal["walk-forward", "purged"] = "walk-forward"
    folds: int = Field(5, ge=2, le=50)
    embargo: int = Field(10, ge=0)  # bars dropped after each test fold (purged CV)
    min_probability: float = Field(0.55, gt=0, lt=1)  # a prediction becomes a buy signal above this
    max_bar_age_bars: int = Field(2, ge=1)  # ignore a symbol whose latest bar is older than this many bars
class BacktestSettings(Section):
    fill: Literal["next_open", "close"] = "next_open"
    steps: int = Field(200, ge=2)
    symbol: str | None = None
    sma_fast: int = Field(10, ge=1)
    sma_slow: int = Field(30, ge=2)
    workers: int = Field(0, ge=0)
    fractional: bool = True  # SMA fast path: fractional units (lot size); false = whole units, as backtesting.py
    periods_per_year: float | None = Field(None, gt=0)  # annualisation override; None = the asset class calendar
    executor: Literal["local", "inline", "ray"] = "local"
    ray_address: str | None = None


NotifyEvent = Literal["entry", "exit", "halt", "provider", "daily_summary", "loop"]
NOTIFY_EVENTS: tuple[str, ...] = NotifyEvent.__args__  # type: ignore[attr-defined]


class NotifySettings(Section):
    urls: list[str] = Field(default_factory=list)  # apprise URLs; ${VAR} is read from the environment or .env
    events: list[NotifyEvent] = Field(default_factory=lambda: list(NOTIFY_EVENTS))
    timeout_seconds: float = Field(10, gt=0, le=300)  # wait at most this long for a send at the end of a run
    summary_hour: int = Field(17, ge=0, le=23)  # daily summary: first tick at or after this hour (risk.timezone)


class HealthSettings(Section):
    max_missed_ticks: float = Field(3, gt=0)  # unhealthy when the last tick is older than this many intervals...
    grace_seconds: float = Field(60, ge=0)  # ...plus this (a slow tick, a start-up)
    interval_seconds: float | None = Field(None, gt=0)  # null: the loop's own interval (run --once: 300)
    provider_down_minutes: float = Field(15, gt=0)  # unhealthy when a step has failed for longer than this


class Settings(BaseSettings):
    """All of tokenomics' parameters. See config/settings.yaml for the commented defaults."""

    model_config = SettingsConfigDict(
        env_prefix="TOKENOMICS_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",  # unknown keys are caught by load_settings, which can name where they came from
        validate_default=True,
        allow_inf_nan=False,
    )

    mode: Mode = "sim"
    capital: float = Field(10000, gt=0)
    universe: UniverseSettings = Field(default_factory=UniverseSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    logs: LogSettings = Field(default_factory=LogSettings)
    news: NewsSettings = Field(default_factory=NewsSettings)
    sentiment: SentimentSettings = Field(default_factory=SentimentSettings)
    signals: SignalSettings = Field(default_factory=SignalSettings)
    sizing: SizingSettings = Field(default_factory=SizingSettings)
    risk: RiskSettings = Field(default_factory=RiskSettings)
    exits: ExitSettings = Field(default_factory=ExitSettings)
    trading: TradingSettings = Field(default_factory=TradingSettings)
    broker: BrokerSettings = Field(default_factory=BrokerSettings)
    sim: SimSettings = Field(default_factory=SimSettings)
    bars: BarsSettings = Field(default_factory=BarsSettings)
    ml: MLSettings = Field(default_factory=MLSettings)
    backtest: BacktestSettings = Field(default_factory=BacktestSettings)
    notify: NotifySettings = Field(default_factory=NotifySettings)
    health: HealthSettings = Field(default_factory=HealthSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, dotenv_settings, _YamlSource(settings_cls))


class _YamlSource(PydanticBaseSettingsSource):
    """Feeds the YAML document chosen by load_settings (a class-level slot, set just before)."""

    data: dict[str, Any] = {}

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:
        return self.data.get(field_name), field_name, False

    def __call__(self) -> dict[str, Any]:
        return dict(_YamlSource.data)


def _format_validation_error(err: ValidationError, origin: str) -> str:
    lines = []
    for e in err.errors():
        key = ".".join(str(p) for p in e["loc"]) or "(top level)"
        value = e.get("input")
        shown = "" if isinstance(value, dict) else f" (got {value!r})"
        msg = e["msg"]
        if e["type"] == "extra_forbidden":
            msg = "unknown key"
        lines.append(f"{key}: {msg}{shown}")
    return f"invalid configuration in {origin}: " + "; ".join(lines)


def resolve_config_path(path: Path | None) -> Path | None:
    """The explicit --config, else $TOKENOMICS_CONFIG, else ./config/settings.yaml when it exists."""
    if path is not None:
        return path
    env = os.environ.get("TOKENOMICS_CONFIG")
    if env:
        return Path(env)
    return DEFAULT_CONFIG_PATH if DEFAULT_CONFIG_PATH.exists() else None


def load_settings(path: Path | None = None, **overrides: Any) -> Settings:
    """Load and validate settings; raise ConfigError (exit 2) naming the key on any problem."""
    path = resolve_config_path(path)
    data: dict[str, Any] = {}
    if path is not None:
        if not path.exists():
            raise ConfigError(f"config file not found: {path}", hint="run `tokenomics init` to write one")
        if path.is_dir():
            raise ConfigError(f"--config {path} is a folder, not a YAML file",
                              hint=f"e.g. --config {path / 'settings.yaml'}")
        try:
            loaded = yaml.safe_load(path.read_bytes().decode("utf-8")) or {}
        except UnicodeDecodeError as exc:
            raise ConfigError(f"config file {path} is not UTF-8 text (byte at position {exc.start}): "
                              "is it the right file?") from None
        except OSError as exc:
            raise ConfigError(f"config file {path} cannot be read: {exc.strerror or exc}") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {path} is not valid YAML: {exc}") from None
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {path} must hold a mapping of sections, got {type(loaded).__name__}")
        secretish = [k for k in _flatten(loaded) if any(s in k.lower() for s in ("secret", "api_key", "password"))]
        if secretish:
            raise ConfigError(
                f"config file {path} holds secrets ({', '.join(secretish)}): keys belong in the environment or .env"
            )
        unknown = [k for k in loaded if k not in Settings.model_fields]
        if unknown:
            raise ConfigError(f"invalid configuration in {path}: {', '.join(map(str, unknown))}: unknown key",
                              hint=f"the top-level keys are {', '.join(Settings.model_fields)}")
        data = loaded
    _check_environment()
    _YamlSource.data = data
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as err:
        raise ConfigError(_format_validation_error(err, str(path or "defaults/environment"))) from None
    except SettingsError as err:  # a list or mapping given in the environment that is not JSON
        field = str(err).split('"')[1] if '"' in str(err) else ""
        names = [k for k in os.environ if k.upper().startswith(f"TOKENOMICS_{field.upper()}")] or [field]
        raise ConfigError(f"environment variable {', '.join(names)}: a list or mapping must be written as JSON",
                          hint=f"e.g. {names[0]}='[\"AAPL\", \"MSFT\"]'") from None
    finally:
        _YamlSource.data = {}


# TOKENOMICS_* variables that are not settings
_ENV_NOT_SETTINGS = {"TOKENOMICS_CONFIG", "TOKENOMICS_DEBUG"}


def _check_environment() -> None:
    """A TOKENOMICS_* variable that names no setting is a typo, not something to ignore."""
    bad = []
    for key in os.environ:
        upper = key.upper()
        if not upper.startswith("TOKENOMICS_") or upper in _ENV_NOT_SETTINGS:
            continue
        parts = upper[len("TOKENOMICS_"):].lower().split("__")
        field = Settings.model_fields.get(parts[0])
        if field is None:
            bad.append(key)
            continue
        model = field.annotation
        if len(parts) > 1 and isinstance(model, type) and issubclass(model, BaseModel):
            if parts[1] not in model.model_fields:
                bad.append(key)
    if bad:
        raise ConfigError(f"environment variable {', '.join(sorted(bad))}: unknown setting",
                          hint="TOKENOMICS_<SECTION>__<KEY>, e.g. TOKENOMICS_RISK__MAX_OPEN_POSITIONS=5")


def _flatten(d: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for k, v in d.items():
        key = f"{prefix}{k}"
        out.append(key)
        if isinstance(v, dict):
            out.extend(_flatten(v, key + "."))
    return out
