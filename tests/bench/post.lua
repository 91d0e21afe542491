-- tests/bench/post.lua -- wrk script used by tests/bench/run.sh.
--
-- Environment (set by run.sh):
--   MG_BENCH_BODY          file holding the request body (sent verbatim, POST)
--   MG_BENCH_PATH          request path (default /v1/chat/completions)
--   MG_BENCH_KEY           bearer token (moongate's master key; nginx and the mock ignore it)
--   MG_BENCH_OUT           file that done() writes one JSON summary line to
-- No response() callback: wrk would then parse every response's headers into Lua tables,
-- which costs the load generator CPU. (wrk.thread:stop() would not end the run early either:
-- wrk's main thread sleeps for -d; run.sh ends count-bounded runs with SIGINT.)

local function readfile(p)
  local f = assert(io.open(p, "rb"), "cannot open " .. tostring(p))
  local s = f:read("*a")
  f:close()
  return s
end

wrk.method = "POST"
wrk.path = os.getenv("MG_BENCH_PATH") or "/v1/chat/completions"
wrk.body = readfile(os.getenv("MG_BENCH_BODY"))
wrk.headers["Content-Type"] = "application/json"
local key = os.getenv("MG_BENCH_KEY")
if key and key ~= "" then
  wrk.headers["Authorization"] = "Bearer " .. key
end

function done(summary, latency, requests)
  local e = summary.errors
  local line = string.format(
    '{"requests":%d,"duration_us":%d,"bytes":%d,' ..
    '"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},' ..
    '"lat_mean_us":%.1f,"lat_stdev_us":%.1f,"lat_p50_us":%d,"lat_p90_us":%d,' ..
    '"lat_p99_us":%d,"lat_p999_us":%d,"lat_max_us":%d}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency.stdev, latency:percentile(50), latency:percentile(90),
    latency:percentile(99), latency:percentile(99.9), latency.max)
  local out = os.getenv("MG_BENCH_OUT")
  if out and out ~= "" then
    local f = assert(io.open(out, "w"))
    f:write(line)
    f:close()
  else
    io.write(line)
  end
end
