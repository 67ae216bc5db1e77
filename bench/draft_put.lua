-- wrk script of bench.writes: PUT a report's draft with If-Match, every request on a report
-- no other request in flight is writing, each carrying the ETag its report's last answer
-- gave. So a 412 is a real failure, never two connections racing for one report.
--
--   wrk ... -s bench/draft_put.lua <base url> -- <reports file> <body file> <threads>
--
-- The reports file has a line "<report id> <ETag>" per report; the thread numbered n (from
-- 0) takes the lines n, n + threads, n + 2 × threads … A report is taken off the thread's
-- free list to be sent and put back, with the new ETag, when its answer is read. wrk reads
-- a connection's answer before it asks for the connection's next request, so a thread with
-- at least as many reports as connections always has one free.

local thread_count = 0
local threads = {}

function setup(thread)
  thread:set("thread_number", thread_count)
  thread_count = thread_count + 1
  threads[#threads + 1] = thread
end

local free = {}
local mine = {}
local by_id = {}
local body
local rotation = 0
-- Answers by status: wrk only counts those from 400 up, as one figure.
statuses = {}

function init(args)
  -- args[0] may be the URL, depending on how wrk was built: the three last ones are ours.
  local n = #args
  local reports_file, body_file, threads = args[n - 2], args[n - 1], tonumber(args[n])
  local handle = assert(io.open(body_file, "rb"))
  body = handle:read("*a")
  handle:close()
  local line_number = 0
  for line in io.lines(reports_file) do
    if line_number % threads == thread_number then
      local id, etag = line:match("^(%S+) (%S+)$")
      local report = { id = id, etag = etag }
      free[#free + 1] = report
      mine[#mine + 1] = report
      by_id[id] = report
    end
    line_number = line_number + 1
  end
  assert(#free > 0, "no report for thread " .. thread_number)
end

function request()
  local report = table.remove(free)
  if report == nil then
    -- Only when an answer came without its report's id (an error): reuse one, knowingly
    -- stale; wrk counts the 412 as an error, so the run shows it.
    rotation = rotation + 1
    report = mine[rotation % #mine + 1]
  end
  -- wrk.format takes these headers instead of those of the command line (-H): both go.
  local headers = { ["Content-Type"] = "application/json", ["If-Match"] = report.etag }
  for name, value in pairs(wrk.headers) do
    headers[name] = value
  end
  return wrk.format("PUT", "/v1/reports/" .. report.id .. "/draft", headers, body)
end

function response(status, headers, answer)
  statuses[status] = (statuses[status] or 0) + 1
  if status ~= 200 then
    return
  end
  -- The report's id is the answer's first field.
  local id = answer:match('^{"id":"([%x%-]+)"')
  local etag = headers["etag"] or headers["ETag"]
  local report = id and by_id[id]
  if report and etag then
    report.etag = etag
    free[#free + 1] = report
  end
end

function done(summary, latency, requests)
  local total = {}
  for _, thread in ipairs(threads) do
    for status, count in pairs(thread:get("statuses")) do
      total[status] = (total[status] or 0) + count
    end
  end
  local codes = {}
  for status in pairs(total) do
    codes[#codes + 1] = status
  end
  table.sort(codes)
  local parts = {}
  for _, status in ipairs(codes) do
    parts[#parts + 1] = status .. "=" .. total[status]
  end
  io.write("statuses: " .. table.concat(parts, " ") .. "\n")
end
