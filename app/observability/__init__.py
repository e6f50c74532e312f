"""What the service is doing: Prometheus metrics, a structured access log, OpenTelemetry traces."""
