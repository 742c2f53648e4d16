"""Streaming layer: the Kafka side of the service.

``triage.stream.broker`` runs the embedded Tansu broker used by the embedded default and the
integration tests. See ``docs/faust-on-tansu.md`` for the faust settings that work on it.
"""
