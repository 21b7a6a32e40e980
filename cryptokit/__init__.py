"""Every cryptographic rule shared by the server and the Python client, written once.

Pure Python on `cryptography`; no Django. A JS port must match the encodings byte for
byte: the JSON files in vectors/ are the contract.
"""
