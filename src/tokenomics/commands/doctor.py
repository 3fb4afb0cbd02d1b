import typer

from tokenomics.output import emit

app = typer.Typer()


def _check(name: str, fn) -> dict:
    from tokenomics.core.errors import TokenomicsError
    from tokenomics.store import StoreRefused

    try:
        detail = fn()
        return {"check": name, "ok": True, "detail": detail}
    except StoreRefused:  # bad usage (a --db that is not a store): exit 2 like a bad config
        raise
    except TokenomicsError as exc:  # a missing key is a failed check: doctor goes on to the others
        return {"check": name, "ok": False, "detail": str(exc)}
    except Exception as exc:  # a check reports every failure instead of stopping at the first
        from tokenomics.keys import redact

        return {"check": name, "ok": False, "detail": redact(exc)}  # a provider may echo a key


@app.command()
def doctor(ctx: typer.Context) -> None:
    """Check the config, the store (open, schema, WAL, integrity), the calendar and the offline
    model, and say exactly what is wrong. Exit 0 when all pass, 1 otherwise (2 for bad config)."""
    from tokenomics.config import resolve_config_path
    from tokenomics.store import SCHEMA_VERSION

    rt = ctx.obj
    s = rt.settings  # bad config raises here: exit 2 naming the key
    checks = [{"check": "config", "ok": True,
               "detail": f"{resolve_config_path(rt.opts.config) or 'built-in defaults'} (mode {s.mode})"}]

    def store():
        st = rt.store
        mode = st.scalar("PRAGMA journal_mode")
        ok = st.scalar("PRAGMA integrity_check")
        version = st.schema_version()
        if ok != "ok":
            raise RuntimeError(f"integrity_check: {ok}")
        if version != SCHEMA_VERSION:
            raise RuntimeError(f"schema version {version}, expected {SCHEMA_VERSION}")
        return f"{rt.db_path} (schema {version}, journal {mode}, {st.scalar('SELECT COUNT(*) FROM articles')} articles)"

    def writable():
        why = rt.store.writable()
        if why:
            raise RuntimeError(f"not writable: {why}")
        return f"{rt.db_path} is writable"

    checks.append(_check("store", store))
    checks.append(_check("store writable", writable))

    def space():
        import shutil

        free = shutil.disk_usage(rt.db_path.resolve().parent).free / 2**20
        if free < s.store.min_free_mb:
            raise RuntimeError(f"{free:,.0f} MB free where the store lives, below store.min_free_mb "
                               f"({s.store.min_free_mb} MB): a full disk stops every write (the WAL needs room)")
        return f"{free:,.0f} MB free (store.min_free_mb {s.store.min_free_mb})"

    def runs():
        died = rt.store.died_runs()
        if not died:
            return "no run left unfinished by a dead process"
        shown = ", ".join(f"{r['command']} (pid {r['pid']}, started {r['started_at']})" for r in died[:5])
        return f"{len(died)} run(s) died without finishing (killed, or their final update failed): {shown}"

    checks.append(_check("disk space", space))
    checks.append(_check("runs", runs))
    checks.append(_check("calendar", lambda: f"NYSE open now: {rt.calendar.is_open('equity', rt.now())}"))

    def model():
        rt.scorer.predict_proba(["Company raises full-year guidance"])
        return f"{rt.scorer.name} scorer loaded"

    if s.sentiment.provider in ("offline", "offline-transformer"):
        checks.append(_check("scorer", model))
    if s.mode != "sim":
        from tokenomics.adapters.health import provider_checks

        checks += [_check(name, fn) for name, fn in provider_checks(rt)]
    checks.append(_check("universe", lambda: ", ".join(s.universe.symbols) or "(empty)"))
    ok = all(c["ok"] for c in checks)
    emit(rt, {"ok": ok, "checks": checks}, title="doctor", rows_key="checks")
    if not ok:
        raise typer.Exit(1)
