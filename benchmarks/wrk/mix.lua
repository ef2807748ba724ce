-- wrk script: replay the request mix written by benchmarks/wrk/requests.py (one request a line:
-- "GET <path>" or "POST <path> <json>"). Each wrk thread starts at its own offset and cycles the list;
-- done() prints the non-2xx count (wrk reports only non-2xx/3xx, and socket errors, itself).
--   wrk -t2 -c16 -d30s -s benchmarks/wrk/mix.lua http://127.0.0.1:8000 -- /tmp/wrk-requests.txt

local threads = {}
local counter = 0

function setup(thread)
  counter = counter + 1
  thread:set("id", counter)
  table.insert(threads, thread)
end

function init(args)
  local path = args[1] or "/tmp/wrk-requests.txt"
  requests = {}
  local headers = {["Content-Type"] = "application/json"}
  for line in io.lines(path) do
    local method, target, body = line:match("^(%u+) (%S+) ?(.*)$")
    if method == "POST" then
      table.insert(requests, wrk.format("POST", target, headers, body))
    elseif method == "GET" then
      table.insert(requests, wrk.format("GET", target))
    end
  end
  if #requests == 0 then error("no requests in " .. path) end
  index = ((id - 1) * math.floor(#requests / 2)) % #requests
  bad = 0
end

function request()
  index = index % #requests + 1
  return requests[index]
end

function response(status, headers, body)
  if status < 200 or status >= 300 then bad = bad + 1 end
end

function done(summary, latency, requests_)
  local total = 0
  for _, thread in ipairs(threads) do total = total + (thread:get("bad") or 0) end
  io.write(string.format("non-2xx: %d\n", total))
  for _, p in ipairs({50, 90, 99, 99.9}) do
    io.write(string.format("p%s: %.2f ms\n", p, latency:percentile(p) / 1000))
  end
end
