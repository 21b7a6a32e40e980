"""SecureChat's Python client: the same protocol and keys as the browser."""
