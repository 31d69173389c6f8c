"""The `migrate` command line: a thin layer over the library, one module per command group."""

from __future__ import annotations

import click

from migrate import __version__, logs, shutdown
from migrate.cli.common import AppContext, MigrateGroup


@click.group(cls=MigrateGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="migrate")
@click.option("--config", "config_file", envvar="MIGRATE_CONFIG", metavar="FILE",
              help="Config file with cluster profiles [env MIGRATE_CONFIG; default ./migrate.toml].")
@click.option("--state", "state_file", envvar="MIGRATE_STATE", metavar="FILE",
              help="State database [env MIGRATE_STATE; default ./.migrate/state.db].")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for client debug).")
@click.option("--log-format", type=click.Choice(["text", "json"]), default="text", show_default=True,
              help="Log line format on stderr.")
@click.option("--stop-grace", type=click.FloatRange(min=1), default=shutdown.DEFAULT_GRACE, show_default=True,
              envvar="MIGRATE_STOP_GRACE", metavar="SECONDS",
              help="After SIGINT/SIGTERM, seconds to finish cleanly before abandoning [env MIGRATE_STOP_GRACE].")
@click.pass_context
def main(ctx: click.Context, config_file: str | None, state_file: str | None, verbose: int, log_format: str,
         stop_grace: float) -> None:
    """Move Kafka workflow estates between platforms with nothing lost.

    Example: migrate demo
    """
    shutdown.install(stop_grace)
    logs.setup(verbose, log_format)
    ctx.obj = AppContext(config_file=config_file, state_file=state_file, verbose=verbose)
    ctx.call_on_close(ctx.obj.close)


def _register() -> None:
    from migrate.cli import local

    main.add_command(local.local)
    for module_name, command_name in (
        ("migrate.cli.mirror", "mirror"),
        ("migrate.cli.offsets", "offsets"),
        ("migrate.cli.validate", "validate"),
        ("migrate.cli.playbook", "playbook"),
        ("migrate.cli.probe", "probe"),
        ("migrate.cli.demo", "demo"),
        ("migrate.cli.assess", "assess"),
    ):
        try:
            module = __import__(module_name, fromlist=[command_name])
        except ModuleNotFoundError as exc:
            if exc.name != module_name:
                raise
            continue
        main.add_command(getattr(module, command_name))


_register()
