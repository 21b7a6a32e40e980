"""Test support: real Redis and daphne processes for the suite (never mocks)."""
