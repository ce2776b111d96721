-- wrk: every request a POST with a body of $POST_BYTES bytes (1 MiB when unset), sent with its
-- Content-Length.
local n = tonumber(os.getenv("POST_BYTES") or "") or 1048576
wrk.method = "POST"
wrk.body = string.rep("x", n)
wrk.headers["Content-Type"] = "application/octet-stream"
