-- wrk script for bench/session_mix.py: POST a session's requests in turn, count bad answers.
--
-- Environment (set by the harness):
--   BENCH_BODIES  a file with one JSON request body per line: the requests of one session, in
--                 the order the mini app sends them
--   BENCH_AUTH    optional value of the Authorization header ("Bearer ...")
--
-- Each wrk thread sends the bodies round and round, so every request of a session is sent as
-- often as every other. Bad answers are counted as in post.lua (a status outside 2xx, or a
-- body containing "errors"); the BENCH_RESULT line has post.lua's format.

local bodies = {}
local file = assert(io.open(os.getenv("BENCH_BODIES"), "r"))
for line in file:lines() do
  if line ~= "" then
    table.insert(bodies, line)
  end
end
file:close()
assert(#bodies > 0, "BENCH_BODIES holds no request")

local headers = {["Content-Type"] = "application/json"}
local auth = os.getenv("BENCH_AUTH")
if auth and auth ~= "" then
  headers["Authorization"] = auth
end

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  non2xx = 0
  gql_errors = 0
  turn = 0
end

function request()
  turn = turn % #bodies + 1
  return wrk.format("POST", nil, headers, bodies[turn])
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
