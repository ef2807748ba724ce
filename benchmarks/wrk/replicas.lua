-- wrk script: the request mix of mix.lua, spread over several replicas. wrk connects every thread to the
-- URL's address; here thread i connects to the i-th address of WRK_TARGETS (round robin), so -t2 drives
-- two replicas with -c/2 connections each. Run from the repository root (it loads mix.lua by path):
--   WRK_TARGETS=127.0.0.1:8000,127.0.0.1:8001 wrk -t2 -c16 -d30s --latency -s benchmarks/wrk/replicas.lua \
--     http://127.0.0.1:8000 -- /tmp/wrk-requests.txt
-- The latency and request counts wrk prints are over all replicas together.

dofile("benchmarks/wrk/mix.lua")  -- request(), response(), init(), done(), and its setup() numbering threads

local number_thread = setup
local targets = {}
for host, port in string.gmatch(os.getenv("WRK_TARGETS") or "127.0.0.1:8000,127.0.0.1:8001", "([^,:]+):(%d+)") do
  table.insert(targets, wrk.lookup(host, port)[1])
end
local next_target = 0

function setup(thread)
  thread.addr = targets[next_target % #targets + 1]
  next_target = next_target + 1
  number_thread(thread)
end
