"""The `studyspot` command. Sub-apps import their heavy dependencies lazily, so the edge-only
install on a Raspberry Pi never needs the cloud's packages."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(
    help="StudySpot: self-study library platform (cloud service and edge agent).", no_args_is_help=True
)


def _attach_subapps() -> None:
    try:
        from cloud.cli import app as cloud_app
    except ImportError as exc:  # edge-only install
        cloud_app = typer.Typer(help=f"cloud service (unavailable: {exc.name} is not installed)")
    try:
        from edge.cli import app as edge_app
    except ImportError as exc:  # cloud-only install
        edge_app = typer.Typer(help=f"edge agent (unavailable: {exc.name} is not installed)")
    app.add_typer(cloud_app, name="cloud", help="Run the cloud service and its tools.")
    app.add_typer(edge_app, name="edge", help="Run the edge agent and its tools.")


@app.command()
def demo(
    cloud_port: int = typer.Option(8000, help="Cloud API port."),
    kiosk_port: int = typer.Option(8080, help="Edge kiosk port."),
    mqtt_port: int = typer.Option(1883, help="Edge MQTT broker port."),
    gateway_port: int = typer.Option(8099, help="Local fake payment gateway port."),
    host: str = typer.Option("127.0.0.1", help="Address every demo server binds to."),
    data_dir: Path = typer.Option(Path(".studyspot"), help="Where the demo keeps its data and demo.json."),
) -> None:
    """Start the whole platform on one machine (embedded PostgreSQL, cloud, edge, simulated devices)."""
    from studyspot.demo import DemoPorts, run_demo

    ports = DemoPorts(cloud=cloud_port, kiosk=kiosk_port, mqtt=mqtt_port, gateway=gateway_port)
    run_demo(host=host, ports=ports, data_dir=data_dir)


_attach_subapps()

if __name__ == "__main__":
    app()
