-- wrk script for bench/client.py: POST prepared multipart bodies, round robin, a fixed count.
-- Arguments (after `--`): <requests for this thread> <file listing body paths> <content type>
-- Every request is formatted once in init(); request() only hands back a prepared string, so
-- the client's CPU per request stays well under a millisecond.

local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  limit = tonumber(args[1])
  local content_type = args[3]
  prepared = {}
  for path in io.lines(args[2]) do
    local fh = assert(io.open(path, "rb"))
    local body = fh:read("*a")
    fh:close()
    prepared[#prepared + 1] = wrk.format("POST", nil, {["Content-Type"] = content_type}, body)
  end
  sent, answered, ok = 0, 0, 0
end

function request()
  sent = sent + 1
  return prepared[(sent - 1) % #prepared + 1]
end

function response(status, headers, body)
  answered = answered + 1
  if status == 200 then ok = ok + 1 end
  if answered == limit then
    -- wrk's main thread sleeps for the whole -d duration; bench/client.py ends it with SIGINT
    -- (which still runs done()) once every thread has said it is done.
    io.stderr:write("WRKDONE\n")
    io.stderr:flush()
    wrk.thread:stop()
  end
end

function done(summary, latency, requests)
  local s, a, o = 0, 0, 0
  for _, t in ipairs(threads) do
    s = s + t:get("sent")
    a = a + t:get("answered")
    o = o + t:get("ok")
  end
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"sent": %d, "answered": %d, "ok": %d, "duration_us": %d, ' ..
    '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d, ' ..
    '"p50_us": %d, "p90_us": %d, "p99_us": %d, "max_us": %d, "mean_us": %f}\n',
    s, a, o, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency.max, latency.mean))
end
