"""Pure X.509: keys, names, CSRs, profiles, policy, issuance, CRLs.

Knows nothing of HTTP or SQL. Time, lifetimes and key types arrive as parameters.
"""
