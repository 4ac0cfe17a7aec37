"""PSC: the unified PubSub client.

One producer/consumer API over several backends (Kafka through confluent-kafka; MemQ through its own
package), addressed by resource-name URIs such as
``plaintext:/rn:kafka:prod:aws_us-west-1::cluster01:topic01``, with service discovery, platform-managed
configuration, config logging and automatic remediation of known client errors.
"""
