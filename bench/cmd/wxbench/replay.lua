-- wxbench's wrk script: each thread replays its own file of pre-built,
-- distinct, signed requests (one per request() call), so that wrk does no
-- signing or formatting during the run. The file is PREFIX.<thread id>: for
-- each request its length in bytes on a line, then the raw HTTP request.
-- PREFIX is the first argument after "--". When a thread runs out it starts
-- over and counts a wrap: a wrapped run sent some requests twice.

local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

local reqs = {}
local n = 0
local i = 0
sent = 0
wrapped = 0
size = 0

function init(args)
  local path = args[1] .. "." .. id
  local f = assert(io.open(path, "rb"))
  while true do
    local len = f:read("*n")
    if not len then break end
    f:read(1)
    n = n + 1
    reqs[n] = f:read(len)
  end
  f:close()
  size = n
  assert(n > 0, "no requests in " .. path)
end

function request()
  i = i + 1
  if i > n then
    i = 1
    wrapped = wrapped + 1
  end
  sent = sent + 1
  return reqs[i]
end

function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    "WXBENCH requests=%d duration_us=%d connect=%d read=%d write=%d status=%d timeout=%d p50_us=%d p99_us=%d max_us=%d\n",
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(99), latency.max))
  for _, t in ipairs(threads) do
    io.write(string.format("WXBENCH_THREAD id=%d sent=%d size=%d wrapped=%d\n",
      t:get("id"), t:get("sent"), t:get("size"), t:get("wrapped")))
  end
end
