"""The ACME front door (RFC 8555, with RFC 8737, RFC 8738, RFC 9773 and the profiles extension).

routes: the HTTP side, which reads the protocol, calls the ACME application (service.authority.acme: JWS
verification, nonces, accounts, orders, authorizations, challenges) and renders the answer; problems: ACME's
problem documents as application/problem+json; server: the application's parts, put together once per worker.
"""
