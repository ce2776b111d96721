-- wrk script: when did failed responses happen? Records the wall-clock time of every non-2xx
-- response; at the end, reads the time an endpoint was killed (seconds since the epoch, from
-- KILL_FILE) and prints how many failures came before it, in the second after it, and later.
--   wrk -t1 -c50 -d10s -s fail_timeline.lua URL -- KILL_FILE
local ffi = require("ffi")
ffi.cdef [[
  typedef struct { long tv_sec; long tv_nsec; } sy_timespec;
  int clock_gettime(int clk, sy_timespec *tp);
]]
local ts = ffi.new("sy_timespec")
local function now()
  ffi.C.clock_gettime(0, ts)
  return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
end

local threads = {}
local kill_file = nil

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  bad = ""
  total = 0
end

function response(status, headers, body)
  total = total + 1
  if status < 200 or status > 299 then
    bad = bad .. string.format("%.6f,", now())
  end
end

function done(summary, latency, requests)
  local f = io.open(wrk.kill_file or os.getenv("KILL_FILE") or "", "r")
  local killed = f and tonumber(f:read("*l")) or nil
  if f then f:close() end
  local before, first, later, all = 0, 0, 0, 0
  for _, t in ipairs(threads) do
    for v in string.gmatch(t:get("bad") or "", "([^,]+)") do
      local x = tonumber(v)
      all = all + 1
      if killed == nil or x < killed then before = before + 1
      elseif x < killed + 1 then first = first + 1
      else later = later + 1 end
    end
  end
  local e = summary.errors
  io.write(string.format("timeline: responses %d non2xx %d before_kill %d first_second %d after_first_second %d "
    .. "sockerr_connect %d sockerr_read %d sockerr_write %d sockerr_timeout %d killed_at %s\n",
    summary.requests, all, before, first, later, e.connect, e.read, e.write, e.timeout, tostring(killed)))
end
