"""Clients of outside services (credit bureau; later the bank and the SMS gateway).

Each is a Protocol plus an HTTP adapter with typed errors. They know nothing of Temporal: an
activity wraps one call and its RetryPolicy decides what is retried (``activities/``).
"""
