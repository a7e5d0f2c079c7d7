"""The ACME server (RFC 8555, with RFC 8737, RFC 8738, RFC 9773 and the profiles extension).

jws: request verification and nonces; resources: accounts, orders, authorizations, finalize, revocation;
challenges: the http-01, dns-01 and tls-alpn-01 validators; routes: the HTTP side. Certificates are issued
through the Authority with the account as the caller, so policy, records, audit, CRL and OCSP are the same.
"""
