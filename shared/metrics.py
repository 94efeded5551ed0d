"""Prometheus metrics every service exposes on `/metrics`.

Names follow Prometheus conventions with units in the name. Labels are bounded sets
(service, topic, outcome), never ids, so cardinality stays small.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

OUTBOX_PUBLISHED = Counter(
    "gwangsan_outbox_published_total", "Outbox rows published to Kafka", ["schema"]
)
OUTBOX_BACKLOG = Gauge(
    "gwangsan_outbox_backlog_rows", "Outbox rows waiting to be published", ["schema"]
)
OUTBOX_OLDEST_AGE = Gauge(
    "gwangsan_outbox_oldest_age_seconds", "Age of the oldest unpublished outbox row", ["schema"]
)

EVENTS_HANDLED = Counter(
    "gwangsan_events_handled_total",
    "Consumed events by outcome (applied, duplicate, ignored, dead_lettered, retried)",
    ["service", "topic", "outcome"],
)
EVENT_HANDLE_SECONDS = Histogram(
    "gwangsan_event_handle_seconds",
    "Time to apply one consumed event, including its transaction",
    ["service", "topic"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
CONSUMER_BATCH_SIZE = Histogram(
    "gwangsan_consumer_batch_size",
    "Messages fetched together and applied as one batch (one transaction when all are good)",
    ["service", "topic"],
    buckets=(1, 2, 5, 10, 20, 50, 100, 200, 500),
)
CONSUMER_BATCH_SECONDS = Histogram(
    "gwangsan_consumer_batch_seconds",
    "Time to apply one fetched batch, fallbacks included (a consumer's service time)",
    ["service", "topic"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5),
)
DLQ_PUBLISHED = Counter(
    "gwangsan_dlq_messages_total", "Messages sent to a dead-letter topic", ["service", "topic"]
)
CONSUMER_LAG = Gauge(
    "gwangsan_consumer_lag_messages",
    "Messages behind the end of the partition, per consumer group and topic",
    ["group", "topic"],
)

HTTP_REQUESTS = Counter(
    "gwangsan_http_requests_total", "HTTP requests", ["service", "route", "method", "status"]
)
HTTP_SECONDS = Histogram(
    "gwangsan_http_request_seconds",
    "HTTP request latency",
    ["service", "route", "method"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)

# Service-specific metrics the alerts and dashboard rely on (deploy/prometheus, deploy/grafana).
# Defined here so their names are one contract between the code and operations.
PARTNER_NOTIFICATIONS = Counter(
    "gwangsan_partner_notifications_total",
    "Partner notifications by outcome (delivered, retried, failed, resent)",
    ["outcome"],
)
PARTNER_ENDPOINT_DOWN = Gauge(
    "gwangsan_partner_endpoint_down",
    "1 while the partner endpoint has failed every attempt for notify_endpoint_down_after_s",
)
PARTNER_ENDPOINT_BREAKER_OPEN = Gauge(
    "gwangsan_partner_endpoint_breaker_open",
    "1 while the partner endpoint's circuit breaker is open or half-open (no sends)",
)
PARTNER_NOTIFICATIONS_PENDING = Gauge(
    "gwangsan_partner_notifications_pending", "Partner notifications not yet acknowledged"
)
MATCHER_DECISIONS = Counter(
    "gwangsan_matcher_decisions_total",
    "Application decisions by outcome (confirmed, waitlisted, rejected, promoted, cancelled)",
    ["outcome"],
)
BUDGET_AVAILABLE_WON = Gauge(
    "gwangsan_budget_available_won", "Programme budget not yet reserved or spent", ["fiscal_year"]
)
BUDGET_TOTAL_WON = Gauge("gwangsan_budget_total_won", "Programme budget", ["fiscal_year"])
PAYOUTS_ACCRUED_WON = Counter(
    "gwangsan_payouts_accrued_won_total", "Allowance accrued to citizens, in won"
)
PAYOUTS_CAPPED_WON = Counter(
    "gwangsan_payouts_capped_won_total", "Allowance over the monthly cap (recorded, not paid)"
)
