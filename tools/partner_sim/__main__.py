"""`python -m tools.partner_sim [--host 127.0.0.1] [--port 8009]`: run the simulator."""

from __future__ import annotations

import argparse

import uvicorn

from tools.partner_sim.app import create_app
from tools.partner_sim.config import SIM_PORT_DEFAULT, SimConfig


def main() -> None:
    parser = argparse.ArgumentParser(description="Partner (Danggeun) simulator")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=SIM_PORT_DEFAULT)
    args = parser.parse_args()
    uvicorn.run(
        create_app(SimConfig.load()),
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
