-- wrk script for the bench harness: POST one GraphQL body, count bad answers.
--
-- Environment (set by bench/feed.py):
--   BENCH_BODY  the JSON request body
--   BENCH_AUTH  optional value of the Authorization header ("Bearer ...")
--
-- Every response is checked: a status outside 2xx counts as `non2xx`, a 2xx body containing
-- "errors" counts as `gql_errors`. At the end one line starting with BENCH_RESULT carries the
-- totals and latency percentiles (microseconds) as JSON, for the harness to parse.

wrk.method = "POST"
wrk.body = os.getenv("BENCH_BODY") or '{"query":"{ __typename }"}'
wrk.headers["Content-Type"] = "application/json"
local auth = os.getenv("BENCH_AUTH")
if auth and auth ~= "" then
  wrk.headers["Authorization"] = auth
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non2xx = 0
  gql_errors = 0
end

function response(status, headers, body)
  if status < 200 or status > 299 then
    non2xx = non2xx + 1
  elseif body and string.find(body, '"errors"', 1, true) then
    gql_errors = gql_errors + 1
  end
end

function done(summary, latency, requests)
  local bad_status, bad_body = 0, 0
  for _, thread in ipairs(threads) do
    bad_status = bad_status + (thread:get("non2xx") or 0)
    bad_body = bad_body + (thread:get("gql_errors") or 0)
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_RESULT {"requests": %d, "duration_us": %d, "non2xx": %d, "gql_errors": %d, '
      .. '"socket_errors": %d, "timeouts": %d, "p50_us": %d, "p99_us": %d, "max_us": %d}\n',
    summary.requests, summary.duration, bad_status, bad_body,
    e.connect + e.read + e.write, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max
  ))
end
