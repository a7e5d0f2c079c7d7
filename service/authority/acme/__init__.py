"""The ACME application (RFC 8555, with RFC 8737, RFC 8738, RFC 9773 and the profiles extension), behind the front
door in service/acme.

jws: request verification; nonces: the nonce store; accounts (and EAB keys), orders, authorizations and their
challenges, limits (rate limits), renewal (ARI's certID); challenges: the http-01, dns-01 and tls-alpn-01
validators; problems: ACME's refusals; urls: the resource URLs. Certificates are issued through the Authority with
the account as the caller, so policy, records, audit, CRL and OCSP are the same.
"""
