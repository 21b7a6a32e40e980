"""Every cryptographic rule shared by the server and the Python client, written once.

Pure Python on `cryptography`; no Django. Modules: `keys` (parsing and key policy),
`signing` (the four signature wire formats), `wrapping` (RSA-OAEP and AES-256-GCM),
`fingerprints` (fingerprints and safety numbers), `encoding` (the byte strings that get
signed) and `pop` (the client's answer to a proof-of-possession challenge).

A JS port must match the encodings byte for byte: the JSON files in vectors/ are the
contract, and the tests fail whenever the code drifts from them.
"""
