"""Singer: a host log-shipping daemon.

Tails log files and publishes them through PSC with pluggable partitioners (round-robin, single
partition, fixed-N, key hash), at-least-once delivery and durable per-stream watermarks.
"""
