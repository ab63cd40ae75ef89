-- One wrk script for every HTTP scenario, configured through the environment:
--   BENCH_METHOD   GET or POST (default GET)
--   BENCH_PATHS    file with one path per line, cycled per request
--   BENCH_BODIES   file with one JSON body per line, cycled per request (POST)
--   BENCH_TOKEN    bearer token for the Authorization header (optional)
--   BENCH_DELAY_MS pause per connection before each request (rate-limited runs)
-- done() prints one line "BENCH_JSON {...}" that bench/run.py parses.

local function lines(path)
  local out = {}
  if path == nil or path == "" then return out end
  for line in io.lines(path) do
    if line ~= "" then out[#out + 1] = line end
  end
  return out
end

local requests = {}
local position = 0

function init(args)
  local method = os.getenv("BENCH_METHOD") or "GET"
  local paths = lines(os.getenv("BENCH_PATHS"))
  local bodies = lines(os.getenv("BENCH_BODIES"))
  local headers = {}
  local token = os.getenv("BENCH_TOKEN")
  if token and token ~= "" then headers["Authorization"] = "Bearer " .. token end
  if #bodies > 0 then headers["Content-Type"] = "application/json" end
  local count = math.max(#paths, #bodies, 1)
  for i = 1, count do
    local path = paths[((i - 1) % math.max(#paths, 1)) + 1]
    local body = nil
    if #bodies > 0 then body = bodies[((i - 1) % #bodies) + 1] end
    requests[i] = wrk.format(method, path, headers, body)
  end
end

function request()
  position = position % #requests + 1
  return requests[position]
end

-- Paced runs: each connection waits an exponentially distributed time (mean
-- BENCH_DELAY_MS) before each request, so arrivals are Poisson and the
-- connections never fall into lockstep bursts.
local pause = tonumber(os.getenv("BENCH_DELAY_MS") or "")
if pause and pause > 0 then
  math.randomseed(os.time())
  function delay()
    return math.floor(-math.log(1 - math.random()) * pause)
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests":%d,"duration_us":%d,"connect_errors":%d,"read_errors":%d,' ..
    '"write_errors":%d,"status_errors":%d,"timeouts":%d,"mean_us":%.1f,' ..
    '"p50_us":%d,"p90_us":%d,"p99_us":%d,"max_us":%d}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency.mean, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max))
end
