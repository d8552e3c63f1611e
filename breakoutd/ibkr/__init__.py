"""The ib_async adapter. IB's camelCase stays inside this package."""
