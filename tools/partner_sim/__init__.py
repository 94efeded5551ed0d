"""A stand-in for the partner (Danggeun): it signs and sends webhooks the way the partner
does (`tools.api_client.partner`; `tools.partner_sim.client` for suites that bring their
own http client) and receives the matcher's notifications, checking their signatures
(`python -m tools.partner_sim`). Used by the demo, the e2e tests and the benchmarks."""
