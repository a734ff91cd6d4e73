"""``python -m google_emulator --port 8765 --devices 500``: run the offline Google until Ctrl-C."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path
from types import FrameType

from google_emulator.server import EmulatorServer
from google_emulator.state import DEFAULT_CLIENT_ID, DEFAULT_CLIENT_SECRET


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m google_emulator", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8765, help="port (0: any free port; default 8765)")
    parser.add_argument("--domain", default="example.com")
    parser.add_argument("--devices", type=int, default=50, help="ChromeOS devices to generate")
    parser.add_argument("--org-units", type=int, default=12, help="org units to generate (besides the root)")
    parser.add_argument("--seed", type=int, default=1, help="same seed, same domain")
    parser.add_argument(
        "--org-unit-paths", type=Path, help="file of OU paths, one per line, instead of generated"
    )
    parser.add_argument("--state", type=Path, help="JSON file the state is loaded from and saved to")
    parser.add_argument("--client-id", default=DEFAULT_CLIENT_ID)
    parser.add_argument("--client-secret", default=DEFAULT_CLIENT_SECRET)
    parser.add_argument("--redirect-uri", action="append", default=[], help="register exact redirect URIs")
    parser.add_argument("--admin-email", help="the consenting admin (default admin@<domain>)")
    parser.add_argument("--command-step-seconds", type=float, default=1.0, help="seconds per command state")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(message)s"
    )
    paths = None
    if args.org_unit_paths:
        lines = args.org_unit_paths.read_text(encoding="utf-8").splitlines()
        paths = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    server = EmulatorServer(
        host=args.host,
        port=args.port,
        state_file=args.state,
        domain=args.domain,
        devices=args.devices,
        org_units=args.org_units,
        seed=args.seed,
        org_unit_paths=paths,
        client_id=args.client_id,
        client_secret=args.client_secret,
        redirect_uris=args.redirect_uri,
        admin_email=args.admin_email,
        command_step_seconds=args.command_step_seconds,
    )

    def stop(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    server.start()
    state = server.state
    logging.info(
        "Google emulator on %s (GOOGLE_EMULATOR_HOST=%s): %s, %d devices, %d org units, client %s",
        server.url,
        server.host,
        state.customer["customerDomain"],
        len(state.devices),
        len(state.org_units),
        state.config.client_id,
    )
    sys.stdout.flush()
    server.serve_forever()


if __name__ == "__main__":
    main()
