from importlib import resources
from pathlib import Path

import typer

from tokenomics.output import emit

app = typer.Typer()

ENV_EXAMPLE = """# Secrets live here or in the environment, never in config/settings.yaml.
# Copy to .env and fill in what your providers need. Any setting can also be overridden with
# TOKENOMICS_<SECTION>__<KEY>, e.g. TOKENOMICS_RISK__MAX_OPEN_POSITIONS=5.
# ALPACA_API_KEY=
# ALPACA_SECRET_KEY=
# GOOGLE_API_KEY=
# (or GEMINI_API_KEY=; GOOGLE_API_KEY wins when both are set)
# CCXT_API_KEY=
# CCXT_SECRET=
# CCXT_PASSWORD=
# Notification secrets, named as ${VAR} in notify.urls (any names you like), e.g.:
# TELEGRAM_BOT_TOKEN=
# TELEGRAM_CHAT_ID=
"""


@app.command()
def init(
    ctx: typer.Context,
    directory: Path = typer.Option(Path("."), "--dir", help="Where to put everything init creates: "
                                   "config/settings.yaml, .env.example, the store and logs/ (created if missing)."),
    force: bool = typer.Option(False, "--force", help="Overwrite an existing config."),
) -> None:
    """Write a commented config/settings.yaml (every parameter with its default) and .env.example,
    then create the store. Never overwrites an existing config without --force."""
    from tokenomics.core.errors import UsageProblem

    rt = ctx.obj
    if directory.exists() and not directory.is_dir():
        raise UsageProblem(f"--dir {directory} is a file, not a folder", hint="give a folder (it is created if missing)")
    cfg = directory / "config" / "settings.yaml"
    written = []
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageProblem(f"--dir {directory}: cannot create it ({exc.strerror or exc})") from None
    if cfg.exists() and not force:
        status = "kept existing"
    else:
        cfg.parent.mkdir(parents=True, exist_ok=True)
        cfg.write_text(resources.files("tokenomics").joinpath("default_settings.yaml").read_text())
        written.append(str(cfg))
        status = "written"
    env = directory / ".env.example"
    if not env.exists() or force:
        env.write_text(ENV_EXAMPLE)
        written.append(str(env))
    if rt.opts.config is None:
        rt.opts.config = cfg
    s = rt.settings
    if directory != Path("."):  # everything init creates goes under --dir: config, .env.example, store, logs
        if rt.opts.db is None and not s.store.path.is_absolute():
            rt.opts.db = directory / s.store.path
        if not s.logs.dir.is_absolute():
            s.logs.dir = directory / s.logs.dir
    rt.create_store_dirs = True
    st = rt.store
    emit(rt, {"config": str(cfg), "config_status": status, "written": written, "store": str(rt.db_path),
              "schema_version": st.schema_version()}, title="init")
