"""What the front doors (api, acme, web, and next enroll, est, scep, cmp) share, below all of them: problem
rendering (problems), who is calling (callers) and from where (proxy), request bodies (bodies) and the limits they
meet (limits), the access log and the public origin (access), media types (media), and the lean route for the hot
paths (lean). Nothing here imports a front door."""
