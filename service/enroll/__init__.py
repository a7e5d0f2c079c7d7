"""The invitation page's front door (issue 24). For now only its browser side lives here, in static/: the key made
with WebCrypto, the CSR, the PKCS#12 file. The routes come with the third-wave house."""
