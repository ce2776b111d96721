-- wrk script: stop after N responses (counted per wrk thread; use -t1).
--   wrk -t1 -c50 -d600s -s stop_after.lua URL -- N MARKER_FILE
-- wrk's main thread still sleeps for the whole -d, so when N is reached this
-- writes MARKER_FILE and the caller sends SIGINT to wrk, which then prints its
-- usual summary for the requests actually made.
local n, count, marker = 10000, 0, nil

function init(args)
  n = tonumber(args[1]) or n
  marker = args[2]
end

function response(status, headers, body)
  count = count + 1
  if count == n then
    wrk.thread:stop()
    if marker then
      local f = io.open(marker, "w")
      if f then f:write(count, "\n"); f:close() end
    end
  end
end
