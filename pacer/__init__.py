"""Pacer: an asynchronous job platform.

Jobs live in MySQL, queues are split into partitions, and each partition is owned by exactly one dequeue
broker that serves jobs from an in-memory buffer; brokers are assigned and woken through Kafka.
"""
