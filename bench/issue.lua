-- wrk script for the issuance rows of bench/suite.py: the same for pocketca and for cfssl.
--
--   wrk -t2 -c8 -d10s --latency --timeout 10s -s bench/issue.lua https://127.0.0.1:PORT/PATH -- \
--       BODIES_FILE OUT_PREFIX [BEARER_TOKEN]
--
-- BODIES_FILE holds one JSON request body per line (the pre-generated CSRs; JSON escapes the PEM's newlines).
-- Each thread pre-formats one POST per body and cycles through them, starting at its own offset.
-- response() counts non-2xx answers and appends a sample of response bodies (the first 30, then every 20th,
-- at most 150 per thread, and the first 20 non-2xx ones) to OUT_PREFIX<thread id>.txt as
-- "<status> <length>\n<body>\n" records, so the suite can verify the certificates afterwards.
-- done() prints one line "BENCH-JSON {...}" with the figures the suite reads.

local threads = {}
local next_id = 0

function setup(thread)
    thread:set("id", next_id)
    next_id = next_id + 1
    table.insert(threads, thread)
end

function init(args)
    local bodies_file, out_prefix, token = args[1], args[2], args[3]
    local headers = { ["Content-Type"] = "application/json", ["Accept"] = "application/json" }
    if token ~= nil and token ~= "" then
        headers["Authorization"] = "Bearer " .. token
    end
    reqs = {}
    for line in io.lines(bodies_file) do
        if #line > 0 then
            reqs[#reqs + 1] = wrk.format("POST", nil, headers, line)
        end
    end
    n = #reqs
    pos = (id * 97) % n
    responses = 0
    non2xx = 0
    sampled = 0
    out = io.open(out_prefix .. id .. ".txt", "wb")
end

function request()
    pos = pos + 1
    if pos > n then
        pos = 1
    end
    return reqs[pos]
end

function response(status, headers, body)
    responses = responses + 1
    local bad = status < 200 or status > 299
    if bad then
        non2xx = non2xx + 1
    end
    if (bad and non2xx <= 20) or (sampled < 150 and (responses <= 30 or responses % 20 == 0)) then
        sampled = sampled + 1
        body = body or ""
        out:write(status, " ", #body, "\n", body, "\n")
        out:flush()
    end
end

function done(summary, latency, requests)
    local bad = 0
    local seen = 0
    for _, thread in ipairs(threads) do
        bad = bad + (thread:get("non2xx") or 0)
        seen = seen + (thread:get("responses") or 0)
    end
    local e = summary.errors
    io.write(string.format(
        'BENCH-JSON {"requests": %d, "duration_us": %d, "responses_seen": %d, "non2xx": %d, '
            .. '"connect_errors": %d, "read_errors": %d, "write_errors": %d, "status_errors": %d, '
            .. '"timeouts": %d, "p50_us": %d, "p90_us": %d, "p99_us": %d, "mean_us": %.1f, "max_us": %d}\n',
        summary.requests, summary.duration, seen, bad, e.connect, e.read, e.write, e.status, e.timeout,
        latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max
    ))
end
